namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>Thresholds and model-family specifics for an <see cref="IDetectionDecoder"/>.</summary>
public sealed record DetectionDecoderOptions
{
    /// <summary>Candidates scoring below this are dropped before NMS (a score equal to it is kept).</summary>
    public float ScoreThreshold { get; init; } = 0.25f;

    /// <summary>A candidate whose IoU with a better kept box of the same class is strictly above this is suppressed.</summary>
    public float IouThreshold { get; init; } = 0.45f;

    /// <summary>At most this many detections are reported.</summary>
    public int MaxDetections { get; init; } = 100;

    /// <summary>When true, boxes of different classes suppress each other too.</summary>
    public bool ClassAgnostic { get; init; }

    /// <summary>
    /// Only the best this-many candidates above the threshold enter NMS. Bounds NMS cost when a low threshold lets
    /// thousands of anchors through (YOLOv8: 8400); the dropped ones would almost all be suppressed anyway.
    /// </summary>
    public int PreNmsTopK { get; init; } = 1000;

    /// <summary>
    /// YOLOX only: true when the export has no decode step (<c>decode_in_inference=False</c>, the default YOLOX
    /// export), so boxes are grid offsets and log sizes: <c>x = (px + grid_x) * stride</c>, <c>w = exp(pw) * stride</c>;
    /// false when boxes are already input pixels. Null (the default): inferred by <see cref="YoloXDecoder"/> — raw
    /// when the anchor count is the stride grids' cell count for the input size and the first candidates, read as
    /// pixels, would all be degenerate boxes in the input's top-left corner (see <see cref="YoloXDecoder.RawGridDecision"/>).
    /// </summary>
    public bool? RawGrid { get; init; }

    /// <summary>YOLOX raw grid: the head strides, in the order their anchors appear in the output.</summary>
    public IReadOnlyList<int> Strides { get; init; } = [8, 16, 32];

    /// <summary>SSD only: score column 0 is the background class (not reported; class ids start at the next column).</summary>
    public bool SsdBackgroundColumn { get; init; } = true;

    /// <summary>Throws when a value is out of range.</summary>
    public void Validate()
    {
        if (!(ScoreThreshold >= 0f && ScoreThreshold <= 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(ScoreThreshold), ScoreThreshold, "Score threshold must be in [0, 1].");
        }

        if (!(IouThreshold >= 0f && IouThreshold <= 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(IouThreshold), IouThreshold, "IoU threshold must be in [0, 1].");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDetections, 1, nameof(MaxDetections));
        ArgumentOutOfRangeException.ThrowIfLessThan(PreNmsTopK, 1, nameof(PreNmsTopK));
        if (RawGrid != false && (Strides is null || Strides.Count == 0 || Strides.Any(s => s < 1)))
        {
            throw new ArgumentException("A raw grid needs at least one positive stride.", nameof(Strides));
        }
    }
}
