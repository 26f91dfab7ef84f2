namespace EdgeRunner.Hardware.Supervision;

/// <summary>The one retry-delay rule of every reconnecting source (cameras, sensor devices, capture processes).</summary>
public static class Backoff
{
    /// <summary>The factor the wait grows by per consecutive failure, unless a loop has a reason for another.</summary>
    public const double DefaultMultiplier = 2;

    /// <summary>The jitter of every reconnect loop unless it has a reason for another: each wait is drawn from [0.8 d, d].</summary>
    public const double DefaultJitter = 0.2;

    /// <summary>
    /// The wait after <paramref name="consecutiveFailures"/> failures in a row (1 = the first):
    /// min(initial × multiplier^(n−1), max) × (1 − jitter × <paramref name="sample"/>), sample in [0, 1).
    /// Jitter only shortens the wait, so devices on one bus or a fleet after an outage do not retry in lockstep.
    /// </summary>
    public static TimeSpan Exponential(TimeSpan initial, TimeSpan max, int consecutiveFailures, double multiplier = 2, double jitter = 0, double sample = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(consecutiveFailures, 1);
        var exponent = Math.Min(consecutiveFailures - 1, 1000);
        var seconds = Math.Min(initial.TotalSeconds * Math.Pow(multiplier, exponent), max.TotalSeconds);
        seconds *= 1 - (jitter * Math.Clamp(sample, 0, 1));
        return TimeSpan.FromSeconds(seconds);
    }
}
