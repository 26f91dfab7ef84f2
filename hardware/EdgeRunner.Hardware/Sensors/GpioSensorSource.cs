using System.Device.Gpio;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>What a <see cref="GpioSensorSource"/> channel measures in each sample period.</summary>
public enum GpioEdge
{
    /// <summary>The pin level (0 or 1) at the end of the period.</summary>
    None,

    /// <summary>The number of rising edges (low → high) during the period.</summary>
    Rising,

    /// <summary>The number of falling edges (high → low) during the period.</summary>
    Falling,

    /// <summary>The number of edges of either direction during the period.</summary>
    Both,
}

/// <summary>Bias of the input pins of a <see cref="GpioSensorSource"/>.</summary>
public enum GpioPull
{
    /// <summary>No internal pull resistor (the circuit drives the line).</summary>
    None,

    /// <summary>Internal pull-up (e.g. a switch or open-collector output to ground).</summary>
    Up,

    /// <summary>Internal pull-down.</summary>
    Down,
}

/// <summary>Which pins a <see cref="GpioSensorSource"/> reads and how.</summary>
public sealed record GpioSensorSourceOptions
{
    /// <summary>Pin numbers (the controller's numbering, i.e. GPIO line offsets), one channel each, in channel order.</summary>
    public required IReadOnlyList<int> Pins { get; init; }

    /// <summary>Samples per second: the length of the counting period.</summary>
    public required double SampleRateHz { get; init; }

    /// <summary>Level (<see cref="GpioEdge.None"/>) or which edges to count.</summary>
    public GpioEdge Edge { get; init; } = GpioEdge.None;

    /// <summary>Internal bias of the pins.</summary>
    public GpioPull Pull { get; init; } = GpioPull.None;

    /// <summary>Edge counting: an edge less than this long after the last counted edge of the same pin is a contact bounce and not counted; zero counts every edge.</summary>
    public TimeSpan Debounce { get; init; } = TimeSpan.Zero;

    /// <summary>How errors name this source, e.g. the configuration key <c>Sensors:door:Source</c>.</summary>
    public string Name { get; init; } = string.Empty;

