using System.Buffers;
using System.Text.Json;
using EdgeRunner.Service.Publishing;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// Writes the retained JSON of <see cref="MqttTopics.StatusDetail"/> (schema <c>edgerunner.status.detail/1</c>,
/// docs/schemas/status.detail.schema.json): the common fields (<c>schema</c>, <c>device</c>, <c>boot_id</c>),
/// the status it explains, the reason while degraded, when, and the publisher's counters since start.
/// Written at a connect and when the status turns degraded and back: rare, so it may allocate.
/// </summary>
internal static class StatusDetailWriter
{
    /// <summary>The payload's schema id.</summary>
    public static readonly JsonEncodedText Schema = JsonEncodedText.Encode("edgerunner.status.detail/1");

    /// <summary>The detail of <paramref name="status"/> (online, degraded) at <paramref name="timestamp"/>; <paramref name="reason"/> only while degraded.</summary>
    public static byte[] Write(PayloadOrigin origin, string status, string? reason, DateTimeOffset timestamp, StatusCounters counters)
    {
        ArgumentNullException.ThrowIfNull(origin);
        var buffer = new ArrayBufferWriter<byte>(320);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            origin.WriteHeader(writer, Schema);
            writer.WriteString("status", status);
            if (reason is not null)
            {
                writer.WriteString("reason", reason);
            }

            writer.WriteString("timestamp", timestamp);
            writer.WriteNumber("failed", counters.Failed);
            writer.WriteNumber("rejected", counters.Rejected);
            writer.WriteNumber("refused", counters.Refused);
            writer.WriteNumber("dropped", counters.Dropped);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
