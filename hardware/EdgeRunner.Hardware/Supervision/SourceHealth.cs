namespace EdgeRunner.Hardware.Supervision;

/// <summary>
/// The health of a supervised source, one vocabulary for cameras (<see cref="Cameras.SupervisedFrameSource"/>) and
/// device-backed sensors (<see cref="Sensors.ReopeningSensorSource"/>) alike. The words the daemon publishes on its
/// retained state topics come from <see cref="SourceHealthWords"/> and are the ones subscribers already know.
/// </summary>
public enum SourceHealth
{
    /// <summary>Being opened, or opened, with nothing delivered yet (a capture or a port may still fail on its first read).</summary>
    Opening,

    /// <summary>Data is flowing: something has been read since the source was (re)opened.</summary>
    Streaming,

    /// <summary>The device is absent, failed or stalled; the supervisor waits its backoff and opens it again.</summary>
    Unavailable,

    /// <summary>The supervisor gave up (a camera after its configured number of failed attempts in a row).</summary>
    Failed,

    /// <summary>The source has no more data (a replay without loop).</summary>
    Ended,
}

/// <summary>A change of <see cref="SourceHealth"/>, with why it happened.</summary>
public sealed class SourceHealthChangedEventArgs : EventArgs
{
    /// <summary>Creates the event data.</summary>
    public SourceHealthChangedEventArgs(SourceHealth previous, SourceHealth state, string reason, DateTimeOffset timestamp)
    {
        Previous = previous;
        State = state;
        Reason = reason;
        Timestamp = timestamp;
    }

    /// <summary>The state before.</summary>
    public SourceHealth Previous { get; }

    /// <summary>The new state.</summary>
    public SourceHealth State { get; }

    /// <summary>Why (e.g. the error that caused a reconnect, with the device's or ffmpeg's own message); credentials are already redacted by the sources.</summary>
    public string Reason { get; }

    /// <summary>When it changed (the supervisor's <see cref="TimeProvider"/>).</summary>
    public DateTimeOffset Timestamp { get; }
}

/// <summary>
/// The words published for a <see cref="SourceHealth"/> on the retained state topics. They are the words each side
/// published before the two vocabularies became one: a camera that is <see cref="SourceHealth.Unavailable"/> says
/// <c>reconnecting</c>, a sensor stream says <c>unavailable</c>; every other state is its name in lower case.
/// </summary>
public static class SourceHealthWords
{
    /// <summary>The word on <c>.../vision/{camera}/state</c>.</summary>
    public static string ForCamera(SourceHealth health) => health switch
    {
        SourceHealth.Opening => "opening",
        SourceHealth.Streaming => "streaming",
        SourceHealth.Unavailable => "reconnecting",
        SourceHealth.Failed => "failed",
        SourceHealth.Ended => "ended",
        _ => throw new ArgumentOutOfRangeException(nameof(health), health, null),
    };

    /// <summary>The word on <c>.../sensors/{stream}/state</c>.</summary>
    public static string ForSensor(SourceHealth health) => health switch
    {
        SourceHealth.Opening => "opening",
        SourceHealth.Streaming => "streaming",
        SourceHealth.Unavailable => "unavailable",
        SourceHealth.Failed => "failed",
        SourceHealth.Ended => "ended",
        _ => throw new ArgumentOutOfRangeException(nameof(health), health, null),
    };
}