    /// <summary>
    /// Level reads: how long the reads must fail (a sample counts as failed when any pin's read failed)
    /// before the GPIO chip counts as gone rather than glitching: the read then throws
    /// <see cref="SensorSourceException"/>, so that a <see cref="ReopeningSensorSource"/> reports the
    /// stream unavailable and reopens it with backoff instead of the stream holding a frozen level.
    /// Counted in sample periods, at least 3. Default 1 s; <see cref="Timeout.InfiniteTimeSpan"/>: never
    /// (every failed read stays a NaN sample). Edge counting does not read the pins.
    /// </summary>
    public TimeSpan DeviceLostAfter { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// Digital inputs as a sensor stream: one channel per pin, one sample per period of
/// <see cref="GpioSensorSourceOptions.SampleRateHz"/> on the injected <see cref="TimeProvider"/>.
/// A sample is either each pin's level (0/1) at the end of the period, or the number of edges the
/// controller reported for the pin during the period (through
/// <see cref="GpioController.RegisterCallbackForPinValueChangedEvent"/>, so no edge between two
/// samples is missed), optionally debounced. A level read that fails (<see cref="IOException"/>) gives a
/// NaN sample; when samples keep failing for <see cref="GpioSensorSourceOptions.DeviceLostAfter"/>
/// (max(3, ⌈DeviceLostAfter × rate⌉) in a row) the read throws <see cref="SensorSourceException"/>
/// with the error, so that the stream is reported unavailable and reopened; so does a failure before
/// the first successful level read after opening (opening does not touch the pins, so only a read
/// tells that the chip is there). Timestamps are the end of each sample's period. The
/// source owns the <see cref="GpioController"/> and disposes it.
/// </summary>
public sealed partial class GpioSensorSource : ISensorSource
{
    private readonly GpioController _controller;
    private readonly GpioSensorSourceOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly int[] _pins;
    private readonly string[] _channels;
    private readonly long[] _edgeCounts;
    private readonly long[] _lastEdgeTimestamps;
    private readonly long _debounceTicks;
    private readonly PinChangeEventHandler? _onEdge;
    private readonly string _where;
    private readonly PacedSampler _sampler;
    private readonly long _lostAfterFailures;
    private long _consecutiveFailures;
    private bool _levelsAnswered;
    private long _edgesIgnored;
    private long _readFailures;
    private bool _disposed;

    /// <summary>Opens the pins as inputs and, for edge counting, registers for their edges. Throws <see cref="SensorSourceException"/> naming the pin when one cannot be opened.</summary>
    public GpioSensorSource(GpioController controller, GpioSensorSourceOptions options, TimeProvider timeProvider, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(controller);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        _where = string.IsNullOrEmpty(options.Name) ? "GPIO input" : options.Name;
        if (options.Pins.Count == 0)
        {
            throw new SensorSourceException($"{_where}: no pins given.");
        }

        if (!(options.SampleRateHz > 0) || double.IsInfinity(options.SampleRateHz))
        {
            throw new SensorSourceException($"{_where}: the sample rate must be a positive number of samples per second (got {options.SampleRateHz}).");
        }

        if (options.Pins.Distinct().Count() != options.Pins.Count)
        {
            throw new SensorSourceException($"{_where}: a pin is listed twice ({string.Join(", ", options.Pins)}).");
        }

        _lostAfterFailures = DeviceLostRule.ConsecutiveFailures(options.DeviceLostAfter, options.SampleRateHz, _where);
        _controller = controller;
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
        _pins = [.. options.Pins];
        _edgeCounts = new long[_pins.Length];
        _lastEdgeTimestamps = new long[_pins.Length];
        _debounceTicks = (long)(options.Debounce.TotalSeconds * timeProvider.TimestampFrequency);
        var suffix = options.Edge switch
        {
            GpioEdge.None => "level",
            GpioEdge.Rising => "rising",
            GpioEdge.Falling => "falling",
            _ => "edges",
        };
        _channels = [.. _pins.Select(p => $"gpio{p}_{suffix}")];
        SampleRateHz = options.SampleRateHz;
        _sampler = new PacedSampler(timeProvider, options.SampleRateHz, _pins.Length, TakeSample);
        var mode = options.Pull switch
        {
            GpioPull.Up => PinMode.InputPullUp,
            GpioPull.Down => PinMode.InputPullDown,
            _ => PinMode.Input,
        };
        if (options.Edge != GpioEdge.None)
        {
            _onEdge = OnEdge;
        }

        var opened = new List<int>();
        var current = _pins[0];
        try
        {
            foreach (var pin in _pins)
            {
                current = pin;
                if (!controller.IsPinModeSupported(pin, mode))
                {
                    throw new SensorSourceException($"{_where}: pin {pin} does not support mode {mode}.");
                }

                controller.OpenPin(pin, mode);
                opened.Add(pin);
                if (_onEdge is not null)
                {
                    controller.RegisterCallbackForPinValueChangedEvent(pin, EventTypes(options.Edge), _onEdge);
                }
            }
        }
        catch (Exception ex) when (ex is not SensorSourceException && ex is IOException or InvalidOperationException or ArgumentException or UnauthorizedAccessException or NotSupportedException)
        {
            ClosePins(opened);
            throw new SensorSourceException($"{_where}: cannot open GPIO pin {current}: {ex.Message}", ex);
        }
        catch (SensorSourceException)
        {
            ClosePins(opened);
            throw;
        }

        Description = $"{_where}: GPIO pins {string.Join(", ", _pins)} ({(options.Edge == GpioEdge.None ? "level" : $"{options.Edge} edges per period")}, pull {options.Pull}"
            + (options.Debounce > TimeSpan.Zero ? $", debounce {options.Debounce.TotalMilliseconds:0.###} ms" : string.Empty)
            + $") at {SampleRateHz:0.###} Hz";
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Channels => _channels;

    /// <inheritdoc />
    public double SampleRateHz { get; }

    /// <summary>Samples delivered since the start.</summary>
    public long SamplesRead => _sampler.SamplesTaken;

    /// <summary>Level reads that failed (those samples are NaN).</summary>
    public long ReadFailures => Interlocked.Read(ref _readFailures);

    /// <summary>Edges not counted because they came within the debounce time of the previous one.</summary>
    public long EdgesIgnored => Interlocked.Read(ref _edgesIgnored);

    /// <inheritdoc />
    public ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_sampler.Started)
        {
            // The first period starts now: edges seen before the stream was first read are not counted.
            for (var c = 0; c < _edgeCounts.Length; c++)
            {
                Interlocked.Exchange(ref _edgeCounts[c], 0);
            }
        }

        return _sampler.ReadAsync(destination, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            _sampler.Dispose();
            ClosePins(_pins);
            _controller.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    private void TakeSample(Span<float> sample)
    {
        IOException? failed = null;
        var failedPin = 0;
        for (var c = 0; c < _pins.Length; c++)
        {
            if (_options.Edge == GpioEdge.None)
            {
                try
                {
                    sample[c] = _controller.Read(_pins[c]) == PinValue.High ? 1 : 0;
                }
                catch (IOException ex)
                {
                    // Like a failed bus read: an invalid sample for the stream's NaN policy, not the end of the stream.
                    sample[c] = float.NaN;
                    failed = ex;
                    failedPin = _pins[c];
                    var failures = Interlocked.Increment(ref _readFailures);
                    if (failures <= 10 || failures % 1000 == 0)
                    {
                        LogReadFailed(_logger, ex, _where, _pins[c], failures);
                    }
                }
            }
            else
            {
                // Counts are taken and zeroed atomically: an edge arriving now falls in this period or the next, never in both.
                sample[c] = Interlocked.Exchange(ref _edgeCounts[c], 0);
            }
        }

        if (failed is null)
        {
            _consecutiveFailures = 0;
            _levelsAnswered = true;
            return;
        }

        if (!_levelsAnswered && _lostAfterFailures != long.MaxValue)
        {
            // Opening does not read the pins, so a chip that is still gone opens fine and fails its first
            // read: that is no glitch, and allowing it NaN samples would turn the stream "streaming" for a
            // moment at every reopening attempt while the device is absent.
            LogLost(_logger, _where, 1);
            throw new SensorSourceException($"{_where}: reading GPIO pin {failedPin} failed right after opening: {failed.Message}", failed);
        }

        // A pin that never reads again is a lost device even if the others still answer: its channel
        // would be held at a frozen level under a "streaming" state. Throwing lets the wrapper report
        // the stream unavailable and reopen the pins; this block's samples are dropped with it.
        if (++_consecutiveFailures >= _lostAfterFailures)
        {
            LogLost(_logger, _where, _consecutiveFailures);
            throw new SensorSourceException($"{_where}: GPIO reads failed for {_consecutiveFailures} samples in a row: {failed.Message}", failed);
        }
    }

    private void OnEdge(object sender, PinValueChangedEventArgs args)
    {
        var index = Array.IndexOf(_pins, args.PinNumber);
        if (index < 0 || !Counts(args.ChangeType))
        {
            return;
        }

        if (_debounceTicks > 0)
        {
            // Callbacks of one pin come one at a time from the driver's event thread, so the pin's last
            // edge time needs no lock; edges inside the debounce window after a counted edge are bounce.
            var now = _timeProvider.GetTimestamp();
            var last = _lastEdgeTimestamps[index];
            if (last != 0 && now - last < _debounceTicks)
            {
                Interlocked.Increment(ref _edgesIgnored);
                return;
            }

            _lastEdgeTimestamps[index] = now;
        }

        Interlocked.Increment(ref _edgeCounts[index]);
    }

    private bool Counts(PinEventTypes change) => _options.Edge switch
    {
        GpioEdge.Rising => (change & PinEventTypes.Rising) != 0,
        GpioEdge.Falling => (change & PinEventTypes.Falling) != 0,
        GpioEdge.Both => change != PinEventTypes.None,
        _ => false,
    };

    private static PinEventTypes EventTypes(GpioEdge edge) => edge switch
    {
        GpioEdge.Rising => PinEventTypes.Rising,
        GpioEdge.Falling => PinEventTypes.Falling,
        _ => PinEventTypes.Rising | PinEventTypes.Falling,
    };

    private void ClosePins(IEnumerable<int> pins)
    {
        foreach (var pin in pins)
        {
            try
            {
                if (!_controller.IsPinOpen(pin))
                {
                    continue;
                }

                if (_onEdge is not null)
                {
                    _controller.UnregisterCallbackForPinValueChangedEvent(pin, _onEdge);
                }

                _controller.ClosePin(pin);
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException)
            {
                // Closing is best effort; the controller's disposal releases what is left.
                LogCloseFailed(_logger, ex, _where, pin);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Source}: reading GPIO pin {Pin} failed; the sample is NaN ({Count} failed reads so far)")]
    private static partial void LogReadFailed(ILogger logger, Exception exception, string source, int pin, long count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Source}: GPIO reads failed for {Count} samples in a row; the device is taken as gone")]
    private static partial void LogLost(ILogger logger, string source, long count);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Source}: closing GPIO pin {Pin} failed")]
    private static partial void LogCloseFailed(ILogger logger, Exception exception, string source, int pin);
}
