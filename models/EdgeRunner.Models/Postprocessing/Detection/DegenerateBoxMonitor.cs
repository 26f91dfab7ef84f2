namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>
/// Notices a detector that keeps reporting boxes without area (narrower or lower than a pixel in the frame):
/// confident labels with empty boxes are what a wrongly decoded head looks like (a raw YOLOX grid read as
/// pixels, a wrong box layout), and they pass every other check. Counts frames, not time, so it needs no clock
/// and allocates nothing: a warning is due at the <see cref="FramesBeforeWarning"/>th frame in a row with such
/// boxes, then again every <see cref="FramesBetweenWarnings"/> such frames while it goes on (rate-limited: at
/// 10 frames/s that is one line every 100 s). A frame whose detections all have area resets the run.
/// </summary>
public sealed class DegenerateBoxMonitor
{
    /// <summary>Frames in a row with zero-area boxes before the first warning: a stray empty box now and then is no fault.</summary>
    public const int FramesBeforeWarning = 10;

    /// <summary>Further frames with zero-area boxes between two warnings while the run goes on.</summary>
    public const int FramesBetweenWarnings = 1000;

    /// <summary>Below this width or height in frame pixels a box counts as having no area.</summary>
    public const float MinimumSide = 1f;

    private long _run;

    /// <summary>Frames in a row (so far) that had at least one zero-area box.</summary>
    public long FramesInRow => _run;

    /// <summary>Zero-area boxes counted in the current run.</summary>
    public long BoxesInRow { get; private set; }

    /// <summary>Detections counted in the current run.</summary>
    public long DetectionsInRow { get; private set; }

    /// <summary>Looks at one frame's detections; true when a warning is due now.</summary>
    public bool Observe(ReadOnlySpan<Detection> detections)
    {
        var empty = 0;
        foreach (var d in detections)
        {
            if (!(d.Width >= MinimumSide && d.Height >= MinimumSide))
            {
                empty++;
            }
        }

        if (empty == 0)
        {
            // A frame without detections says nothing either way; one with only real boxes ends the run.
            if (detections.Length > 0)
            {
                _run = 0;
                BoxesInRow = 0;
                DetectionsInRow = 0;
            }

            return false;
        }

        _run++;
        BoxesInRow += empty;
        DetectionsInRow += detections.Length;
        return _run == FramesBeforeWarning || (_run > FramesBeforeWarning && (_run - FramesBeforeWarning) % FramesBetweenWarnings == 0);
    }
}
