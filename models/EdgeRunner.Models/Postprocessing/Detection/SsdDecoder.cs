using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>
/// SSD-style detector with boxes already decoded (UltraFace and similar): <c>scores</c> [1, N, K] (column 0 is
/// the background unless <see cref="DetectionDecoderOptions.SsdBackgroundColumn"/> is false) and <c>boxes</c>
/// [1, N, 4] as normalised x1, y1, x2, y2. Each anchor contributes its best non-background class; reported
/// class ids do not count the background column.
/// </summary>
public sealed class SsdDecoder : IDetectionDecoder
{
    private readonly DetectionCandidates _candidates;
    private readonly int _scoresIndex;
    private readonly int _boxesIndex;
    private readonly int _anchors;
    private readonly int _columns;
    private readonly int _firstClass;
    private readonly float _inputWidth;
    private readonly float _inputHeight;

    /// <summary>
    /// Creates a decoder for the scores output <paramref name="scoresIndex"/> (shape <paramref name="scoresShape"/>) and
    /// boxes output <paramref name="boxesIndex"/> (shape <paramref name="boxesShape"/>) of a model with a
    /// <paramref name="inputWidth"/>×<paramref name="inputHeight"/> input.
    /// </summary>
    public SsdDecoder(DetectionDecoderOptions options, IReadOnlyList<long> scoresShape, IReadOnlyList<long> boxesShape, int inputWidth, int inputHeight, int scoresIndex = 0, int boxesIndex = 1)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(scoresShape);
        ArgumentNullException.ThrowIfNull(boxesShape);
        ArgumentOutOfRangeException.ThrowIfLessThan(inputWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(inputHeight, 1);
        options.Validate();
        _firstClass = options.SsdBackgroundColumn ? 1 : 0;
        if (scoresShape.Count != 3 || scoresShape[0] != 1 || scoresShape[1] < 1 || scoresShape[2] < _firstClass + 1)
        {
            throw new ArgumentException($"SSD scores must be [1, N, K] with at least one class besides the background; got {DetectionShapes.Format(scoresShape)}.", nameof(scoresShape));
        }

        if (boxesShape.Count != 3 || boxesShape[0] != 1 || boxesShape[1] != scoresShape[1] || boxesShape[2] != 4)
        {
            throw new ArgumentException($"SSD boxes must be [1, N, 4] with the N of the scores {DetectionShapes.Format(scoresShape)}; got {DetectionShapes.Format(boxesShape)}.", nameof(boxesShape));
        }

        Options = options;
        _scoresIndex = scoresIndex;
        _boxesIndex = boxesIndex;
        _anchors = checked((int)scoresShape[1]);
        _columns = checked((int)scoresShape[2]);
        _inputWidth = inputWidth;
        _inputHeight = inputHeight;
        _candidates = new DetectionCandidates(options, _anchors);
    }

    /// <inheritdoc />
    public string Kind => "ssd";

    /// <inheritdoc />
    public DetectionDecoderOptions Options { get; }

    /// <inheritdoc />
    public int ClassCount => _columns - _firstClass;

    /// <inheritdoc />
    public int Decode(IModelOutputs outputs, in SourceMapping mapping, int frameWidth, int frameHeight, Span<Detection> destination)
    {
        var scores = DetectionCandidates.Read(outputs, _scoresIndex, _anchors * _columns, Kind);
        var boxes = DetectionCandidates.Read(outputs, _boxesIndex, _anchors * 4, Kind);
        var threshold = Options.ScoreThreshold;
        _candidates.Clear();
        for (var a = 0; a < _anchors; a++)
        {
            var row = scores.Slice((a * _columns) + _firstClass, _columns - _firstClass);
            var bestClass = 0;
            var best = row[0];
            for (var c = 1; c < row.Length; c++)
            {
                if (row[c] > best)
                {
                    best = row[c];
                    bestClass = c;
                }
            }

            if (best >= threshold)
            {
                var b = boxes.Slice(a * 4, 4);
                _candidates.Add(bestClass, best, b[0] * _inputWidth, b[1] * _inputHeight, b[2] * _inputWidth, b[3] * _inputHeight);
            }
        }

        return _candidates.Finish(mapping, frameWidth, frameHeight, destination);
    }
}
