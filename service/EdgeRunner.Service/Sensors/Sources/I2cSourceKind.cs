using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary>Kind <c>I2c</c>: a sensor chip on an I2C bus (/dev/i2c-N), polled at the source's rate.</summary>
internal sealed class I2cSourceKind : ISensorSourceKind
{
    public SensorSourceKind Kind => SensorSourceKind.I2c;

    public ISensorSource Create(SensorSourceOptions options, SensorSourceContext context) => context.Supervise(
        $"I2C {options.Chip} at bus {options.BusId}",
        () => BusSensorSources.Create(options, context.ModelRateHz, context.TimeProvider, context.Logger)!,
        context.RateOr(options.SampleRateHz));

    public int? ConfiguredChannels(SensorSourceOptions options) => options.Chip is { } chip ? I2cSensorSource.ChannelsOf(chip).Count : 0;
}
