using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary><c>Sensors:{id}:Source</c> of Kind <c>Serial</c>.</summary>
public sealed class SerialSensorOptions() : SensorSourceOptions(SensorSourceKind.Serial)
{
    /// <summary>The port, e.g. <c>/dev/ttyUSB0</c> or a stable <c>/dev/serial/by-id/…</c> name.</summary>
    public string Port { get; set; } = string.Empty;

    /// <summary>Line speed (8 data bits, no parity, one stop bit).</summary>
    public int BaudRate { get; set; } = 115200;

    /// <summary>Zero-based field indices or names (from the header line the device prints, or JSON field names), in channel order.</summary>
    public string[]? Columns { get; set; }

    /// <summary>The field with the device's time (seconds or ISO 8601); empty: samples are timed by their arrival.</summary>
    public string TimestampColumn { get; set; } = string.Empty;
}

/// <summary>
/// Kind <c>Serial</c>: a device on a serial line printing one sample per line (delimited numbers or JSON),
/// opened under supervision (a USB adapter plugged in after boot is waited for).
/// </summary>
internal sealed class SerialSourceKind : SensorSourceKindBase<SerialSensorOptions>
{
    /// <summary>Creates the source without supervision.</summary>
    public static SerialSensorSource Open(SerialSensorOptions options, SensorSourceContext context) => new(
        new SerialSourceOptions
        {
            Port = options.Port,
            BaudRate = options.BaudRate,
            Columns = options.Columns ?? [],
            TimestampField = options.TimestampColumn,
            SampleRateHz = options.SampleRateHz,
        },
        context.TimeProvider,
        context.LoggerFactory.CreateLogger($"EdgeRunner.Sensor.{context.StreamId}"));

    protected override void Validate(string key, SerialSensorOptions options, ValidationErrors errors)
    {
        if (string.IsNullOrWhiteSpace(options.Port))
        {
            errors.Add($"{key}:Port", "is required for Kind Serial (e.g. /dev/ttyUSB0)");
        }

        // A port that does not exist yet is not a configuration error: the stream waits for the
        // device (a USB adapter plugged in after boot) and says so on its state topic.
        errors.Range($"{key}:BaudRate", options.BaudRate, 50, 4_000_000);
        if (options.Columns is not { Length: > 0 and <= 64 })
        {
            errors.Add($"{key}:Columns", "name the fields to read (indices, header names or JSON names), in the model's channel order (1 to 64)");
        }

        if (!(options.SampleRateHz > 0))
        {
            errors.Add($"{key}:SampleRateHz", "give the device's sample rate (lines per second)");
        }
    }

    protected override ISensorSource Create(SerialSensorOptions options, SensorSourceContext context) =>
        context.Supervise($"serial port {options.Port}", () => Open(options, context), options.SampleRateHz);

    protected override int? ConfiguredChannels(SerialSensorOptions options) => options.Columns?.Length ?? 0;
}
