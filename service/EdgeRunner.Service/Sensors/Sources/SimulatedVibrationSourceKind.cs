using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary><c>Sensors:{id}:Source</c> of Kind <c>SimulatedVibration</c>.</summary>
public sealed class SimulatedVibrationSensorOptions() : SensorSourceOptions(SensorSourceKind.SimulatedVibration)
{
    /// <summary>Machine seed (each stream its own).</summary>
    public int Seed { get; set; } = 1;
}

/// <summary>Kind <c>SimulatedVibration</c>: a simulated 3-axis accelerometer on a rotating machine with injected faults.</summary>
internal sealed class SimulatedVibrationSourceKind : SensorSourceKindBase<SimulatedVibrationSensorOptions>
{
    protected override void Validate(string key, SimulatedVibrationSensorOptions options, ValidationErrors errors)
    {
        // Every seed is a machine; the rate is checked for every kind.
    }

    protected override ISensorSource Create(SimulatedVibrationSensorOptions options, SensorSourceContext context) =>
        new SimulatedVibrationSource(options.Seed, context.RateOr(options.SampleRateHz), context.BlockSamples, context.TimeProvider);
}
