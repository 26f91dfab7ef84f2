using System.Runtime.CompilerServices;
using EdgeRunner.Hardware.Supervision;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// Keeps a sensor stream alive across its device's absences: a chip not answering yet at boot, a USB
/// serial adapter or microphone unplugged and plugged back. The device is opened through a factory;
/// when opening or reading fails with a device error, the source is disposed, the state turns
/// <see cref="SourceHealth.Unavailable"/> (raised through <see cref="StateChanged"/> with the
/// device's own reason) and the factory is tried again with jittered exponential backoff, while the
/// daemon and its other streams go on. Channels and rate are fixed at construction — from the first
/// successful open, else from what the stream's configuration expects — and a device that comes back
/// with others is refused. Sample indices continue across reopenings.
/// </summary>
/// <remarks>
/// <para>
/// The state is <see cref="SourceHealth.Streaming"/> only once a block has actually been read
/// after an open: a device opened at construction starts <see cref="SourceHealth.Opening"/>
/// (a live capture or a serial port is only started by the first read, which may still fail), and a
/// device reopened after a loss stays <see cref="SourceHealth.Unavailable"/> until it delivers.
/// </para>
/// <para>
/// Sources that ride out a lost device by themselves (they reconnect or restart internally and block
/// meanwhile, so no read ever throws) implement <see cref="IDeviceAvailability"/>; their
/// "unavailable"/"available" notifications are mirrored into <see cref="State"/> while they are open.
/// Polled bus sources (I2C, GPIO) instead throw after a sustained run of failed reads.
/// </para>
/// </remarks>
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
    private readonly EventHandler<DeviceAvailabilityChangedEventArgs> _onAvailabilityChanged;
    private ISensorSource? _inner;
    private ISensorSource? _refusedAtConstruction;
    private bool _waitBeforeOpen;
    private bool _innerLost;
    private TimeSpan _backoff;
    private int _failures;
    private long _delivered;
    private long _reopens;

    /// <summary>Opens the device once right away; if that fails the source starts <see cref="SourceHealth.Unavailable"/> and retries on read.</summary>
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
        _onAvailabilityChanged = OnAvailabilityChanged;

        // A constructor cannot await: the first open is synchronous (factories are), and a device that
        // is refused here is disposed by the first read (or by DisposeAsync) rather than blocking on it.
        string reason;
        try
        {
            var opened = _open();
            if (Mismatch(opened) is { } refused)
            {
                _refusedAtConstruction = opened;
                reason = refused;
            }
            else
            {
                Attach(opened);
                _channels = opened.Channels;
                _sampleRateHz = opened.SampleRateHz;
                reason = string.Empty;
            }
        }
        catch (Exception ex) when (IsDeviceError(ex))
        {
            reason = ex.Message;
            InitialError = ex;
        }

        if (_inner is not null)
        {
            // Opened is not delivering: a live capture or serial port only starts on the first read.
            State = SourceHealth.Opening;
            Reason = "opened; waiting for the first samples";
        }
        else
        {
            State = SourceHealth.Unavailable;
            Reason = reason;
            NextBackoff();
            _waitBeforeOpen = true;
            LogUnavailable(_logger, _description, reason, _backoff.TotalSeconds);
        }
    }

    /// <summary>Raised on every change of <see cref="State"/>, with the reason (the device's own error when unavailable).</summary>
    public event EventHandler<SourceHealthChangedEventArgs>? StateChanged;

    /// <summary>Current state.</summary>
    public SourceHealth State { get; private set; }

    /// <summary>Why the source is in its <see cref="State"/>.</summary>
    public string Reason { get; private set; }

    /// <summary>Why the device could not be opened at construction, if it could not (lets the owner tell an absent device from a missing program).</summary>
    public Exception? InitialError { get; }

    /// <summary>Times the device was opened again after being lost or absent.</summary>
    public long Reopens => Interlocked.Read(ref _reopens);

    /// <inheritdoc />
    public string Description => _inner?.Description ?? _description;

    /// <inheritdoc />
    public IReadOnlyList<string> Channels => _channels;

    /// <inheritdoc />
    public double SampleRateHz => _sampleRateHz;

    /// <inheritdoc />
    // Pooled builder: a read that awaits the device would otherwise allocate its state machine per block.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        if (_refusedAtConstruction is { } refused)
        {
            _refusedAtConstruction = null;
            await DisposeQuietlyAsync(refused).ConfigureAwait(false);
        }

        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_inner is null)
            {
                if (_waitBeforeOpen)
                {
                    // The wait that was logged with the failure; _backoff is the one computed then.
                    _waitBeforeOpen = false;
                    await Task.Delay(_backoff, _timeProvider, cancellationToken).ConfigureAwait(false);
                }

                if (await TryOpenAsync(cancellationToken).ConfigureAwait(false) is { } reason)
                {
                    SetState(SourceHealth.Unavailable, reason);
                    NextBackoff();
                    _waitBeforeOpen = true;
                    continue;
                }

                Interlocked.Increment(ref _reopens);
                LogReopened(_logger, _description);
            }

            SensorBlock block;
            try
            {
                block = await _inner!.ReadAsync(destination, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsDeviceError(ex) && !cancellationToken.IsCancellationRequested)
            {
                await CloseAsync().ConfigureAwait(false);
                SetState(SourceHealth.Unavailable, ex.Message);
                // Log the wait that will actually be taken, not the previous one.
                NextBackoff();
                _waitBeforeOpen = true;
                LogLost(_logger, _description, ex.Message, _backoff.TotalSeconds);
                continue;
            }

            if (block.Samples == 0)
            {
                SetState(SourceHealth.Ended, "the source ended");
                return block;
            }

            if (!_innerLost)
            {
                // A source that reported its device lost (and hands out what it read before) says
                // itself when samples flow again; until then its blocks do not mean "streaming".
                _failures = 0;
                SetState(SourceHealth.Streaming, "reading");
            }

            var first = _delivered;
            _delivered += block.Samples;
            return block with { FirstSampleIndex = first };
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_refusedAtConstruction is { } refused)
        {
            _refusedAtConstruction = null;
            await DisposeQuietlyAsync(refused).ConfigureAwait(false);
        }

        await CloseAsync().ConfigureAwait(false);
    }

    /// <summary>Whether an exception from opening or reading a device means "the device is not there (now)" — retried — rather than a bug.</summary>
    public static bool IsDeviceError(Exception ex) =>
        ex is SensorSourceException or IOException or UnauthorizedAccessException or TimeoutException;

    private static async ValueTask DisposeQuietlyAsync(ISensorSource source)
    {
        try
        {
            await source.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (IsDeviceError(ex))
        {
            // A device that vanished may fail to close; it is gone either way.
        }
    }

    /// <summary>Why <paramref name="opened"/> cannot continue this stream, or null when it can.</summary>
    private string? Mismatch(ISensorSource opened) =>
        opened.Channels.Count != _channels.Count || (_sampleRateHz > 0 && Math.Abs(opened.SampleRateHz - _sampleRateHz) > 1e-9)
            ? $"{opened.Description} has {opened.Channels.Count} channels at {opened.SampleRateHz} Hz; the stream expects {_channels.Count} at {_sampleRateHz} Hz"
            : null;

    /// <summary>Opens the device; null when it is open, else why not.</summary>
    private async ValueTask<string?> TryOpenAsync(CancellationToken cancellationToken)
    {
        ISensorSource opened;
        try
        {
            opened = _open();
        }
        catch (Exception ex) when (IsDeviceError(ex))
        {
            return ex.Message;
        }

        if (Mismatch(opened) is { } reason)
        {
            // Awaited, not blocked on: closing an audio capture waits for its process to exit. Disposed
            // even when cancelled, then the cancellation ends the read instead of a backoff wait.
            await DisposeQuietlyAsync(opened).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            return reason;
        }

        Attach(opened);
        return null;
    }

    private void Attach(ISensorSource opened)
    {
        _inner = opened;
        _innerLost = false;
        if (opened is IDeviceAvailability availability)
        {
            availability.AvailabilityChanged += _onAvailabilityChanged;
        }
    }

    /// <summary>Mirrors a self-reconnecting source's own report of its device (raised on the reading thread).</summary>
    private void OnAvailabilityChanged(object? sender, DeviceAvailabilityChangedEventArgs e)
    {
        if (!ReferenceEquals(sender, _inner))
        {
            return;
        }

        if (e.Available)
        {
            _innerLost = false;
            _failures = 0;
            SetState(SourceHealth.Streaming, "reading");
        }
        else
        {
            _innerLost = true;
            SetState(SourceHealth.Unavailable, e.Reason);
            LogLostReconnecting(_logger, _description, e.Reason);
        }
    }

    /// <summary>Computes the next retry delay: up to 20 % shorter at random, so that several streams on one bus do not retry in lockstep.</summary>
    private void NextBackoff()
    {
        _failures++;
        _backoff = Supervision.Backoff.Exponential(_initialBackoff, _maxBackoff, _failures, jitter: 0.2, sample: Random.Shared.NextDouble());
    }

    private async ValueTask CloseAsync()
    {
        var inner = _inner;
        _inner = null;
        _innerLost = false;
        if (inner is not null)
        {
            if (inner is IDeviceAvailability availability)
            {
                availability.AvailabilityChanged -= _onAvailabilityChanged;
            }

            await DisposeQuietlyAsync(inner).ConfigureAwait(false);
        }
    }

    private void SetState(SourceHealth state, string reason)
    {
        if (state == State && (state != SourceHealth.Unavailable || reason == Reason))
        {
            return;
        }

        var previous = State;
        State = state;
        Reason = reason;
        StateChanged?.Invoke(this, new SourceHealthChangedEventArgs(previous, state, reason, _timeProvider.GetUtcNow()));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor source {Device} unavailable: {Reason}; retrying in {BackoffSeconds:0.#} s, the other streams go on")]
    private static partial void LogUnavailable(ILogger logger, string device, string reason, double backoffSeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor source {Device} lost: {Reason}; reopening in {BackoffSeconds:0.#} s")]
    private static partial void LogLost(ILogger logger, string device, string reason, double backoffSeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor source {Device} lost: {Reason}; the source reconnects by itself, state unavailable until samples flow again")]
    private static partial void LogLostReconnecting(ILogger logger, string device, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor source {Device} opened again")]
    private static partial void LogReopened(ILogger logger, string device);
}
