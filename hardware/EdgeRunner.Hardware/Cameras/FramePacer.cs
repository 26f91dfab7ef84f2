namespace EdgeRunner.Hardware.Cameras;

/// <summary>
/// Paces a self-timed source at a fixed rate against a <see cref="TimeProvider"/>. Due times are
/// computed from the start (not from the previous wake-up) so the rate does not drift.
/// </summary>
internal sealed class FramePacer
{
    private readonly TimeProvider _timeProvider;
    private readonly long _periodTicks;
    private long _startTimestamp = -1;
    private long _count;

    public FramePacer(TimeProvider timeProvider, double framesPerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(framesPerSecond);
        _timeProvider = timeProvider;
        _periodTicks = (long)(timeProvider.TimestampFrequency / framesPerSecond);
    }

    /// <summary>Waits until the next frame is due. The first call returns at once.</summary>
    public async ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        var now = _timeProvider.GetTimestamp();
        if (_startTimestamp < 0)
        {
            _startTimestamp = now;
        }

        var due = _startTimestamp + (_count * _periodTicks);
        _count++;
        if (due > now)
        {
            var wait = TimeSpan.FromSeconds((double)(due - now) / _timeProvider.TimestampFrequency);
            await Task.Delay(wait, _timeProvider, cancellationToken).ConfigureAwait(false);
        }
        else if (now - due > _periodTicks * 4)
        {
            // Far behind (the consumer blocked us, or the clock jumped): restart the schedule rather than burst.
            _startTimestamp = now;
            _count = 1;
        }
    }
}
