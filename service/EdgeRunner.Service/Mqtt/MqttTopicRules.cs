using System.Text;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// What MQTT allows in a topic name the daemon publishes to (MQTT 5, sections 1.5.4 and 4.7): at most
/// 65,535 UTF-8 bytes, well-formed UTF-16 (so well-formed UTF-8), no NUL, no wildcard characters; the
/// control characters that the spec says a topic should not contain are refused too, since brokers such as
/// mosquitto drop the connection over them. Checked before a message is queued, so a bad topic is refused
/// for its stream alone instead of reaching the client, which throws (and once took the publishing loop down).
/// </summary>
public static class MqttTopicRules
{
    /// <summary>Most UTF-8 bytes in a topic name (its length is a two-byte integer on the wire).</summary>
    public const int MaxTopicBytes = 65_535;

    /// <summary>
    /// Bytes a PUBLISH packet adds around its topic and payload at most here: fixed header (1 + up to 4
    /// length bytes), topic length (2), packet identifier (2), property length (1; none are sent).
    /// </summary>
    public const int PublishOverheadBytes = 10;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Why <paramref name="topic"/> cannot be published to, or null when it can; <paramref name="utf8Bytes"/> is its encoded length (0 when refused).</summary>
    public static string? Problem(string topic, out int utf8Bytes)
    {
        ArgumentNullException.ThrowIfNull(topic);
        utf8Bytes = 0;
        if (topic.Length == 0)
        {
            return "the topic is empty";
        }

        // Each UTF-16 unit encodes to 1-3 bytes: a topic this long can never fit, and measuring it is not worth it.
        if (topic.Length > MaxTopicBytes)
        {
            return $"the topic is {topic.Length} characters, longer than MQTT's {MaxTopicBytes} UTF-8 bytes";
        }

        var bad = topic.AsSpan().IndexOfAny("+#\0");
        if (bad >= 0)
        {
            return $"the topic contains '{(topic[bad] == '\0' ? "\\0" : topic[bad])}' at {bad} (MQTT topic names must not contain wildcards or NUL)";
        }

        foreach (var c in topic)
        {
            if (c < 0x20 || (c >= 0x7F && c <= 0x9F))
            {
                return $"the topic contains the control character U+{(int)c:X4}";
            }
        }

        int bytes;
        try
        {
            bytes = StrictUtf8.GetByteCount(topic);
        }
        catch (EncoderFallbackException)
        {
            return "the topic is not valid UTF-16 (a lone surrogate), so it has no UTF-8 form";
        }

        if (bytes > MaxTopicBytes)
        {
            return $"the topic is {bytes} UTF-8 bytes, longer than MQTT's {MaxTopicBytes}";
        }

        utf8Bytes = bytes;
        return null;
    }

    /// <summary>Upper bound of the PUBLISH packet's size for a topic of <paramref name="topicBytes"/> UTF-8 bytes and a payload of <paramref name="payloadBytes"/>.</summary>
    public static long PacketSize(int topicBytes, int payloadBytes) => (long)topicBytes + payloadBytes + PublishOverheadBytes;

    /// <summary>A topic or producer for a log line: long ones (up to 64k characters) shortened.</summary>
    internal static string Printable(string? topic) =>
        topic is null ? string.Empty : topic.Length <= 200 ? topic : $"{topic[..160]}...({topic.Length} characters)";
}
