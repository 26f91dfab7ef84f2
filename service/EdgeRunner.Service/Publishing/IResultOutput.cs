namespace EdgeRunner.Service.Publishing;

/// <summary>
/// One destination of results: MQTT today (<see cref="Mqtt.MqttPublisher"/>); an HTTP endpoint, a Prometheus
/// exporter or GPIO actions are further implementations, each registered with
/// <see cref="PublishingServiceCollectionExtensions.AddResultOutput{TOutput}"/> and reached through
/// <see cref="CompositeResultPublisher"/> without any pipeline knowing of it.
/// </summary>
/// <remarks>
/// The topic is the result's address (<see cref="Mqtt.MqttTopics"/>: <c>{prefix}/{device}/vision/{camera}/result</c>
/// and so on); an output that is not MQTT maps it to its own addressing. Called on the pipelines' hot paths:
/// copy what is kept, never block, allocate nothing per call in steady state.
/// </remarks>
public interface IResultOutput
{
    /// <summary>
    /// Takes <paramref name="payload"/> (copied) for <paramref name="topic"/>; false when this output refuses it
    /// or is shutting down. Never blocks and never throws for a bad message (it is counted and dropped).
    /// </summary>
    bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain);
}
