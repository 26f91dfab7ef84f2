namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// When a polled bus source (I2C, GPIO) stops treating failed reads as glitches: after
/// <c>max(<see cref="MinimumConsecutiveFailures"/>, ⌈lostAfter × rate⌉)</c> consecutive samples whose
/// read failed, i.e. every read failing for <c>lostAfter</c> (at least three sample periods, so that
/// at a slow rate one or two bad reads stay glitches). Counted in sample periods rather than wall
/// time, so that the rule does not depend on how late the consumer reads.
/// </summary>
internal static class DeviceLostRule
{
    /// <summary>Fewest consecutive failed samples that count as a lost device, whatever the rate.</summary>
    public const long MinimumConsecutiveFailures = 3;

    /// <summary>The consecutive failed samples after which the device counts as lost; <see cref="long.MaxValue"/> = never.</summary>
    /// <param name="lostAfter">How long every read must fail; <see cref="Timeout.InfiniteTimeSpan"/> = never lost (every failure is a NaN sample).</param>
    /// <param name="sampleRateHz">Samples per second (positive).</param>
    /// <param name="where">The source, for the error.</param>
    public static long ConsecutiveFailures(TimeSpan lostAfter, double sampleRateHz, string where)
    {
        if (lostAfter == Timeout.InfiniteTimeSpan)
        {
            return long.MaxValue;
        }

        if (lostAfter < TimeSpan.Zero)
        {
            throw new SensorSourceException($"{where}: DeviceLostAfter must be zero or more, or infinite (got {lostAfter}).");
        }

        var periods = Math.Ceiling(lostAfter.TotalSeconds * sampleRateHz);
        return periods >= long.MaxValue ? long.MaxValue : Math.Max(MinimumConsecutiveFailures, (long)periods);
    }
}
