using System.Buffers;
using System.Text.Json;
using EdgeRunner.Service.Mqtt;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// What the sensor streams say about themselves on MQTT besides their results: a configured stream's
/// retained state (<c>.../sensors/{stream}/state</c>) and the events of any stream
/// (<c>.../sensors/{stream}/events</c>: reset, evicted, rejected, failed, restarting…). Rare: allocating is fine.
/// </summary>
internal sealed class SensorStreamEvents(IResultPublisher publisher, MqttTopics topics, PayloadOrigin origin, TimeProvider timeProvider)
{
    /// <summary>Who writes the payloads (device, boot id), for the streams' result writers.</summary>
    public PayloadOrigin Origin => origin;

    /// <summary>A stream created at run time for one topic of an MQTT wildcard (its id spans topic levels).</summary>
    public static bool IsDynamic(string streamId) => streamId.Contains('/', StringComparison.Ordinal);

    /// <summary>Publishes a configured stream's retained state: streaming, unavailable, ended or failed, with the reason.</summary>
    public void PublishState(string streamId, string state, string reason) =>
        publisher.TryPublish(topics.SensorState(streamId), SensorResultWriter.WriteState(origin, streamId, state, reason, timeProvider.GetUtcNow(), ModelOf(streamId)), retain: true);

    // The model each stream runs, for its state messages (set when the stream's model is loaded, and by a reload).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Catalog.RunningModelStatus> _models = new(StringComparer.Ordinal);

    /// <summary>The model (and provider) <paramref name="streamId"/>'s state messages name from now on.</summary>
    public void SetModel(string streamId, Catalog.RunningModelStatus model) => _models[streamId] = model;

    private Catalog.RunningModelStatus? ModelOf(string streamId) => _models.TryGetValue(streamId, out var model) ? model : null;

    /// <summary>A configured stream's retained state, or a dynamic stream's event (dynamic streams have no retained state).</summary>
    public void Report(string streamId, string state, string reason)
    {
        if (IsDynamic(streamId))
        {
            PublishEvent(streamId, state, reason, topic: null, extra: null);
        }
        else
        {
            PublishState(streamId, state, reason);
        }
    }

    /// <summary>Publishes <c>{"stream","event","reason","timestamp",…}</c> on the stream's event topic. Events are rare: allocating is fine.</summary>
    public void PublishEvent(string streamId, string eventName, string reason, string? topic, Action<Utf8JsonWriter>? extra)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            origin.WriteHeader(w, PayloadSchemas.SensorEvent);
            w.WriteString("stream", streamId);
            w.WriteString("event", eventName);
            w.WriteString("reason", reason);
            if (topic is not null)
            {
                w.WriteString("topic", topic);
            }

            extra?.Invoke(w);
            w.WriteString("timestamp", timeProvider.GetUtcNow());
            w.WriteEndObject();
        }

        publisher.TryPublish(topics.SensorEvent(streamId), buffer.WrittenSpan);
    }
}
