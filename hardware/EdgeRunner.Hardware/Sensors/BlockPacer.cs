namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// Paces a self-timed block source (a simulator) at a fixed number of blocks per second against a
/// <see cref="TimeProvider"/>, with its wake-ups on a grid shared by every pacer of the same rate in
/// the process: multiples of the period on the provider's timestamp clock. Two simulated machines at
/// 4 blocks/s then wake at the same instants, so one timer pass, one thread-pool wake-up, one model batch
/// and one publisher wake-up serve both instead of each stream paying its own (the idle-time cost of a
/// small board is in those wake-ups, not in the samples).
/// </summary>
/// <remarks>
/// The first block is delivered at once; the second on the first grid point at least one period later,
/// so a block comes at most one period (one block) later than a free-running pacer would deliver it, and
/// every later one exactly one period after the previous. Due times are computed on the grid, not from
/// the previous wake-up, so the rate does not drift. Far behind (the consumer blocked, the clock jumped),
/// the schedule restarts on the grid rather than bursting. Waits allocate only what
/// <see cref="Task.Delay(TimeSpan, TimeProvider, CancellationToken)"/> does.
/// </remarks>
internal sealed class BlockPacer
{
    private readonly TimeProvider _timeProvider;
    private readonly long _periodTicks;
    private long _nextDue = -1;

    /// <param name="timeProvider">The clock.</param>
    /// <param name="blocksPerSecond">Blocks per second (positive).</param>
    public BlockPacer(TimeProvider timeProvider, double blocksPerSecond)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blocksPerSecond);
        _timeProvider = timeProvider;
        _periodTicks = Math.Max(1, (long)Math.Round(timeProvider.TimestampFrequency / blocksPerSecond));
    }

    /// <summary>The period in the provider's timestamp ticks (the grid's spacing).</summary>
    public long PeriodTicks => _periodTicks;

    /// <summary>The timestamp the next <see cref="WaitAsync"/> waits for; -1 before the first call.</summary>
    public long NextDue => _nextDue;

    /// <summary>Waits until the next block is due. The first call returns at once.</summary>
    public async ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        var now = _timeProvider.GetTimestamp();
        if (_nextDue < 0)
        {
            _nextDue = GridPointAtOrAfter(now + _periodTicks);
            return;
        }

        var due = _nextDue;
        _nextDue += _periodTicks;
        if (due > now)
        {
            var wait = TimeSpan.FromSeconds((double)(due - now) / _timeProvider.TimestampFrequency);
            await Task.Delay(wait, _timeProvider, cancellationToken).ConfigureAwait(false);
        }
        else if (now - due > _periodTicks * 4)
        {
            // Far behind: the next block one period from now, on the grid, rather than a burst of the missed ones.
            _nextDue = GridPointAtOrAfter(now + _periodTicks);
        }
    }

    private long GridPointAtOrAfter(long timestamp)
    {
        var rest = timestamp % _periodTicks;
        return rest == 0 ? timestamp : timestamp - rest + _periodTicks;
    }
}
