using System.Globalization;

namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>What <see cref="DetectionDecoders.InferKind(IModelOutputs)"/> concluded from a model's output shapes.</summary>
/// <param name="Kind">The decoder kind, or null when the shapes do not identify one unambiguously.</param>
/// <param name="Explanation">What was seen and why it leads to <paramref name="Kind"/> (or why nothing could be inferred); meant for the log.</param>
public readonly record struct DetectionKindInference(string? Kind, string Explanation)
{
    /// <summary>Whether a kind was inferred.</summary>
    public bool Succeeded => Kind is not null;
}

/// <summary>Creates detection decoders by kind name and infers the kind from output shapes.</summary>
public static class DetectionDecoders
{
    /// <summary>The strides of YOLOX's (and YOLOv5's) P3–P5 heads.</summary>
    private static readonly int[] YoloXStrides = [8, 16, 32];

    /// <summary>The kinds <see cref="Create(string, DetectionDecoderOptions, int, int, IReadOnlyList{IReadOnlyList{long}}, IReadOnlyList{string}?)"/> accepts ("yolo11" is an alias of "yolov8").</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["yolov8", "yolov5", "yolox", "ssd", "fastestdet"];

    /// <summary>Creates a decoder of <paramref name="kind"/> for the outputs of <paramref name="outputs"/> (typically the <see cref="Inference.ModelSession"/>).</summary>
    public static IDetectionDecoder Create(string kind, DetectionDecoderOptions options, int inputWidth, int inputHeight, IModelOutputs outputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        var (shapes, names) = Describe(outputs);
        return Create(kind, options, inputWidth, inputHeight, shapes, names);
    }

