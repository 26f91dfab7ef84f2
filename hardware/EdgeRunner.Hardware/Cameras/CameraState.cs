namespace EdgeRunner.Hardware.Cameras;

/// <summary>Health of a supervised camera, as reported by <see cref="SupervisedFrameSource"/>.</summary>
public enum CameraState
{
    /// <summary>The first attempt to open the camera is under way; no frame yet.</summary>
    Starting,

    /// <summary>Frames are arriving.</summary>
    Streaming,

    /// <summary>The camera failed or stalled; waiting (backoff) or trying to open it again.</summary>
    Reconnecting,

    /// <summary>Gave up after <see cref="SupervisionOptions.MaxConsecutiveFailures"/> failed attempts in a row (only if configured).</summary>
    Failed,
}

/// <summary>A change of <see cref="CameraState"/>, with why it happened.</summary>
public sealed class CameraStateChangedEventArgs : EventArgs
{
    /// <summary>Creates the event data.</summary>
    public CameraStateChangedEventArgs(CameraState previous, CameraState state, string reason, DateTimeOffset timestamp)
    {
        Previous = previous;
        State = state;
        Reason = reason;
        Timestamp = timestamp;
    }

    /// <summary>The state before.</summary>
    public CameraState Previous { get; }

    /// <summary>The new state.</summary>
    public CameraState State { get; }

    /// <summary>Why (e.g. the error that caused a reconnect, with ffmpeg's own message); credentials are already redacted by the sources.</summary>
    public string Reason { get; }

    /// <summary>When it changed (the supervisor's <see cref="TimeProvider"/>).</summary>
    public DateTimeOffset Timestamp { get; }
}
