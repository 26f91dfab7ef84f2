using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary>Kind <c>Serial</c>: a device on a serial line printing one sample per line (delimited numbers or JSON).</summary>
internal sealed class SerialSourceKind : ISensorSourceKind
{
    public SensorSourceKind Kind => SensorSourceKind.Serial;

    public ISensorSource Create(SensorSourceOptions options, SensorSourceContext context) => context.Supervise(
        $"serial port {options.Port}",
        () => StreamSensorSources.Create(context.StreamId, options, context.ModelRateHz, context.TimeProvider, context.LoggerFactory),
        options.SampleRateHz);

    public int? ConfiguredChannels(SensorSourceOptions options) => options.Columns?.Length ?? 0;
}