    /// <summary>
    /// Creates a decoder of <paramref name="kind"/> ("yolov8"/"yolo11", "yolov5", "yolox", "ssd", "fastestdet", case-insensitive)
    /// for a model with a <paramref name="inputWidth"/>×<paramref name="inputHeight"/> input and these outputs. YOLO kinds read
    /// the first rank-3 output, FastestDet the first rank-4 one; SSD takes the [1, N, 4] output as boxes (by name "boxes" when
    /// both outputs end in 4) and the other as scores.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown kind, or outputs that do not fit it.</exception>
    public static IDetectionDecoder Create(string kind, DetectionDecoderOptions options, int inputWidth, int inputHeight, IReadOnlyList<IReadOnlyList<long>> outputShapes, IReadOnlyList<string>? outputNames = null)
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(outputShapes);
        switch (kind.Trim().ToLowerInvariant())
        {
            case "yolov8":
            case "yolo11":
            case "yolov11":
                {
                    var i = FirstOfRank(outputShapes, 3, kind);
                    return new YoloV8Decoder(options, outputShapes[i], i);
                }

            case "yolov5":
                {
                    var i = FirstOfRank(outputShapes, 3, kind);
                    return new YoloV5Decoder(options, outputShapes[i], i);
                }

            case "yolox":
                {
                    var i = FirstOfRank(outputShapes, 3, kind);
                    return new YoloXDecoder(options, outputShapes[i], inputWidth, inputHeight, i);
                }

            case "ssd":
                {
                    var (scores, boxes) = SsdOutputs(outputShapes, outputNames)
                        ?? throw new ArgumentException($"ssd needs two outputs [1,N,K] scores and [1,N,4] boxes; the model has {FormatAll(outputShapes, outputNames)}.", nameof(outputShapes));
                    return new SsdDecoder(options, outputShapes[scores], outputShapes[boxes], inputWidth, inputHeight, scores, boxes);
                }

            case "fastestdet":
                {
                    var i = FirstOfRank(outputShapes, 4, kind);
                    return new FastestDetDecoder(options, outputShapes[i], inputWidth, inputHeight, i);
                }

            default:
                throw new ArgumentException($"Unknown detection decoder kind '{kind}'. Known: {string.Join(", ", Kinds)} (yolo11 = yolov8).", nameof(kind));
        }
    }

    /// <summary>Infers the decoder kind from the shapes (and names) of <paramref name="outputs"/>.</summary>
    public static DetectionKindInference InferKind(IModelOutputs outputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        var (shapes, names) = Describe(outputs);
        return InferKind(shapes, names);
    }

    /// <summary>
    /// Infers the decoder kind when the shapes leave one reading: two outputs [1,N,K] + [1,N,4] → ssd; one [1,4+C,N] with
    /// 4+C &lt; N → yolov8; one [1,N,5+C] with N &gt; 5+C → yolov5 (YOLOX exports look the same: configure "yolox" for them);
    /// one [1,5+C,H,W] → fastestdet. Anything else is reported as not inferable, with the shapes in the explanation.
    /// </summary>
    public static DetectionKindInference InferKind(IReadOnlyList<IReadOnlyList<long>> outputShapes, IReadOnlyList<string>? outputNames = null)
    {
        ArgumentNullException.ThrowIfNull(outputShapes);
        var seen = FormatAll(outputShapes, outputNames);
        if (outputShapes.Count == 2)
        {
            if (SsdOutputs(outputShapes, outputNames) is var (s, b))
            {
                var k = outputShapes[s][2];
                return new DetectionKindInference(
                    "ssd",
                    Invariant($"{seen}: scores {Name(outputNames, s)} [1,{outputShapes[s][1]},{k}] and boxes {Name(outputNames, b)} [1,{outputShapes[b][1]},4] over the same {outputShapes[s][1]} anchors → ssd (score column 0 taken as background: {k - 1} class(es); boxes normalised x1,y1,x2,y2)."));
            }

            return new DetectionKindInference(null, $"{seen}: two outputs but not an SSD pair [1,N,K] + [1,N,4] (or both end in 4 and neither is named 'boxes'); configure the decoder kind.");
        }

        if (outputShapes.Count != 1)
        {
            return new DetectionKindInference(null, $"{seen}: {outputShapes.Count} outputs; only single-output YOLO/FastestDet heads and two-output SSD heads are inferred. Configure the decoder kind.");
        }

        var shape = outputShapes[0];
        if (shape.Count == 3 && shape[0] == 1)
        {
            long a = shape[1], n = shape[2];
            if (a >= 5 && a < n)
            {
                return new DetectionKindInference("yolov8", Invariant($"{seen}: {a} rows (4 box + {a - 4} classes) over {n} anchors, rows < anchors → yolov8 (YOLOv8/YOLO11 layout [1,4+C,N], no objectness)."));
            }

            if (n >= 6 && a > n)
            {
                return new DetectionKindInference("yolov5", Invariant($"{seen}: {a} anchors of {n} values (4 box + objectness + {n - 5} classes), anchors > values → yolov5 (layout [1,N,5+C], score = objectness × class; YOLOX exports share this layout, configure 'yolox' for them)."));
            }

            return new DetectionKindInference(null, $"{seen}: a [1,A,B] output that is neither [1,4+C,N] with 4+C < N nor [1,N,5+C] with N > 5+C; configure the decoder kind.");
        }

        if (shape.Count == 4 && shape[0] == 1 && shape[1] >= 6)
        {
            return new DetectionKindInference("fastestdet", Invariant($"{seen}: {shape[1]} channels (objectness + 4 box + {shape[1] - 5} classes) on a {shape[3]}x{shape[2]} grid → fastestdet (layout [1,5+C,H,W])."));
        }

        return new DetectionKindInference(null, $"{seen}: not a known detection head layout; configure the decoder kind.");
    }

    /// <summary>Infers the decoder kind from <paramref name="outputs"/> of a model with a <paramref name="inputWidth"/>×<paramref name="inputHeight"/> input (see the shape overload).</summary>
    public static DetectionKindInference InferKind(IModelOutputs outputs, int inputWidth, int inputHeight)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        var (shapes, names) = Describe(outputs);
        return InferKind(shapes, names, inputWidth, inputHeight);
    }

    /// <summary>
    /// As <see cref="InferKind(IReadOnlyList{IReadOnlyList{long}}, IReadOnlyList{string}?)"/>, and with the input size the
    /// [1,N,5+C] layout shared by YOLOv5 and YOLOX is told apart: YOLOX has one anchor per cell of its stride-8/16/32
    /// grids, YOLOv5 three, so N equal to the grids' cell count for the input size is yolox (and, as exported by
    /// default, a raw grid: <see cref="YoloXDecoder"/> infers that from the first frame unless configured).
    /// </summary>
    public static DetectionKindInference InferKind(IReadOnlyList<IReadOnlyList<long>> outputShapes, IReadOnlyList<string>? outputNames, int inputWidth, int inputHeight)
    {
        var inferred = InferKind(outputShapes, outputNames);
        if (inferred.Kind != "yolov5" || inputWidth < 1 || inputHeight < 1)
        {
            return inferred;
        }

        long anchors = outputShapes[0][1], cells = 0;
        foreach (var stride in YoloXStrides)
        {
            cells += (long)(inputHeight / stride) * (inputWidth / stride);
        }

        return anchors == cells
            ? new DetectionKindInference(
                "yolox",
                Invariant($"{FormatAll(outputShapes, outputNames)}: {anchors} anchors of {outputShapes[0][2]} values = one per cell of the stride-8/16/32 grids over the {inputWidth}x{inputHeight} input (YOLOv5 has three per cell: {3 * cells}) → yolox; the default YOLOX export's boxes are a raw grid (Detection:RawGrid / postprocess.raw_grid true; inferred from the first frame when unset)."))
            : inferred;
    }

    private static (int Scores, int Boxes)? SsdOutputs(IReadOnlyList<IReadOnlyList<long>> shapes, IReadOnlyList<string>? names)
    {
        if (shapes.Count != 2)
        {
            return null;
        }

        for (var i = 0; i < 2; i++)
        {
            var shape = shapes[i];
            if (shape.Count != 3 || shape[0] != 1 || shape[1] < 1)
            {
                return null;
            }
        }

        if (shapes[0][1] != shapes[1][1])
        {
            return null;
        }

        bool box0 = shapes[0][2] == 4, box1 = shapes[1][2] == 4;
        if (box0 && box1)
        {
            // [1,N,4] twice (3 classes + background): only the names can tell which is which.
            if (NameContains(names, 0, "box"))
            {
                return (1, 0);
            }

            return NameContains(names, 1, "box") ? (0, 1) : null;
        }

        if (box1 && shapes[0][2] >= 2)
        {
            return (0, 1);
        }

        return box0 && shapes[1][2] >= 2 ? (1, 0) : null;
    }

    private static bool NameContains(IReadOnlyList<string>? names, int index, string text) =>
        names is not null && index < names.Count && names[index].Contains(text, StringComparison.OrdinalIgnoreCase);

    private static int FirstOfRank(IReadOnlyList<IReadOnlyList<long>> shapes, int rank, string kind)
    {
        for (var i = 0; i < shapes.Count; i++)
        {
            if (shapes[i].Count == rank)
            {
                return i;
            }
        }

        throw new ArgumentException($"{kind} needs an output of rank {rank}; the model has {FormatAll(shapes, null)}.", nameof(shapes));
    }

    private static (IReadOnlyList<IReadOnlyList<long>> Shapes, IReadOnlyList<string> Names) Describe(IModelOutputs outputs)
    {
        var shapes = new IReadOnlyList<long>[outputs.OutputCount];
        var names = new string[outputs.OutputCount];
        for (var i = 0; i < shapes.Length; i++)
        {
            shapes[i] = outputs.OutputShape(i);
            names[i] = outputs.OutputName(i);
        }

        return (shapes, names);
    }

    private static string Name(IReadOnlyList<string>? names, int index) =>
        names is not null && index < names.Count ? "'" + names[index] + "'" : "#" + index.ToString(CultureInfo.InvariantCulture);

    private static string FormatAll(IReadOnlyList<IReadOnlyList<long>> shapes, IReadOnlyList<string>? names)
    {
        if (shapes.Count == 0)
        {
            return "no outputs";
        }

        var parts = new string[shapes.Count];
        for (var i = 0; i < shapes.Count; i++)
        {
            parts[i] = Name(names, i) + " " + DetectionShapes.Format(shapes[i]);
        }

        return (shapes.Count == 1 ? "output " : "outputs ") + string.Join(", ", parts);
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Shape formatting for messages.</summary>
internal static class DetectionShapes
{
    public static string Format(IReadOnlyList<long> shape) => "[" + string.Join(",", shape) + "]";
}
