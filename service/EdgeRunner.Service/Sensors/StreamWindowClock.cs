namespace EdgeRunner.Service.Sensors;

/// <summary>
/// The window clock of one stream: the start and end time of each step's window, and where the next
/// block of samples is expected. Window times follow the model-rate sample clock from the stream's
/// first sample (so they do not drift with the source's block timing); a reset that drops samples
/// restarts the clock at the first sample kept after it; dropped invalid samples stretch the window
/// they fell in. Driven only by sample times, never by the wall clock. Not thread-safe: the stream's
/// own loop owns it.
/// </summary>
internal sealed class StreamWindowClock(double modelRateHz)
{
    private DateTimeOffset _anchor;
    private bool _resumed;
    private bool _restartPending;
    private DateTimeOffset? _restartAt;
    private TimeSpan _droppedTime;

    /// <summary>Model-rate samples stepped since the stream's first sample (or resumed at).</summary>
    public long ModelSampleIndex { get; private set; }

    /// <summary>Whether a block has been read since the stream (or its restore) started.</summary>
    public bool Started { get; private set; }

    /// <summary>Time of the sample after the last block read (meaningful once <see cref="Started"/>).</summary>
    public DateTimeOffset ExpectedNextSample { get; private set; }

    /// <summary>Continues a restored stream: its clock started <paramref name="modelSampleIndex"/> samples before the first block it reads.</summary>
    public void Resume(long modelSampleIndex)
    {
        ModelSampleIndex = modelSampleIndex;
        _resumed = true;
    }

    /// <summary>Anchors the clock at the stream's first block (before <see cref="BlockRead"/> of that block).</summary>
    public void Anchor(DateTimeOffset firstSampleTime) =>
        _anchor = firstSampleTime - (_resumed ? Offset(ModelSampleIndex) : TimeSpan.Zero);

    /// <summary>
    /// A block of <paramref name="duration"/> starting at <paramref name="firstSampleTime"/> was read:
    /// the next one is expected after it, and a restart asked for by <see cref="RestartAtNextBlock"/> starts here.
    /// </summary>
    public void BlockRead(DateTimeOffset firstSampleTime, TimeSpan duration)
    {
        Started = true;
        ExpectedNextSample = firstSampleTime + duration;
        if (_restartPending)
        {
            // A reset since the last block (a command, a gap): the clock restarts at this block.
            _restartAt = firstSampleTime;
            _restartPending = false;
        }
    }

    /// <summary>Samples were dropped with a reset: the clock restarts at the next block read.</summary>
    public void RestartAtNextBlock() => _restartPending = true;

    /// <summary>Samples were dropped with a reset within a block: the clock restarts at <paramref name="firstKeptSampleTime"/>.</summary>
    public void RestartAt(DateTimeOffset firstKeptSampleTime)
    {
        _restartPending = false;
        _restartAt = firstKeptSampleTime;
    }

    /// <summary>An invalid sample of <paramref name="period"/> was dropped: the samples after it are that much later than the clock would say.</summary>
    public void SampleDropped(TimeSpan period) => _droppedTime += period;

    /// <summary>Applies a restart after a block has been sanitised (no-op without one).</summary>
    public void ApplyRestart()
    {
        if (_restartAt is { } next)
        {
            // Samples were dropped with a reset: the window clock restarts at the first sample kept.
            _anchor = next - Offset(ModelSampleIndex);
            _restartAt = null;
            _droppedTime = TimeSpan.Zero;
        }
    }

    /// <summary>The window of the next step of <paramref name="samples"/> model-rate samples; advances the clock past it.</summary>
    public (DateTimeOffset Start, DateTimeOffset End) NextWindow(int samples)
    {
        var start = _anchor + Offset(ModelSampleIndex);
        ModelSampleIndex += samples;

        // Dropped samples stretch the window they fell in; the next windows start that much later.
        _anchor += _droppedTime;
        _droppedTime = TimeSpan.Zero;
        return (start, _anchor + Offset(ModelSampleIndex));
    }

    /// <summary>A step of <paramref name="samples"/> produced nothing (a non-finite output): the clock goes on past it.</summary>
    public void SkipWindow(int samples) => ModelSampleIndex += samples;

    private TimeSpan Offset(long modelSamples) => TimeSpan.FromSeconds(modelSamples / modelRateHz);
}
