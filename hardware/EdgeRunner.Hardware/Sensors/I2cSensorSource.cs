using System.Device.I2c;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>The I2C sensor chips an <see cref="I2cSensorSource"/> can read.</summary>
public enum I2cSensorChip
{
    /// <summary>Analog Devices ADXL345 3-axis accelerometer: channels ax, ay, az in g.</summary>
    Adxl345,

    /// <summary>InvenSense MPU6050 IMU, accelerometer part: channels ax, ay, az in g.</summary>
    Mpu6050,

    /// <summary>Bosch BME280: channels temperature (°C), pressure (hPa), humidity (% relative humidity).</summary>
    Bme280,
}

/// <summary>What an <see cref="I2cSensorSource"/> reads and how often.</summary>
public sealed record I2cSensorSourceOptions
{
    /// <summary>The chip on the bus.</summary>
    public required I2cSensorChip Chip { get; init; }

    /// <summary>Samples per second; each sample is one read of the chip's current output.</summary>
    public required double SampleRateHz { get; init; }

    /// <summary>Accelerometers: full-scale range in g (2, 4, 8 or 16). Ignored by the BME280.</summary>
    public int AccelerationRangeG { get; init; } = 2;

    /// <summary>
    /// How errors name this source, e.g. the configuration key <c>Sensors:vib1:Source</c>;
    /// empty: errors name only the chip, bus and address.
    /// </summary>
    public string Name { get; init; } = string.Empty;

