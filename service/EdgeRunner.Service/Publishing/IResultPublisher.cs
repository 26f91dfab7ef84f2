namespace EdgeRunner.Service.Publishing;

/// <summary>
/// Where pipelines hand their results. Implementations never block the caller. The daemon's one instance is
/// <see cref="CompositeResultPublisher"/>, which hands each result to every <see cref="IResultOutput"/>.
/// </summary>
public interface IResultPublisher
{
    /// <summary>
    /// Hands <paramref name="payload"/> (copied) for <paramref name="topic"/> to the outputs. Returns false when
    /// no output took it: shutting down, or refused (for MQTT: a topic MQTT does not allow, or too large for the
    /// broker; counted and logged rate-limited per producer). A full MQTT queue drops the oldest message of the
    /// producer holding the most instead (counted per producer).
    /// </summary>
    bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain = false);
}
