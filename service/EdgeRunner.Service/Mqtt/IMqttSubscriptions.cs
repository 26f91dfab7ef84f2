using System.Buffers;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// Receives one MQTT message. Called on the client's receive loop: it must not block (copy or parse the
/// payload, hand it on through a bounded queue, return). The payload is only valid during the call.
/// </summary>
public delegate void MqttMessageHandler(string topic, ReadOnlySequence<byte> payload);

/// <summary>
/// Subscriptions over the daemon's one MQTT connection (<see cref="MqttConnection"/>; implemented by
/// <see cref="MqttSubscriptionDispatcher"/>). A subscription is kept for the life of the daemon and made
/// again after every reconnect (the session is clean-start).
/// </summary>
public interface IMqttSubscriptions
{
    /// <summary>
    /// Subscribes to <paramref name="topicFilter"/> (QoS 1, no-local: the daemon's own publications are
    /// not echoed back) and hands every message whose topic matches it to <paramref name="handler"/>.
    /// May be called before or after the connection is up.
    /// </summary>
    void Subscribe(string topicFilter, MqttMessageHandler handler);
}
