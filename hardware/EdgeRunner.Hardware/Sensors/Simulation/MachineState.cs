namespace EdgeRunner.Hardware.Sensors.Simulation;

/// <summary>
/// Condition of a simulated rotating machine; the value is the class id used in dumps and by the
/// bundled vibration model (labels <c>normal</c>, <c>imbalance</c>, <c>bearing_wear</c>, <c>looseness</c>).
/// </summary>
public enum MachineState
{
    /// <summary>Healthy: a small once-per-revolution (1×) component and sensor noise.</summary>
    Normal = 0,

    /// <summary>Mass imbalance: a strong 1× sinusoid in the radial plane, X and Y 90° apart.</summary>
    Imbalance = 1,

    /// <summary>Rolling-element bearing wear: periodic impulses at a defect frequency ringing a structural resonance, plus raised broadband noise.</summary>
    BearingWear = 2,

    /// <summary>Mechanical looseness: many harmonics and half-order sub-harmonics of 1× with a clipped, asymmetric response.</summary>
    Looseness = 3,
}
