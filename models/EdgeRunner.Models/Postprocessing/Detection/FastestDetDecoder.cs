using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>
/// FastestDet anchor-free grid head, output <c>[1, 5+C, H, W]</c>. Per cell: channel 0 objectness, 1–2 the
/// centre offset (tanh), 3–4 the size (sigmoid, as a fraction of the input), 5.. class scores; score =
/// obj^0.6 · cls^0.4. Decoded as upstream's example code does: centre = ((tanh(ch1) + x) / W, (tanh(ch2) + y) / H),
/// size = (sigmoid(ch3), sigmoid(ch4)), all normalised to the input.
/// </summary>
public sealed class FastestDetDecoder : IDetectionDecoder
{
    private const float ObjectnessExponent = 0.6f;
    private const float ClassExponent = 0.4f;

    private readonly DetectionCandidates _candidates;
    private readonly int _outputIndex;
    private readonly int _classes;
    private readonly int _gridWidth;
    private readonly int _gridHeight;
    private readonly float _inputWidth;
    private readonly float _inputHeight;

    /// <summary>Creates a decoder for output <paramref name="outputIndex"/> of shape <paramref name="outputShape"/> = [1, 5+C, H, W] of a model with a <paramref name="inputWidth"/>×<paramref name="inputHeight"/> input.</summary>
    public FastestDetDecoder(DetectionDecoderOptions options, IReadOnlyList<long> outputShape, int inputWidth, int inputHeight, int outputIndex = 0)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(outputShape);
        ArgumentOutOfRangeException.ThrowIfLessThan(inputWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(inputHeight, 1);
        options.Validate();
        if (outputShape.Count != 4 || outputShape[0] != 1 || outputShape[1] < 6 || outputShape[2] < 1 || outputShape[3] < 1)
        {
            throw new ArgumentException($"FastestDet output must be [1, 5+C, H, W] with C ≥ 1; got {DetectionShapes.Format(outputShape)}.", nameof(outputShape));
        }

        Options = options;
        _outputIndex = outputIndex;
        _classes = checked((int)outputShape[1] - 5);
        _gridHeight = checked((int)outputShape[2]);
        _gridWidth = checked((int)outputShape[3]);
        _inputWidth = inputWidth;
        _inputHeight = inputHeight;
        _candidates = new DetectionCandidates(options, _gridWidth * _gridHeight);
    }

    /// <inheritdoc />
    public string Kind => "fastestdet";

    /// <inheritdoc />
    public DetectionDecoderOptions Options { get; }

    /// <inheritdoc />
    public int ClassCount => _classes;

    /// <inheritdoc />
    public int Decode(IModelOutputs outputs, in SourceMapping mapping, int frameWidth, int frameHeight, Span<Detection> destination)
    {
        var plane = _gridWidth * _gridHeight;
        var data = DetectionCandidates.Read(outputs, _outputIndex, (5 + _classes) * plane, Kind);
        var threshold = Options.ScoreThreshold;
        _candidates.Clear();
        for (var y = 0; y < _gridHeight; y++)
        {
            for (var x = 0; x < _gridWidth; x++)
            {
                var cell = (y * _gridWidth) + x;
                var objectness = data[cell];
                // cls ≤ 1, so obj^0.6 bounds the score: skip the 80-class scan for background cells.
                var objectnessTerm = MathF.Pow(MathF.Max(objectness, 0f), ObjectnessExponent);
                if (!(objectnessTerm >= threshold))
                {
                    continue;
                }

                var bestClass = 0;
                var best = data[(5 * plane) + cell];
                for (var c = 1; c < _classes; c++)
                {
                    var s = data[((5 + c) * plane) + cell];
                    if (s > best)
                    {
                        best = s;
                        bestClass = c;
                    }
                }

                var score = objectnessTerm * MathF.Pow(MathF.Max(best, 0f), ClassExponent);
                if (!(score >= threshold))
                {
                    continue;
                }

                var cx = (MathF.Tanh(data[plane + cell]) + x) / _gridWidth * _inputWidth;
                var cy = (MathF.Tanh(data[(2 * plane) + cell]) + y) / _gridHeight * _inputHeight;
                var w = DetectionCandidates.Sigmoid(data[(3 * plane) + cell]) * _inputWidth;
                var h = DetectionCandidates.Sigmoid(data[(4 * plane) + cell]) * _inputHeight;
                _candidates.AddCenter(bestClass, score, cx, cy, w, h);
            }
        }

        return _candidates.Finish(mapping, frameWidth, frameHeight, destination);
    }
}
