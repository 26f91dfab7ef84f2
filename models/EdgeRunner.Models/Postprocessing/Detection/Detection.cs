namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>
/// One detected object: class id, score, and its box in ORIGINAL FRAME pixels (continuous coordinates,
/// x1 ≤ x2 and y1 ≤ y2, clamped to [0, frame width] × [0, frame height]).
/// </summary>
/// <param name="ClassId">Class index of the model's labels (for SSD models the background column is not counted: the first real class is 0).</param>
/// <param name="Score">Confidence in [0, 1] as the model family defines it (e.g. objectness × class score for YOLOv5).</param>
/// <param name="X1">Left edge in frame pixels.</param>
/// <param name="Y1">Top edge in frame pixels.</param>
/// <param name="X2">Right edge in frame pixels.</param>
/// <param name="Y2">Bottom edge in frame pixels.</param>
public readonly record struct Detection(int ClassId, float Score, float X1, float Y1, float X2, float Y2)
{
    /// <summary>Box width in frame pixels.</summary>
    public float Width => X2 - X1;

    /// <summary>Box height in frame pixels.</summary>
    public float Height => Y2 - Y1;
}
