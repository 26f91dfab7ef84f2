using System.Device.Gpio;
using System.Device.Gpio.Drivers;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary>
/// Configuration of the hardware-bus sensor sources (<see cref="SensorSourceKind.I2c"/> and
/// <see cref="SensorSourceKind.Gpio"/>): validation of their keys and construction on the real
/// Linux devices (/dev/i2c-N, /dev/gpiochipN). Kept apart from <see cref="SensorService"/> so
/// that each source kind adds one line there.
/// </summary>
internal static class BusSensorSources
{
    /// <summary>Highest polling rate accepted: the sources are paced by a timer, whose resolution on Linux is about a millisecond.</summary>
    public const double MaxSampleRateHz = 1000;

    /// <summary>Validates the I2c or Gpio keys of one stream's source; other kinds are left alone.</summary>
    /// <param name="key">The source's key, <c>Sensors:{id}:Source</c>.</param>
    /// <param name="source">The source options.</param>
    /// <param name="errors">Where problems are added, each naming its key.</param>
    public static void Validate(string key, SensorSourceOptions source, ValidationErrors errors)
    {
        switch (source.Kind)
        {
            case SensorSourceKind.I2c:
                ValidateI2c(key, source, errors);
                break;
            case SensorSourceKind.Gpio:
                ValidateGpio(key, source, errors);
                break;
            default:
                return;
        }

        // 0 = the model's rate, as for the simulated source.
        errors.Range($"{key}:SampleRateHz", source.SampleRateHz, 0, MaxSampleRateHz);
        errors.Range($"{key}:DeviceLostSeconds", source.DeviceLostSeconds, 0, 3600);
    }

    /// <summary>
    /// Builds the I2c or Gpio source of a stream on the real devices, or
    /// returns null for another kind. <paramref name="modelRateHz"/> is used when the configured rate is 0.
    /// Throws <see cref="SensorSourceException"/> naming the key when the bus, chip or pins cannot be opened.
    /// </summary>
    public static ISensorSource? Create(SensorSourceOptions source, double modelRateHz, TimeProvider timeProvider, ILogger logger)
    {
        // SensorService prefixes every SensorSourceException with "Sensors:{id}:Source: ", so the
        // messages built here name only the key below it (Chip, GpioChip) and the bus or chip.
        var rate = source.SampleRateHz > 0 ? source.SampleRateHz : modelRateHz;
        return source.Kind switch
        {
            SensorSourceKind.I2c => I2cSensorSource.Open(
                source.BusId,
                AddressOf(source),
                new I2cSensorSourceOptions
                {
                    Chip = source.Chip ?? throw new SensorSourceException("Chip: is required for an I2c source"),
                    SampleRateHz = rate,
                    AccelerationRangeG = source.RangeG,
                    DeviceLostAfter = DeviceLostAfter(source),
                },
                timeProvider,
                logger),
            SensorSourceKind.Gpio => CreateGpio(source, rate, timeProvider, logger),
            _ => null,
        };
    }

    private static TimeSpan DeviceLostAfter(SensorSourceOptions source) =>
        source.DeviceLostSeconds > 0 ? TimeSpan.FromSeconds(source.DeviceLostSeconds) : Timeout.InfiniteTimeSpan;

    private static GpioSensorSource CreateGpio(SensorSourceOptions source, double rate, TimeProvider timeProvider, ILogger logger)
    {
        var controller = OpenGpioController(source.GpioChip);
        try
        {
            return new GpioSensorSource(
                controller,
                new GpioSensorSourceOptions
                {
                    Pins = source.Pins ?? [],
                    SampleRateHz = rate,
                    Edge = source.Edge,
                    Pull = source.Pull,
                    Debounce = TimeSpan.FromMilliseconds(source.DebounceMs),
                    DeviceLostAfter = DeviceLostAfter(source),
                },
                timeProvider,
                logger);
        }
        catch
        {
            // The source owns the controller only once constructed; a pin that cannot be opened must not
            // leak the chip handle (the stream retries the open with backoff).
            controller.Dispose();
            throw;
        }
    }

    /// <summary>The configured address, or the chip's usual one when 0.</summary>
    public static int AddressOf(SensorSourceOptions source) => source.Address != 0
        ? source.Address
        : source.Chip switch
        {
            I2cSensorChip.Adxl345 => 0x53,
            I2cSensorChip.Mpu6050 => 0x68,
            I2cSensorChip.Bme280 => 0x77,
            _ => 0,
        };

    private static void ValidateI2c(string key, SensorSourceOptions source, ValidationErrors errors)
    {
        if (source.Chip is not { } chip || !Enum.IsDefined(chip))
        {
            errors.Add($"{key}:Chip", $"name the chip: {string.Join(", ", Enum.GetNames<I2cSensorChip>())}");
        }
        else if (chip != I2cSensorChip.Bme280 && source.RangeG is not (2 or 4 or 8 or 16))
        {
            errors.Add($"{key}:RangeG", $"must be 2, 4, 8 or 16 (g full scale; got {source.RangeG})");
        }

        errors.Range($"{key}:BusId", source.BusId, 0, 255);
        if (source.Address != 0 && source.Address is < 0x03 or > 0x77)
        {
            errors.Add($"{key}:Address", $"must be a 7-bit device address 0x03–0x77, or 0 for the chip's usual address (got 0x{source.Address:X})");
        }
    }

    private static void ValidateGpio(string key, SensorSourceOptions source, ValidationErrors errors)
    {
        if (source.Pins is not { Length: > 0 } pins)
        {
            errors.Add($"{key}:Pins", "list the pin numbers, one channel each in the model's channel order");
        }
        else
        {
            if (pins.Any(p => p < 0))
            {
                errors.Add($"{key}:Pins", $"pin numbers must not be negative (got {string.Join(", ", pins)})");
            }

            if (pins.Distinct().Count() != pins.Length)
            {
                errors.Add($"{key}:Pins", $"a pin is listed twice (got {string.Join(", ", pins)})");
            }
        }

        errors.Range($"{key}:GpioChip", source.GpioChip, -1, 255);
        errors.Range($"{key}:DebounceMs", source.DebounceMs, 0, 60_000);
        if (!Enum.IsDefined(source.Edge))
        {
            errors.Add($"{key}:Edge", $"must be one of {string.Join(", ", Enum.GetNames<GpioEdge>())}");
        }

        if (!Enum.IsDefined(source.Pull))
        {
            errors.Add($"{key}:Pull", $"must be one of {string.Join(", ", Enum.GetNames<GpioPull>())}");
        }
    }

    private static GpioController OpenGpioController(int gpioChip)
    {
        try
        {
            // -1: let System.Device.Gpio pick the board's driver; otherwise the libgpiod chip named.
            return gpioChip < 0 ? new GpioController() : new GpioController(new LibGpiodDriver(gpioChip));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or PlatformNotSupportedException or NotSupportedException or DllNotFoundException or ArgumentException or InvalidOperationException)
        {
            var what = gpioChip < 0 ? "the board's GPIO controller" : $"GPIO chip {gpioChip} (/dev/gpiochip{gpioChip}, through libgpiod)";
            throw new SensorSourceException($"GpioChip: cannot open {what}: {ex.Message}", ex);
        }
    }
}
