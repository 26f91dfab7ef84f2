namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// The daemon's topic names, built once. Layout: <c>{prefix}/{deviceId}/status</c> (retained online/degraded/offline,
/// with <c>status/detail</c> beside it), <c>{prefix}/{deviceId}/vision/{camera}/result</c> (plus <c>state</c> and
/// <c>snapshot</c>) and <c>{prefix}/{deviceId}/sensors/{stream}/result</c> (plus <c>event</c>, <c>state</c>, and the
/// <c>reset</c> command the daemon subscribes to).
/// </summary>
public sealed class MqttTopics
{
    /// <summary>Creates the topic set for one device.</summary>
    public MqttTopics(string prefix, string deviceId)
    {
        Base = $"{prefix.TrimEnd('/')}/{deviceId}";
        Status = $"{Base}/status";
    }

    /// <summary><c>{prefix}/{deviceId}</c>.</summary>
    public string Base { get; }

    /// <summary>Availability topic: retained "online" while connected, "degraded" while results cannot be published, "offline" on clean stop or as last will.</summary>
    public string Status { get; }

    /// <summary>
    /// Retained JSON beside <see cref="Status"/>: why it says "degraded" (<c>status</c>, <c>reason</c>, <c>time</c>, counters),
    /// and <c>"status":"online"</c> again on recovery. Published only when the status changes that way.
    /// </summary>
    public string StatusDetail => $"{Status}/detail";

    /// <summary>Result topic of camera <paramref name="cameraId"/>.</summary>
    public string VisionResult(string cameraId) => $"{Base}/vision/{cameraId}/result";

    /// <summary>Retained state topic of camera <paramref name="cameraId"/> (streaming, reconnecting, failed, ended).</summary>
    public string VisionState(string cameraId) => $"{Base}/vision/{cameraId}/state";

    /// <summary>Snapshot topic of camera <paramref name="cameraId"/>: an annotated JPEG when the detected labels change.</summary>
    public string VisionSnapshot(string cameraId) => $"{Base}/vision/{cameraId}/snapshot";

    /// <summary>Result topic of sensor stream <paramref name="streamId"/>.</summary>
    public string SensorResult(string streamId) => $"{Base}/sensors/{streamId}/result";

    /// <summary>Event topic of sensor stream <paramref name="streamId"/>: score raise/clear events, reset acknowledgements, evictions, rejections.</summary>
    public string SensorEvent(string streamId) => $"{Base}/sensors/{streamId}/event";

    /// <summary>Retained state of a device-backed sensor stream: streaming, unavailable (with the device's reason) or ended.</summary>
    public string SensorState(string streamId) => $"{Base}/sensors/{streamId}/state";

    /// <summary>Reset command topic of sensor stream <paramref name="streamId"/>.</summary>
    public string SensorReset(string streamId) => $"{Base}/sensors/{streamId}/reset";

    /// <summary>The stream id of a reset command topic (<c>{Base}/sensors/{stream}/reset</c>, the stream may span levels); null for any other topic.</summary>
    public string? StreamOfResetTopic(string topic)
    {
        ArgumentNullException.ThrowIfNull(topic);
        const string Suffix = "/reset";
        var prefixLength = Base.Length + "/sensors/".Length;
        if (topic.Length <= prefixLength + Suffix.Length
            || !topic.StartsWith(Base, StringComparison.Ordinal)
            || !topic.AsSpan(Base.Length).StartsWith("/sensors/", StringComparison.Ordinal)
            || !topic.EndsWith(Suffix, StringComparison.Ordinal))
        {
            return null;
        }

        return topic[prefixLength..^Suffix.Length];
    }
}
