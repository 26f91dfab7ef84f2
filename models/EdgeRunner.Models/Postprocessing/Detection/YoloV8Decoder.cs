using System.Numerics;
using System.Runtime.InteropServices;
using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>
/// Ultralytics YOLOv8 / YOLO11 detection head, output <c>[1, 4+C, N]</c>: rows 0–3 are cx, cy, w, h in
/// model-input pixels, rows 4.. the class scores already in [0, 1] (no objectness). Each anchor contributes
/// its best class only, as Ultralytics does by default.
/// </summary>
public sealed class YoloV8Decoder : IDetectionDecoder
{
    private readonly DetectionCandidates _candidates;
    private readonly int _outputIndex;
    private readonly int _anchors;
    private readonly int _classes;
    private readonly float[] _bestScore;
    private readonly int[] _bestClass;

    /// <summary>Creates a decoder for output <paramref name="outputIndex"/> of shape <paramref name="outputShape"/> = [1, 4+C, N].</summary>
    public YoloV8Decoder(DetectionDecoderOptions options, IReadOnlyList<long> outputShape, int outputIndex = 0)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(outputShape);
        options.Validate();
        if (outputShape.Count != 3 || outputShape[0] != 1 || outputShape[1] < 5 || outputShape[2] < 1)
        {
            throw new ArgumentException($"YOLOv8 output must be [1, 4+C, N] with C ≥ 1; got {DetectionShapes.Format(outputShape)}.", nameof(outputShape));
        }

        Options = options;
        _outputIndex = outputIndex;
        _classes = checked((int)outputShape[1] - 4);
        _anchors = checked((int)outputShape[2]);
        _bestScore = new float[_anchors];
        _bestClass = new int[_anchors];
        _candidates = new DetectionCandidates(options, _anchors);
    }

    /// <inheritdoc />
    public string Kind => "yolov8";

    /// <inheritdoc />
    public DetectionDecoderOptions Options { get; }

    /// <inheritdoc />
    public int ClassCount => _classes;

    /// <summary>Number of anchors N.</summary>
    public int AnchorCount => _anchors;

    /// <inheritdoc />
    public int Decode(IModelOutputs outputs, in SourceMapping mapping, int frameWidth, int frameHeight, Span<Detection> destination)
    {
        var n = _anchors;
        var data = DetectionCandidates.Read(outputs, _outputIndex, (4 + _classes) * n, Kind);

        // The layout is channel-major: walking one class row at a time over all anchors reads memory
        // sequentially (per-anchor argmax would stride N floats per step and miss the cache 80 times per anchor).
        var best = _bestScore.AsSpan(0, n);
        var bestClass = _bestClass.AsSpan(0, n);
        data.Slice(4 * n, n).CopyTo(best);
        bestClass.Clear();
        for (var c = 1; c < _classes; c++)
        {
            var row = data.Slice((4 + c) * n, n);
            var i = 0;
            if (Vector.IsHardwareAccelerated)
            {
                // Branch-free SIMD argmax: with 80 classes this loop is ~700k compares per frame, and the scalar
                // version's data-dependent branch mispredicts on busy scenes.
                var classVector = new Vector<int>(c);
                var bestVectors = MemoryMarshal.Cast<float, Vector<float>>(best);
                var classVectors = MemoryMarshal.Cast<int, Vector<int>>(bestClass);
                var rowVectors = MemoryMarshal.Cast<float, Vector<float>>(row);
                for (var v = 0; v < rowVectors.Length; v++)
                {
                    var greater = Vector.GreaterThan(rowVectors[v], bestVectors[v]);
                    bestVectors[v] = Vector.Max(rowVectors[v], bestVectors[v]);
                    classVectors[v] = Vector.ConditionalSelect(greater, classVector, classVectors[v]);
                }

                i = rowVectors.Length * Vector<float>.Count;
            }

            for (; i < row.Length; i++)
            {
                if (row[i] > best[i])
                {
                    best[i] = row[i];
                    bestClass[i] = c;
                }
            }
        }

        _candidates.Clear();
        var threshold = Options.ScoreThreshold;
        var cx = data[..n];
        var cy = data.Slice(n, n);
        var w = data.Slice(2 * n, n);
        var h = data.Slice(3 * n, n);
        for (var i = 0; i < n; i++)
        {
            if (best[i] >= threshold)
            {
                _candidates.AddCenter(bestClass[i], best[i], cx[i], cy[i], w[i], h[i]);
            }
        }

        return _candidates.Finish(mapping, frameWidth, frameHeight, destination);
    }
}
