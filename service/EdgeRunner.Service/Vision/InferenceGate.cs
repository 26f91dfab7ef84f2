using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Service.Vision;

/// <summary>What the inference loop does with a frame.</summary>
internal enum GateDecision
{
    /// <summary>Run the model.</summary>
    Infer,

    /// <summary>Skipped: too soon after the last inferred frame (<c>DetectFps</c>).</summary>
    SkipRate,

    /// <summary>Skipped: nothing moved and the forced interval has not passed.</summary>
    SkipMotion,
}

/// <summary>
/// Decides, per frame, whether the model runs: first the detection rate limit (cheap, a timestamp
/// compare), then the motion test on the frames the rate limit lets through, with a forced inference
/// every so often so a still object keeps being reported. Times are <see cref="TimeProvider"/>
/// timestamps taken by the caller, so tests drive it with a fake clock. Not thread-safe; the
/// inference loop is its only user. Allocates nothing per frame.
/// </summary>
internal sealed class InferenceGate
{
    private readonly long _intervalTicks;
    private readonly long _forcedIntervalTicks;
    private readonly MotionDetector? _motion;
    private long _lastInferred;
    private long _nextDue;
    private bool _inferredOnce;

    /// <param name="detectFps">Most inferences per second; 0 = no limit.</param>
    /// <param name="motion">Motion detector, or null for no motion gating.</param>
    /// <param name="forcedInterval">With motion gating: infer at least this often anyway (zero = never).</param>
    /// <param name="timestampFrequency">Ticks per second of the timestamps passed to <see cref="Evaluate"/>.</param>
    public InferenceGate(double detectFps, MotionDetector? motion, TimeSpan forcedInterval, long timestampFrequency)
    {
        _intervalTicks = detectFps > 0 ? (long)(timestampFrequency / detectFps) : 0;
        _motion = motion;

        // A frame up to 5 % early counts as on time for the forced run: frames are paced, not exact, and
        // one arriving 1 ms before the interval is up would otherwise push the forced run a whole frame later.
        _forcedIntervalTicks = forcedInterval > TimeSpan.Zero ? (long)(forcedInterval.TotalSeconds * 0.95 * timestampFrequency) : long.MaxValue;
    }

    /// <summary>
    /// Decides for a frame that arrived at <paramref name="timestamp"/>. An <see cref="GateDecision.Infer"/>
    /// answer counts as inferred from then on (the caller runs the model whether or not that succeeds).
    /// </summary>
    public GateDecision Evaluate(long timestamp, in ImageView image)
    {
        if (_inferredOnce && timestamp < _nextDue)
        {
            return GateDecision.SkipRate;
        }

        var sinceLast = _inferredOnce ? timestamp - _lastInferred : long.MaxValue;

        // The motion test sees only frames the rate limit let through: while the model runs at DetectFps the
        // frame compared against is one interval older, so slow movement adds up instead of vanishing between
        // consecutive frames; while the scene is still it is simply the previous frame.
        if (_motion is not null && !_motion.Detect(image) && sinceLast < _forcedIntervalTicks)
        {
            return GateDecision.SkipMotion;
        }

        // The next frame is due one interval after this one was *due*, not after it arrived: frames never come
        // exactly on time, and with "one interval after the last inferred frame" a frame due at 500 ms that
        // turns up at 499 ms would be skipped and DetectFps 2 on a 10 fps camera would infer every 600 ms.
        // Keeping the schedule gives DetectFps on average (the rule of ffmpeg's fps filter); an individual
        // gap can be shorter by up to one capture period, and never shorter than half the interval. After an
        // idle stretch (motion gating, a stalled source) the schedule restarts rather than bursting to catch up.
        _nextDue = !_inferredOnce || timestamp - _nextDue >= _intervalTicks
            ? timestamp + _intervalTicks
            : Math.Max(_nextDue + _intervalTicks, timestamp + (_intervalTicks / 2));

        _lastInferred = timestamp;
        _inferredOnce = true;
        return GateDecision.Infer;
    }
}
