using Microsoft.Extensions.Logging;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>Whether a device-backed sensor source is delivering samples.</summary>
public enum SensorSourceState
{
    /// <summary>Samples are flowing.</summary>
    Streaming,

    /// <summary>The device cannot be opened or stopped answering; it is retried with backoff.</summary>
    Unavailable,

    /// <summary>The source has ended (a file replay without loop).</summary>
    Ended,
}

/// <summary>
/// Keeps a sensor stream alive across its device's absences: a chip not answering yet at boot, a USB
/// serial adapter or microphone unplugged and plugged back. The device is opened through a factory;
/// when opening or reading fails with a device error, the source is disposed, the state turns
/// <see cref="SensorSourceState.Unavailable"/> (raised through <see cref="StateChanged"/> with the
/// device's own reason) and the factory is tried again with jittered exponential backoff, while the
/// daemon and its other streams go on. Channels and rate are fixed at construction — from the first
/// successful open, else from what the stream's configuration expects — and a device that comes back
/// with others is refused. Sample indices continue across reopenings.
/// </summary>
public sealed partial class ReopeningSensorSource : ISensorSource
{
    private readonly string _description;
    private readonly Func<ISensorSource> _open;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly TimeSpan _initialBackoff;
    private readonly TimeSpan _maxBackoff;
    private readonly IReadOnlyList<string> _channels;
    private readonly double _sampleRateHz;
    private ISensorSource? _inner;
    private TimeSpan _backoff;
    private int _failures;
    private long _delivered;
    private long _reopens;