    /// <summary>
    /// How long every read must fail before the chip counts as gone (unplugged, powered off) rather
    /// than glitching: the read then throws <see cref="SensorSourceException"/>, so that a
    /// <see cref="ReopeningSensorSource"/> reports the stream unavailable and reopens the chip with
    /// backoff instead of the stream holding a frozen value. Counted in sample periods, at least 3
    /// (see <see cref="I2cSensorSource"/>). Default 1 s; <see cref="Timeout.InfiniteTimeSpan"/>: never
    /// (every failed read stays a NaN sample).
    /// </summary>
    public TimeSpan DeviceLostAfter { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// A sensor chip on an I2C bus read through its dotnet/iot binding (Iot.Device.Bindings), one
/// sample per period of <see cref="I2cSensorSourceOptions.SampleRateHz"/> on the injected
/// <see cref="TimeProvider"/>. Opening checks the chip id and fails with a
/// <see cref="SensorSourceException"/> naming the bus and address when no chip or another chip
/// answers. A read that fails on the bus (<see cref="IOException"/>) does not end the stream: the
/// sample becomes NaN in every channel (the stream's invalid-sample policy handles it), the failure
/// is counted in <see cref="ReadFailures"/> and logged at most once per
/// <see cref="FailureLogInterval"/>. When every read fails for
/// <see cref="I2cSensorSourceOptions.DeviceLostAfter"/> (max(3, ⌈DeviceLostAfter × rate⌉) samples in a
/// row) the chip is taken as gone and the read throws <see cref="SensorSourceException"/> with the bus
/// error, so that the stream is reported unavailable and the chip reopened. The source owns the <see cref="I2cDevice"/> and disposes it.
/// </summary>
public sealed partial class I2cSensorSource : ISensorSource
{
    /// <summary>Shortest time between two warnings about failing reads (the first is logged at once).</summary>
    public static readonly TimeSpan FailureLogInterval = TimeSpan.FromSeconds(10);

    private readonly I2cChipReader _chip;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly PacedSampler _sampler;
    private readonly string _where;
    private readonly long _lostAfterFailures;
    private long _readFailures;
    private long _failuresSinceLog;
    private long _consecutiveFailures;
    private long _lastFailureLogTimestamp;
    private bool _failureLogged;
    private bool _disposed;

    /// <summary>
    /// Opens the chip on <paramref name="device"/> through its binding and configures it.
    /// Throws <see cref="SensorSourceException"/> when the device does not answer or is another chip.
    /// </summary>
    public I2cSensorSource(I2cDevice device, I2cSensorSourceOptions options, TimeProvider timeProvider, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        _where = Where(options, device.ConnectionSettings.BusId, device.ConnectionSettings.DeviceAddress);
        if (!(options.SampleRateHz > 0) || double.IsInfinity(options.SampleRateHz))
        {
            device.Dispose();
            throw new SensorSourceException($"{_where}: the sample rate must be a positive number of samples per second (got {options.SampleRateHz}).");
        }

        try
        {
            _lostAfterFailures = DeviceLostRule.ConsecutiveFailures(options.DeviceLostAfter, options.SampleRateHz, _where);
        }
        catch (SensorSourceException)
        {
            device.Dispose();
            throw;
        }

        _chip = I2cChipReader.Open(device, options, _where);
        _timeProvider = timeProvider;
        _logger = logger;
        _sampler = new PacedSampler(timeProvider, options.SampleRateHz, _chip.Channels.Count, ReadSample);
        SampleRateHz = options.SampleRateHz;
        Description = _where + (options.Chip == I2cSensorChip.Bme280
            ? $" at {SampleRateHz:0.###} Hz"
            : $" ±{options.AccelerationRangeG} g at {SampleRateHz:0.###} Hz");
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Channels => _chip.Channels;

    /// <inheritdoc />
    public double SampleRateHz { get; }

    /// <summary>Samples delivered since the start (good or NaN).</summary>
    public long SamplesRead => _sampler.SamplesTaken;

    /// <summary>Samples that became NaN because the bus read failed.</summary>
    public long ReadFailures => Interlocked.Read(ref _readFailures);

    /// <summary>The channels a source for <paramref name="chip"/> delivers, in order (ax, ay, az in g; or temperature °C, pressure hPa, humidity %).</summary>
    public static IReadOnlyList<string> ChannelsOf(I2cSensorChip chip) => I2cChipReader.Chips.TryGetValue(chip, out var info) ? info.Channels : [];

    /// <summary>The chip's usual 7-bit address (its data sheet's default), or 0 for a value that names no supported chip.</summary>
    public static int DefaultAddressOf(I2cSensorChip chip) => I2cChipReader.Chips.TryGetValue(chip, out var info) ? info.DefaultAddress : 0;

    /// <summary>The full-scale ranges in g the chip can be set to; empty for a chip without one (BME280).</summary>
    public static IReadOnlyList<int> RangesGOf(I2cSensorChip chip) => I2cChipReader.Chips.TryGetValue(chip, out var info) ? info.RangesG : [];

    /// <summary>A list of ranges as a message says it: "2, 4, 8 or 16".</summary>
    public static string Describe(IReadOnlyList<int> rangesG)
    {
        ArgumentNullException.ThrowIfNull(rangesG);
        return rangesG.Count <= 1
            ? string.Join(string.Empty, rangesG)
            : $"{string.Join(", ", rangesG.Take(rangesG.Count - 1))} or {rangesG[^1]}";
    }

    /// <summary>
    /// Opens <c>/dev/i2c-{busId}</c> and the chip at <paramref name="address"/> on it. A missing or
    /// inaccessible bus device gives a <see cref="SensorSourceException"/> naming the bus and the
    /// options' <see cref="I2cSensorSourceOptions.Name"/>.
    /// </summary>
    public static I2cSensorSource Open(int busId, int address, I2cSensorSourceOptions options, TimeProvider timeProvider, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        I2cDevice device;
        try
        {
            device = I2cDevice.Create(new I2cConnectionSettings(busId, address));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or PlatformNotSupportedException or ArgumentException)
        {
            // Typically /dev/i2c-N is absent (bus not enabled in the device tree, wrong bus id) or not
            // readable by the service user (not in the i2c group).
            throw new SensorSourceException(
                $"{Where(options, busId, address)}: cannot open I2C bus {busId} (/dev/i2c-{busId}): {ex.Message} Check that the bus is enabled and that the service may open it.",
                ex);
        }

        return new I2cSensorSource(device, options, timeProvider, logger);
    }

    /// <inheritdoc />
    public ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _sampler.ReadAsync(destination, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            _sampler.Dispose();
            _chip.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    private void ReadSample(Span<float> sample)
    {
        try
        {
            _chip.Read(sample);
            if (_consecutiveFailures > 0)
            {
                LogRecovered(_logger, _where, _consecutiveFailures);
                _consecutiveFailures = 0;
            }
        }
        catch (IOException ex)
        {
            // A glitch on the bus (EMI, a loose wire, a brown-out of the chip) must not end the
            // stream: the sample is marked invalid and the stream's NaN policy decides what to do.
            sample.Fill(float.NaN);
            Interlocked.Increment(ref _readFailures);
            _consecutiveFailures++;
            _failuresSinceLog++;
            var now = _timeProvider.GetTimestamp();
            if (!_failureLogged || _timeProvider.GetElapsedTime(_lastFailureLogTimestamp, now) >= FailureLogInterval)
            {
                LogReadFailed(_logger, ex, _where, _failuresSinceLog, ReadFailures);
                _failuresSinceLog = 0;
                _lastFailureLogTimestamp = now;
                _failureLogged = true;
            }

            if (_consecutiveFailures >= _lostAfterFailures)
            {
                // Not a glitch any more: the chip is gone. Holding its last value would publish results
                // from a frozen input under a "streaming" state; throwing lets the wrapper say unavailable
                // and reopen it. The samples of this block are dropped with it.
                LogLost(_logger, _where, _consecutiveFailures);
                throw new SensorSourceException(
                    string.Create(CultureInfo.InvariantCulture, $"{_where}: the chip stopped answering ({_consecutiveFailures} reads in a row failed): {ex.Message}"),
                    ex);
            }
        }
    }

    private static string Where(I2cSensorSourceOptions options, int busId, int address)
    {
        var chip = options.Chip.ToString().ToUpperInvariant();
        var at = string.Create(CultureInfo.InvariantCulture, $"{chip} on I2C bus {busId} at address 0x{address:X2}");
        return string.IsNullOrEmpty(options.Name) ? at : $"{options.Name} ({at})";
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Source}: I2C read failed {Count} time(s) since the last warning ({Total} in all); those samples are NaN")]
    private static partial void LogReadFailed(ILogger logger, Exception exception, string source, long count, long total);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Source}: {Count} I2C reads in a row failed; the chip is taken as gone")]
    private static partial void LogLost(ILogger logger, string source, long count);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Source}: I2C reads work again after {Count} failed read(s)")]
    private static partial void LogRecovered(ILogger logger, string source, long count);
}
