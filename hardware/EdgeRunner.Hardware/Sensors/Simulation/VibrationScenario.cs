namespace EdgeRunner.Hardware.Sensors.Simulation;

/// <summary>
/// The fault schedule of a <see cref="VibrationSimulator"/>: how long the machine runs normally,
/// how long faults last and how fast they ramp in. Durations are drawn uniformly from the ranges
/// by the simulator's seed. <see cref="Default"/> is the schedule the dumps and the bundled model use.
/// </summary>
public sealed record VibrationScenario
{
    /// <summary>The default schedule: 20–60 s normal, 20–60 s faults ramping in over up to 3 s, 30 % of faults followed directly by another fault.</summary>
    public static VibrationScenario Default { get; } = new();

    /// <summary>When set, the machine stays in this state for ever (no schedule, no ramp); useful for tests and demos.</summary>
    public MachineState? ConstantState { get; init; }

    /// <summary>Shortest normal period, seconds.</summary>
    public double MinNormalSeconds { get; init; } = 20;

    /// <summary>Longest normal period, seconds.</summary>
    public double MaxNormalSeconds { get; init; } = 60;

    /// <summary>Shortest fault period (ramp included), seconds.</summary>
    public double MinFaultSeconds { get; init; } = 20;

    /// <summary>Longest fault period (ramp included), seconds.</summary>
    public double MaxFaultSeconds { get; init; } = 60;

    /// <summary>Longest ramp-in of a fault's severity from 0 to full, seconds (drawn from 0 to this). The true state is the fault from its first sample.</summary>
    public double MaxRampSeconds { get; init; } = 3;

    /// <summary>Probability that a fault is followed directly by a different fault rather than by a normal period.</summary>
    public double FaultToFaultProbability { get; init; } = 0.3;

    /// <summary>Throws when a duration or probability is out of range.</summary>
    public void Validate()
    {
        if (!(MinNormalSeconds > 0 && MaxNormalSeconds >= MinNormalSeconds && MinFaultSeconds > 0 && MaxFaultSeconds >= MinFaultSeconds))
        {
            throw new ArgumentException("Scenario durations must be positive with max >= min.");
        }

        if (!(MaxRampSeconds >= 0 && MaxRampSeconds <= MinFaultSeconds))
        {
            throw new ArgumentException("Scenario MaxRampSeconds must lie in [0, MinFaultSeconds].");
        }

        if (!(FaultToFaultProbability >= 0 && FaultToFaultProbability <= 1))
        {
            throw new ArgumentException("Scenario FaultToFaultProbability must lie in [0, 1].");
        }
    }
}
