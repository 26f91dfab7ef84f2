using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>
/// YOLOv5-style head, output <c>[1, N, 5+C]</c>: per anchor cx, cy, w, h in model-input pixels, objectness,
/// then C class scores, all already sigmoid-ed; score = objectness × best class score.
/// </summary>
public sealed class YoloV5Decoder : IDetectionDecoder
{
    private readonly DetectionCandidates _candidates;
    private readonly ObjectnessRows _rows;

    /// <summary>Creates a decoder for output <paramref name="outputIndex"/> of shape <paramref name="outputShape"/> = [1, N, 5+C].</summary>
    public YoloV5Decoder(DetectionDecoderOptions options, IReadOnlyList<long> outputShape, int outputIndex = 0)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _rows = new ObjectnessRows("YOLOv5", outputShape, outputIndex);
        _candidates = new DetectionCandidates(options, _rows.Anchors);
    }

    /// <inheritdoc />
    public string Kind => "yolov5";

    /// <inheritdoc />
    public DetectionDecoderOptions Options { get; }

    /// <inheritdoc />
    public int ClassCount => _rows.Classes;

    /// <inheritdoc />
    public int Decode(IModelOutputs outputs, in SourceMapping mapping, int frameWidth, int frameHeight, Span<Detection> destination)
    {
        _rows.Collect(outputs, Kind, Options.ScoreThreshold, _candidates, null, null, null);
        return _candidates.Finish(mapping, frameWidth, frameHeight, destination);
    }
}

/// <summary>
/// YOLOX head, output <c>[1, N, 5+C]</c> laid out like YOLOv5 (objectness and class scores sigmoid-ed by the
/// export). With a raw grid (<see cref="DetectionDecoderOptions.RawGrid"/>) the export skipped the box decode, so
/// boxes are decoded here over the stride grids of the input size: <c>x = (px + grid_x) * stride</c>,
/// <c>w = exp(pw) * stride</c>; anchors run stride by stride, row by row, as YOLOX's <c>demo_postprocess</c> builds them.
/// When <see cref="DetectionDecoderOptions.RawGrid"/> is null and N is the grids' cell count, the first frame with
/// candidates decides: if every candidate read as pixels is a box within the smallest stride of the input's origin
/// (what raw offsets and log sizes look like), the grid is raw; otherwise the boxes are taken as decoded.
/// </summary>
public sealed class YoloXDecoder : IDetectionDecoder
{
    private readonly DetectionCandidates _candidates;
    private readonly ObjectnessRows _rows;
    private readonly float[]? _gridX;
    private readonly float[]? _gridY;
    private readonly float[]? _stride;
    private readonly float _smallestStride;

    /// <summary>Creates a decoder for output <paramref name="outputIndex"/> of shape [1, N, 5+C] of a model with a <paramref name="inputWidth"/>×<paramref name="inputHeight"/> input.</summary>
    /// <exception cref="ArgumentException">With <see cref="DetectionDecoderOptions.RawGrid"/> true, N is not the number of grid cells the strides give for the input size.</exception>
    public YoloXDecoder(DetectionDecoderOptions options, IReadOnlyList<long> outputShape, int inputWidth, int inputHeight, int outputIndex = 0)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _rows = new ObjectnessRows("YOLOX", outputShape, outputIndex);
        _candidates = new DetectionCandidates(options, _rows.Anchors);
        if (options.RawGrid == false)
        {
            RawGridInUse = false;
            RawGridDecision = "raw grid off (configured): boxes are read as input pixels";
            return;
        }

        var strides = string.Join(",", options.Strides);
        var cells = GridCells(options.Strides, inputWidth, inputHeight);
        if (cells != _rows.Anchors)
        {
            if (options.RawGrid == true)
            {
                throw new ArgumentException(
                    $"YOLOX raw grid: strides [{strides}] over a {inputWidth}x{inputHeight} input give {cells} cells but the output has {_rows.Anchors} anchors.",
                    nameof(outputShape));
            }

            RawGridInUse = false;
            RawGridDecision = $"raw grid not inferred: {_rows.Anchors} anchors are not the {cells} cells of strides [{strides}] over a {inputWidth}x{inputHeight} input, so boxes are read as input pixels";
            return;
        }

        _gridX = new float[cells];
        _gridY = new float[cells];
        _stride = new float[cells];
        _smallestStride = options.Strides.Min();
        var a = 0;
        foreach (var s in options.Strides)
        {
            for (var y = 0; y < inputHeight / s; y++)
            {
                for (var x = 0; x < inputWidth / s; x++, a++)
                {
                    _gridX[a] = x;
                    _gridY[a] = y;
                    _stride[a] = s;
                }
            }
        }

