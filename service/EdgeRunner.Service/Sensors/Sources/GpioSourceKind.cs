using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary>Kind <c>Gpio</c>: digital inputs, one channel per pin, the level or an edge count per sample period.</summary>
internal sealed class GpioSourceKind : ISensorSourceKind
{
    public SensorSourceKind Kind => SensorSourceKind.Gpio;

    public ISensorSource Create(SensorSourceOptions options, SensorSourceContext context) => context.Supervise(
        $"GPIO pins {string.Join(",", options.Pins ?? [])}",
        () => BusSensorSources.Create(options, context.ModelRateHz, context.TimeProvider, context.Logger)!,
        context.RateOr(options.SampleRateHz));

    public int? ConfiguredChannels(SensorSourceOptions options) => options.Pins?.Length ?? 0;
}
