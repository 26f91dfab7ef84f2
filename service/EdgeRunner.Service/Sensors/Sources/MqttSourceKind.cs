using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary><c>Sensors:{id}:Source</c> of Kind <c>Mqtt</c>.</summary>
public sealed class MqttSensorOptions() : SensorSourceOptions(SensorSourceKind.Mqtt)
{
    /// <summary>The topic filter subscribed to; with '+' or '#' every distinct matching topic is its own stream (<c>{id}/{matched levels}</c>).</summary>
    public string Topic { get; set; } = string.Empty;

    /// <summary>How payloads are read (Auto, Numbers or Json). JSON objects map their fields to channels by <see cref="Columns"/>.</summary>
    public MqttPayloadFormat Format { get; set; } = MqttPayloadFormat.Auto;

    /// <summary>JSON field names, in the model's channel order (empty: the model's channel names).</summary>
    public string[]? Columns { get; set; }

    /// <summary>JSON field with the sample's time (seconds since 1970 or ISO 8601); empty, or absent in a message: the arrival time.</summary>
    public string TimestampField { get; set; } = string.Empty;

    /// <summary>Messages waiting per stream; when full the oldest is dropped and counted.</summary>
    public int QueueCapacity { get; set; } = 1000;

    /// <summary>Largest payload read, in bytes; a larger message is rejected (counted with the malformed ones, logged rate-limited).</summary>
    public int MaxPayloadBytes { get; set; } = 64 * 1024;

    /// <summary>With a wildcard: most streams active at once; a new topic beyond it is rejected (logged, counted, one event).</summary>
    public int MaxStreams { get; set; } = 100;

    /// <summary>With a wildcard: a stream without samples for this long is evicted (state checkpointed when State:Directory is set); 0 = never.</summary>
    public double IdleTimeoutSeconds { get; set; } = 300;
}

/// <summary>
/// Kind <c>Mqtt</c>: samples published to an MQTT topic, received over the daemon's own connection. The
/// service owns the subscriptions and routes (wildcard streams appear at run time), so the source is
/// opened through its hook.
/// </summary>
internal sealed class MqttSourceKind : SensorSourceKindBase<MqttSensorOptions>
{
    protected override void Validate(string key, MqttSensorOptions options, ValidationErrors errors) =>
        MqttIngestValidation.Validate(key, options, errors);

    protected override ISensorSource Create(MqttSensorOptions options, SensorSourceContext context) => context.OpenMqttIngest();
}
