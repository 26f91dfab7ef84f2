using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary><c>Sensors:{id}:Source</c> of Kind <c>I2c</c>.</summary>
public sealed class I2cSensorOptions() : SensorSourceOptions(SensorSourceKind.I2c)
{
    /// <summary>The chip, Adxl345 or Mpu6050 (channels ax, ay, az in g) or Bme280 (temperature °C, pressure hPa, humidity %).</summary>
    public I2cSensorChip? Chip { get; set; }

    /// <summary>Bus number N of /dev/i2c-N.</summary>
    public int BusId { get; set; } = 1;

    /// <summary>7-bit device address (decimal, or hex as a string such as "0x53"); 0 = the chip's usual address (ADXL345 0x53, MPU6050 0x68, BME280 0x77).</summary>
    public int Address { get; set; }

    /// <summary>Accelerometers: full-scale range in g, 2, 4, 8 or 16.</summary>
    public int RangeG { get; set; } = 2;

    /// <summary>Reads failing for this long mean the device is gone (closed, reported unavailable, reopened with backoff); shorter failures are NaN samples. 0 = never: every failed read stays a NaN sample.</summary>
    public double DeviceLostSeconds { get; set; } = 1;
}

/// <summary>
/// Kind <c>I2c</c>: a sensor chip on an I2C bus (/dev/i2c-N), polled at the source's rate, opened under
/// supervision (a chip not answering yet at boot is waited for).
/// </summary>
internal sealed class I2cSourceKind : SensorSourceKindBase<I2cSensorOptions>
{
    /// <summary>Highest polling rate accepted: the bus sources are paced by a timer, whose resolution on Linux is about a millisecond.</summary>
    public const double MaxSampleRateHz = 1000;

    /// <summary>The configured address, or the chip's usual one when 0.</summary>
    public static int AddressOf(I2cSensorOptions options) =>
        options.Address != 0 ? options.Address : options.Chip is { } chip ? I2cSensorSource.DefaultAddressOf(chip) : 0;

    /// <summary>
    /// Opens the chip on the real bus. <paramref name="modelRateHz"/> is used when the configured rate is 0.
    /// Throws <see cref="SensorSourceException"/> naming the key when the bus or chip cannot be opened.
    /// </summary>
    public static I2cSensorSource Open(I2cSensorOptions options, double modelRateHz, TimeProvider timeProvider, ILogger logger) =>
        // SensorService prefixes every SensorSourceException with "Sensors:{id}:Source: ", so the
        // messages built here name only the key below it (Chip) and the bus or chip.
        I2cSensorSource.Open(
            options.BusId,
            AddressOf(options),
            new I2cSensorSourceOptions
            {
                Chip = options.Chip ?? throw new SensorSourceException("Chip: is required for an I2c source"),
                SampleRateHz = options.SampleRateHz > 0 ? options.SampleRateHz : modelRateHz,
                AccelerationRangeG = options.RangeG,
                DeviceLostAfter = DeviceLostAfter(options.DeviceLostSeconds),
            },
            timeProvider,
            logger);

    /// <summary>The device-lost rule's span: <paramref name="seconds"/>, or never when 0.</summary>
    internal static TimeSpan DeviceLostAfter(double seconds) =>
        seconds > 0 ? TimeSpan.FromSeconds(seconds) : Timeout.InfiniteTimeSpan;

    protected override void Validate(string key, I2cSensorOptions options, ValidationErrors errors)
    {
        if (options.Chip is not { } chip || !Enum.IsDefined(chip))
        {
            errors.Add($"{key}:Chip", $"name the chip: {string.Join(", ", Enum.GetNames<I2cSensorChip>())}");
        }
        else if (I2cSensorSource.RangesGOf(chip) is { Count: > 0 } ranges && !ranges.Contains(options.RangeG))
        {
            errors.Add($"{key}:RangeG", $"must be {I2cSensorSource.Describe(ranges)} (g full scale; got {options.RangeG})");
        }

        errors.Range($"{key}:BusId", options.BusId, 0, 255);
        if (options.Address != 0 && options.Address is < 0x03 or > 0x77)
        {
            errors.Add($"{key}:Address", $"must be a 7-bit device address 0x03–0x77, or 0 for the chip's usual address (got 0x{options.Address:X})");
        }

        // 0 = the model's rate, as for the simulated source.
        errors.Range($"{key}:SampleRateHz", options.SampleRateHz, 0, MaxSampleRateHz);
        errors.Range($"{key}:DeviceLostSeconds", options.DeviceLostSeconds, 0, 3600);
    }

    protected override ISensorSource Create(I2cSensorOptions options, SensorSourceContext context) => context.Supervise(
        $"I2C {options.Chip} at bus {options.BusId}",
        () => Open(options, context.ModelRateHz, context.TimeProvider, context.Logger),
        context.RateOr(options.SampleRateHz));

    protected override int? ConfiguredChannels(I2cSensorOptions options) => options.Chip is { } chip ? I2cSensorSource.ChannelsOf(chip).Count : 0;
}