        if (options.RawGrid == true)
        {
            RawGridInUse = true;
            RawGridDecision = $"raw grid on (configured): {cells} anchors over strides [{strides}] of a {inputWidth}x{inputHeight} input";
        }
        else
        {
            RawGridDecision = $"raw grid undecided: {cells} anchors are the cells of strides [{strides}] over a {inputWidth}x{inputHeight} input; the first frame with candidates decides";
        }
    }

    /// <inheritdoc />
    public string Kind => "yolox";

    /// <inheritdoc />
    public DetectionDecoderOptions Options { get; }

    /// <inheritdoc />
    public int ClassCount => _rows.Classes;

    /// <summary>Whether boxes are decoded over the stride grids: true or false once known, null while an inference waits for a frame with candidates.</summary>
    public bool? RawGridInUse { get; private set; }

    /// <summary>How <see cref="RawGridInUse"/> was settled (configured, or inferred and from what), for the log.</summary>
    public string RawGridDecision { get; private set; }

    /// <inheritdoc />
    public int Decode(IModelOutputs outputs, in SourceMapping mapping, int frameWidth, int frameHeight, Span<Detection> destination)
    {
        if (RawGridInUse is null)
        {
            Infer(outputs);
        }

        var raw = RawGridInUse == true;
        _rows.Collect(outputs, Kind, Options.ScoreThreshold, _candidates, raw ? _gridX : null, raw ? _gridY : null, raw ? _stride : null);
        return _candidates.Finish(mapping, frameWidth, frameHeight, destination);
    }

    private void Infer(IModelOutputs outputs)
    {
        // Read as pixels first: a decoded head puts its finds where the objects are; a raw head's offsets and log
        // sizes all land within a cell of the origin. Runs once, on the first frame with candidates.
        _rows.Collect(outputs, Kind, Options.ScoreThreshold, _candidates, null, null, null);
        var count = _candidates.Count;
        if (count == 0)
        {
            return;
        }

        var raw = _candidates.AllNearOrigin(_smallestStride);
        RawGridInUse = raw;
        RawGridDecision = raw
            ? $"raw grid inferred: all {count} candidate(s) of the first frame read as pixels lie within {_smallestStride} px of the input's origin (cell offsets and log sizes), so boxes are decoded over strides [{string.Join(",", Options.Strides)}]"
            : $"raw grid not inferred: the first frame's {count} candidate(s) read as pixels are spread over the input, so boxes are taken as decoded pixels";
    }

    private static int GridCells(IReadOnlyList<int> strides, int inputWidth, int inputHeight)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inputWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(inputHeight, 1);
        var cells = 0;
        foreach (var s in strides)
        {
            cells += (inputHeight / s) * (inputWidth / s);
        }

        return cells;
    }
}

/// <summary>Reads [1, N, 5+C] rows (box, objectness, class scores) into candidates; shared by YOLOv5 and YOLOX.</summary>
internal sealed class ObjectnessRows
{
    private readonly int _outputIndex;

    public ObjectnessRows(string family, IReadOnlyList<long> outputShape, int outputIndex)
    {
        ArgumentNullException.ThrowIfNull(outputShape);
        if (outputShape.Count != 3 || outputShape[0] != 1 || outputShape[1] < 1 || outputShape[2] < 6)
        {
            throw new ArgumentException($"{family} output must be [1, N, 5+C] with C ≥ 1; got {DetectionShapes.Format(outputShape)}.", nameof(outputShape));
        }

        _outputIndex = outputIndex;
        Anchors = checked((int)outputShape[1]);
        Classes = checked((int)outputShape[2] - 5);
    }

    public int Anchors { get; }

    public int Classes { get; }

    public void Collect(IModelOutputs outputs, string kind, float threshold, DetectionCandidates candidates, float[]? gridX, float[]? gridY, float[]? stride)
    {
        var width = 5 + Classes;
        var data = DetectionCandidates.Read(outputs, _outputIndex, Anchors * width, kind);
        candidates.Clear();
        for (var a = 0; a < Anchors; a++)
        {
            var row = data.Slice(a * width, width);
            var objectness = row[4];
            // Class scores are at most 1, so objectness alone bounds the score: most anchors stop here
            // without scanning their C class scores.
            if (!(objectness >= threshold))
            {
                continue;
            }

            var classes = row[5..];
            var bestClass = 0;
            var best = classes[0];
            for (var c = 1; c < classes.Length; c++)
            {
                if (classes[c] > best)
                {
                    best = classes[c];
                    bestClass = c;
                }
            }

            var score = objectness * best;
            if (!(score >= threshold))
            {
                continue;
            }

            float cx = row[0], cy = row[1], w = row[2], h = row[3];
            if (gridX is not null)
            {
                var s = stride![a];
                cx = (cx + gridX[a]) * s;
                cy = (cy + gridY![a]) * s;
                w = MathF.Exp(w) * s;
                h = MathF.Exp(h) * s;
            }

            candidates.AddCenter(bestClass, score, cx, cy, w, h);
        }
    }
}