    /// <summary>Opens the device once right away; if that fails the source starts <see cref="SensorSourceState.Unavailable"/> and retries on read.</summary>
    /// <param name="description">What the device is, for logs while it is absent (e.g. "serial /dev/ttyUSB0").</param>
    /// <param name="open">Opens the device; throws <see cref="SensorSourceException"/> (or an I/O exception) when it is not there.</param>
    /// <param name="expectedChannels">Channel names the stream expects (used until the device has been opened).</param>
    /// <param name="expectedSampleRateHz">Sample rate the stream expects.</param>
    /// <param name="timeProvider">Clock for the backoff.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="initialBackoff">First retry delay (default 1 s), doubled per failure.</param>
    /// <param name="maxBackoff">Longest retry delay (default 30 s).</param>
    public ReopeningSensorSource(
        string description,
        Func<ISensorSource> open,
        IReadOnlyList<string> expectedChannels,
        double expectedSampleRateHz,
        TimeProvider timeProvider,
        ILogger logger,
        TimeSpan? initialBackoff = null,
        TimeSpan? maxBackoff = null)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(expectedChannels);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        _description = description;
        _open = open;
        _timeProvider = timeProvider;
        _logger = logger;
        _initialBackoff = initialBackoff ?? TimeSpan.FromSeconds(1);
        _maxBackoff = maxBackoff ?? TimeSpan.FromSeconds(30);
        _backoff = _initialBackoff;
        _channels = expectedChannels;
        _sampleRateHz = expectedSampleRateHz;
        if (TryOpen(out var reason))
        {
            _channels = _inner!.Channels;
            _sampleRateHz = _inner.SampleRateHz;
            State = SensorSourceState.Streaming;
            Reason = "opened";
        }
        else
        {
            State = SensorSourceState.Unavailable;
            Reason = reason;
            LogUnavailable(_logger, _description, reason, _backoff.TotalSeconds);
        }
    }

    /// <summary>Raised on every change of <see cref="State"/>, with the reason (the device's own error when unavailable).</summary>
    public event EventHandler<SensorSourceStateChangedEventArgs>? StateChanged;

    /// <summary>Current state.</summary>
    public SensorSourceState State { get; private set; }

    /// <summary>Why the source is in its <see cref="State"/>.</summary>
    public string Reason { get; private set; }

    /// <summary>Times the device was opened again after being lost or absent.</summary>
    public long Reopens => Interlocked.Read(ref _reopens);

    /// <inheritdoc />
    public string Description => _inner?.Description ?? _description;

    /// <inheritdoc />
    public IReadOnlyList<string> Channels => _channels;

    /// <inheritdoc />
    public double SampleRateHz => _sampleRateHz;

    /// <inheritdoc />
    public async ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_inner is null)
            {
                if (!TryOpen(out var reason))
                {
                    SetState(SensorSourceState.Unavailable, reason);
                    await WaitBackoffAsync(cancellationToken);
                    continue;
                }

                Interlocked.Increment(ref _reopens);
                LogReopened(_logger, _description);
            }

            SensorBlock block;
            try
            {
                block = await _inner!.ReadAsync(destination, cancellationToken);
            }
            catch (Exception ex) when (IsDeviceError(ex) && !cancellationToken.IsCancellationRequested)
            {
                await CloseAsync();
                SetState(SensorSourceState.Unavailable, ex.Message);
                LogLost(_logger, _description, ex.Message, _backoff.TotalSeconds);
                await WaitBackoffAsync(cancellationToken);
                continue;
            }

            if (block.Samples == 0)
            {
                SetState(SensorSourceState.Ended, "the source ended");
                return block;
            }

            _failures = 0;
            SetState(SensorSourceState.Streaming, "reading");
            var first = _delivered;
            _delivered += block.Samples;
            return block with { FirstSampleIndex = first };
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => CloseAsync();

    private static bool IsDeviceError(Exception ex) =>
        ex is SensorSourceException or IOException or UnauthorizedAccessException or TimeoutException;

    private bool TryOpen(out string reason)
    {
        ISensorSource opened;
        try
        {
            opened = _open();
            if (opened.Channels.Count != _channels.Count || (_sampleRateHz > 0 && Math.Abs(opened.SampleRateHz - _sampleRateHz) > 1e-9))
            {
                reason = $"{opened.Description} has {opened.Channels.Count} channels at {opened.SampleRateHz} Hz; the stream expects {_channels.Count} at {_sampleRateHz} Hz";
                opened.DisposeAsync().AsTask().GetAwaiter().GetResult();
                return false;
            }

            _inner = opened;
            reason = string.Empty;
            return true;
        }
        catch (Exception ex) when (IsDeviceError(ex))
        {
            reason = ex.Message;
            return false;
        }
    }

    private async Task WaitBackoffAsync(CancellationToken cancellationToken)
    {
        // Up to 20 % shorter at random, so that several streams on one bus do not retry in lockstep.
        _failures++;
        _backoff = Supervision.Backoff.Exponential(_initialBackoff, _maxBackoff, _failures, jitter: 0.2, sample: Random.Shared.NextDouble());
        await Task.Delay(_backoff, _timeProvider, cancellationToken);
    }

    private async ValueTask CloseAsync()
    {
        var inner = _inner;
        _inner = null;
        if (inner is not null)
        {
            try
            {
                await inner.DisposeAsync();
            }
            catch (Exception ex) when (IsDeviceError(ex))
            {
                // A device that vanished may fail to close; it is gone either way.
            }
        }
    }

    private void SetState(SensorSourceState state, string reason)
    {
        if (state == State && (state != SensorSourceState.Unavailable || reason == Reason))
        {
            return;
        }

        State = state;
        Reason = reason;
        StateChanged?.Invoke(this, new SensorSourceStateChangedEventArgs(state, reason));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor source {Device} unavailable: {Reason}; retrying in {BackoffSeconds:0.#} s, the other streams go on")]
    private static partial void LogUnavailable(ILogger logger, string device, string reason, double backoffSeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor source {Device} lost: {Reason}; reopening in {BackoffSeconds:0.#} s")]
    private static partial void LogLost(ILogger logger, string device, string reason, double backoffSeconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor source {Device} opened again")]
    private static partial void LogReopened(ILogger logger, string device);
}

/// <summary>A <see cref="ReopeningSensorSource"/> changed state.</summary>
public sealed class SensorSourceStateChangedEventArgs(SensorSourceState state, string reason) : EventArgs
{
    /// <summary>The new state.</summary>
    public SensorSourceState State { get; } = state;

    /// <summary>Why.</summary>
    public string Reason { get; } = reason;
}
