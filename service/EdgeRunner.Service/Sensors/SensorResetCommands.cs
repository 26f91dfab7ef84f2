using System.Buffers;
using System.Text.Json;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// Reset commands (<c>.../sensors/{stream}/reset</c>, empty or <c>{"reason": "…"}</c>): read, counted,
/// and handed to the stream by <paramref name="deliver"/> (false: no such stream); anything else under
/// the command filter is ignored. Runs on the MQTT receive loop.
/// </summary>
internal sealed partial class SensorResetCommands(MqttTopics topics, Func<string, string, bool> deliver, TimeProvider timeProvider, ILogger logger)
{
    private readonly LogRateLimiter _log = new(timeProvider, TimeSpan.FromSeconds(10));
    private long _rejected;
    private long _accepted;

    /// <summary>Reset commands refused (unknown stream, unreadable payload).</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Reset commands accepted and handed to their stream.</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Handles one message under the command filter.</summary>
    public void Handle(string topic, ReadOnlySequence<byte> payload)
    {
        if (topics.StreamOfResetTopic(topic) is not { } streamId)
        {
            return;
        }

        if (!TryReadResetReason(payload, out var reason))
        {
            Reject(topic, streamId, "the payload is neither empty nor a JSON object with a \"reason\" string");
            return;
        }

        if (!deliver(streamId, reason))
        {
            Reject(topic, streamId, "no such stream");
            return;
        }

        Interlocked.Increment(ref _accepted);
    }

    /// <summary>Empty payload: "command"; JSON object: its "reason" string (other fields ignored).</summary>
    internal static bool TryReadResetReason(ReadOnlySequence<byte> payload, out string reason)
    {
        reason = "command";
        if (payload.IsEmpty)
        {
            return true;
        }

        try
        {
            using var document = JsonDocument.Parse(payload);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return false;
            }

            if (document.RootElement.TryGetProperty("reason", out var value))
            {
                if (value.ValueKind != JsonValueKind.String)
                {
                    return false;
                }

                var text = value.GetString()!;
                reason = text.Length > 200 ? text[..200] : text;
            }

            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private void Reject(string topic, string streamId, string why)
    {
        var count = Interlocked.Increment(ref _rejected);
        if (_log.TryAcquire(out var suppressed))
        {
            LogResetRejected(logger, topic, streamId, why, count, suppressed);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reset command on {Topic} rejected for stream '{StreamId}': {Reason} ({Count} rejected so far, {Suppressed} not logged since the last line)")]
    private static partial void LogResetRejected(ILogger logger, string topic, string streamId, string reason, long count, long suppressed);
}
