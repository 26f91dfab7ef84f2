namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// The clock of a polled source: one sample per period of the injected <see cref="TimeProvider"/>,
/// written channel-interleaved into the caller's buffer, with the block's first-sample time and
/// index. The clock starts at the first read. <see cref="PeriodicTimer"/> keeps the rate without
/// drift and, when the consumer fell behind, wakes once rather than bursting the missed periods;
/// its waits allocate nothing in steady state.
/// </summary>
internal sealed class PacedSampler : IDisposable
{
    private readonly TimeProvider _timeProvider;
    private readonly TimeSpan _period;
    private readonly int _channels;
    private readonly SampleWriter _takeSample;
    private PeriodicTimer? _timer;
    private long _sampleIndex;

    /// <param name="timeProvider">The clock.</param>
    /// <param name="sampleRateHz">Samples per second (positive).</param>
    /// <param name="channels">Values per sample.</param>
    /// <param name="takeSample">Writes one sample, called when its period has passed.</param>
    public PacedSampler(TimeProvider timeProvider, double sampleRateHz, int channels, SampleWriter takeSample)
    {
        _timeProvider = timeProvider;
        _period = TimeSpan.FromSeconds(1 / sampleRateHz);
        _channels = channels;
        _takeSample = takeSample;
    }

    /// <summary>Writes the values of one sample, one per channel.</summary>
    public delegate void SampleWriter(Span<float> sample);

    /// <summary>True once the first read has started the clock.</summary>
    public bool Started => _timer is not null;

    /// <summary>Samples taken since the start.</summary>
    public long SamplesTaken => Interlocked.Read(ref _sampleIndex);

    /// <summary>Takes as many samples as <paramref name="destination"/> holds, each when its period has passed.</summary>
    public async ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        var samples = destination.Length / _channels;
        if (samples == 0)
        {
            throw new ArgumentException($"The buffer holds no whole sample of {_channels} channels.", nameof(destination));
        }

        _timer ??= new PeriodicTimer(_period, _timeProvider);
        var firstIndex = _sampleIndex;
        var firstTime = default(DateTimeOffset);
        for (var i = 0; i < samples; i++)
        {
            // False only when the timer was disposed, i.e. the source was disposed while reading.
            var ticked = await _timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false);
            ObjectDisposedException.ThrowIf(!ticked, this);
            if (i == 0)
            {
                firstTime = _timeProvider.GetUtcNow();
            }

            _takeSample(destination.Span.Slice(i * _channels, _channels));
            Interlocked.Increment(ref _sampleIndex);
        }

        return new SensorBlock(samples, firstTime, firstIndex);
    }

    /// <inheritdoc />
    public void Dispose() => _timer?.Dispose();
}
