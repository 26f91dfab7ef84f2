using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary>Kind <c>SimulatedVibration</c>: a simulated 3-axis accelerometer on a rotating machine with injected faults.</summary>
internal sealed class SimulatedVibrationSourceKind : ISensorSourceKind
{
    public SensorSourceKind Kind => SensorSourceKind.SimulatedVibration;

    public ISensorSource Create(SensorSourceOptions options, SensorSourceContext context) =>
        new SimulatedVibrationSource(options.Seed, context.RateOr(options.SampleRateHz), context.BlockSamples, context.TimeProvider);

    public int? ConfiguredChannels(SensorSourceOptions options) => null;
}
