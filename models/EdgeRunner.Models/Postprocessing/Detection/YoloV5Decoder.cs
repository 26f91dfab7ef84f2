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
/// export). With <see cref="DetectionDecoderOptions.RawGrid"/> the export skipped the box decode, so boxes
/// are decoded here over the stride grids of the input size: <c>x = (px + grid_x) * stride</c>,
/// <c>w = exp(pw) * stride</c>; anchors run stride by stride, row by row, as YOLOX's <c>demo_postprocess</c> builds them.
/// </summary>
public sealed class YoloXDecoder : IDetectionDecoder
{
    private readonly DetectionCandidates _candidates;
    private readonly ObjectnessRows _rows;
    private readonly float[]? _gridX;
    private readonly float[]? _gridY;
    private readonly float[]? _stride;

    /// <summary>Creates a decoder for output <paramref name="outputIndex"/> of shape [1, N, 5+C] of a model with a <paramref name="inputWidth"/>×<paramref name="inputHeight"/> input.</summary>
    /// <exception cref="ArgumentException">With a raw grid, N is not the number of grid cells the strides give for the input size.</exception>
    public YoloXDecoder(DetectionDecoderOptions options, IReadOnlyList<long> outputShape, int inputWidth, int inputHeight, int outputIndex = 0)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _rows = new ObjectnessRows("YOLOX", outputShape, outputIndex);
        _candidates = new DetectionCandidates(options, _rows.Anchors);
        if (!options.RawGrid)
        {
            return;
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(inputWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(inputHeight, 1);
        var cells = 0;
        foreach (var s in options.Strides)
        {
            cells += (inputHeight / s) * (inputWidth / s);
        }

        if (cells != _rows.Anchors)
        {
            throw new ArgumentException(
                $"YOLOX raw grid: strides [{string.Join(",", options.Strides)}] over a {inputWidth}x{inputHeight} input give {cells} cells but the output has {_rows.Anchors} anchors.",
                nameof(outputShape));
        }

        _gridX = new float[cells];
        _gridY = new float[cells];
        _stride = new float[cells];
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
    }

    /// <inheritdoc />
    public string Kind => "yolox";

    /// <inheritdoc />
    public DetectionDecoderOptions Options { get; }

    /// <inheritdoc />
    public int ClassCount => _rows.Classes;

    /// <inheritdoc />
    public int Decode(IModelOutputs outputs, in SourceMapping mapping, int frameWidth, int frameHeight, Span<Detection> destination)
    {
        _rows.Collect(outputs, Kind, Options.ScoreThreshold, _candidates, _gridX, _gridY, _stride);
        return _candidates.Finish(mapping, frameWidth, frameHeight, destination);
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
