namespace EdgeRunner.Service.Publishing.Spool;

/// <summary>Which messages a full spool gives up.</summary>
public enum SpoolFullPolicy
{
    /// <summary>Drop the oldest segment of messages (a whole segment at once) to make room for new ones.</summary>
    DropOldest,

    /// <summary>Refuse new messages until deliveries free room; what is spooled stays.</summary>
    DropNewest,
}

/// <summary>Limits and durability of a <see cref="DiskSpool"/>.</summary>
internal sealed record DiskSpoolSettings
{
    /// <summary>Folder of the segment files (created 0700 when missing).</summary>
    public required string Directory { get; init; }

    /// <summary>Bytes of segment files at most, acknowledgements included.</summary>
    public long MaxBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Messages older than this are not sent any more (expired, counted); zero for no limit.</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(7);

    /// <summary>What a full spool gives up.</summary>
    public SpoolFullPolicy FullPolicy { get; init; } = SpoolFullPolicy.DropOldest;

    /// <summary>
    /// Time between fsyncs of the segment being written. Every append is written to the kernel at once (so
    /// <c>kill -9</c> loses nothing); a power cut can lose what was appended within one interval. Zero: fsync
    /// after every append (slowest, loses nothing).
    /// </summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>After a failed write (disk full, read-only), the time before the spool tries the disk again.</summary>
    public TimeSpan RetryAfterFailure { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Bytes per segment file: an eighth of <see cref="MaxBytes"/>, between 64 KiB and 16 MiB.</summary>
    public long SegmentBytes => Math.Clamp(MaxBytes / 8, 64 * 1024, 16 * 1024 * 1024);
}
