namespace EdgeRunner.Service.Publishing.Spool;

/// <summary>
/// <c>Mqtt:Spool</c>: store-and-forward of results on disk, in <c>{State:Directory}/spool</c>. On whenever
/// <c>State:Directory</c> is set (the default and packaged configurations set it) unless <see cref="Enabled"/>
/// is false. Results are appended before they count as produced and deleted after the broker acknowledged
/// them, so a broker outage, <c>kill -9</c> or a restart loses none; retained states stay in memory (the
/// latest is sent again on every connect).
/// </summary>
public sealed class SpoolOptions
{
    /// <summary>False keeps results in memory only (lost on exit), even with a state folder.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Disk space of the spool at most, in MiB (at least 1).</summary>
    public double MaxMegabytes { get; set; } = 64;

    /// <summary>Results older than this are not sent any more (counted as expired); 0 keeps them until sent or dropped.</summary>
    public double MaxAgeHours { get; set; } = 168;

    /// <summary>What a full spool gives up: <c>DropOldest</c> (a segment of the oldest results, counted) or <c>DropNewest</c> (new results refused, counted).</summary>
    public SpoolFullPolicy WhenFull { get; set; } = SpoolFullPolicy.DropOldest;

    /// <summary>
    /// Seconds between fsyncs. Every result reaches the kernel when appended (a killed process loses nothing);
    /// a power cut can lose the results of the last interval. 0 fsyncs every result (slow on SD cards).
    /// </summary>
    public double FlushIntervalSeconds { get; set; } = 1;
}
