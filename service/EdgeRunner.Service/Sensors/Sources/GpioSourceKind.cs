using System.Device.Gpio;
using System.Device.Gpio.Drivers;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary><c>Sensors:{id}:Source</c> of Kind <c>Gpio</c>.</summary>
public sealed class GpioSensorOptions() : SensorSourceOptions(SensorSourceKind.Gpio)
{
    /// <summary>Pin numbers (line offsets on the GPIO chip), one channel each, in the model's channel order.</summary>
    public int[]? Pins { get; set; }

    /// <summary>GPIO chip number N of /dev/gpiochipN (through libgpiod); -1 = the board's default driver.</summary>
    public int GpioChip { get; set; } = -1;

    /// <summary>None samples the pin level (0/1); Rising, Falling or Both count those edges per sample period.</summary>
    public GpioEdge Edge { get; set; } = GpioEdge.None;

    /// <summary>Internal bias of the pins, None, Up or Down.</summary>
    public GpioPull Pull { get; set; } = GpioPull.None;

    /// <summary>Edge counting: edges of a pin closer than this to its last counted edge are contact bounce and not counted; 0 = count every edge.</summary>
    public double DebounceMs { get; set; }

    /// <summary>Reads failing for this long mean the device is gone (closed, reported unavailable, reopened with backoff); shorter failures are NaN samples. 0 = never: every failed read stays a NaN sample.</summary>
    public double DeviceLostSeconds { get; set; } = 1;
}

/// <summary>
/// Kind <c>Gpio</c>: digital inputs on /dev/gpiochipN, one channel per pin, the level or an edge count per
/// sample period, opened under supervision.
/// </summary>
internal sealed class GpioSourceKind : SensorSourceKindBase<GpioSensorOptions>
{
    /// <summary>
    /// Opens the pins on the real chip. <paramref name="modelRateHz"/> is used when the configured rate is 0.
    /// Throws <see cref="SensorSourceException"/> naming the key when the chip or pins cannot be opened.
    /// </summary>
    public static GpioSensorSource Open(GpioSensorOptions options, double modelRateHz, TimeProvider timeProvider, ILogger logger)
    {
        var controller = OpenGpioController(options.GpioChip);
        try
        {
            return new GpioSensorSource(
                controller,
                new GpioSensorSourceOptions
                {
                    Pins = options.Pins ?? [],
                    SampleRateHz = options.SampleRateHz > 0 ? options.SampleRateHz : modelRateHz,
                    Edge = options.Edge,
                    Pull = options.Pull,
                    Debounce = TimeSpan.FromMilliseconds(options.DebounceMs),
                    DeviceLostAfter = I2cSourceKind.DeviceLostAfter(options.DeviceLostSeconds),
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

    protected override void Validate(string key, GpioSensorOptions options, ValidationErrors errors)
    {
        if (options.Pins is not { Length: > 0 } pins)
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

        errors.Range($"{key}:GpioChip", options.GpioChip, -1, 255);
        errors.Range($"{key}:DebounceMs", options.DebounceMs, 0, 60_000);
        if (!Enum.IsDefined(options.Edge))
        {
            errors.Add($"{key}:Edge", $"must be one of {string.Join(", ", Enum.GetNames<GpioEdge>())}");
        }

        if (!Enum.IsDefined(options.Pull))
        {
            errors.Add($"{key}:Pull", $"must be one of {string.Join(", ", Enum.GetNames<GpioPull>())}");
        }

        // 0 = the model's rate, as for the simulated source.
        errors.Range($"{key}:SampleRateHz", options.SampleRateHz, 0, I2cSourceKind.MaxSampleRateHz);
        errors.Range($"{key}:DeviceLostSeconds", options.DeviceLostSeconds, 0, 3600);
    }

    protected override ISensorSource Create(GpioSensorOptions options, SensorSourceContext context) => context.Supervise(
        $"GPIO pins {string.Join(",", options.Pins ?? [])}",
        () => Open(options, context.ModelRateHz, context.TimeProvider, context.Logger),
        context.RateOr(options.SampleRateHz));

    protected override int? ConfiguredChannels(GpioSensorOptions options) => options.Pins?.Length ?? 0;

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
