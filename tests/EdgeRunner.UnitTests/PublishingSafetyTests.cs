using System.Text;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests;

/// <summary>
/// Hostile input on the way out and in: stream ids from wildcard topic levels, topic rules, ingest payload
/// size, and the publisher's queue being fair between producers.
/// </summary>
public sealed class PublishingSafetyTests
{
    private const string Base = "edgerunner/dev";

    private static MqttIngestRoute Route(string filter = "plant/+/accel", int maxPayloadBytes = 64 * 1024) =>
        new(
            "vib",
            new SensorStreamOptions { Model = "lstm", Source = new EdgeRunner.Service.Sensors.Sources.MqttSensorOptions { Topic = filter, MaxPayloadBytes = maxPayloadBytes } },
            ["ax", "ay", "az"],
            200,
            TimeProvider.System,
            NullLogger.Instance);

    private static bool IsSafeFileNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '@' or '~' or '%';

    [Theory]
    [InlineData("m1")]
    [InlineData("machine-7_a.b")]
    [InlineData("aa:bb:cc:dd:ee:ff")]
    [InlineData("site@3")]
    [InlineData("line1/m2/x")]
    public void Short_safe_levels_are_the_stream_id_as_they_are(string levels)
    {
        Assert.Equal(levels, IngestStreamId.For(levels, out var mapped));
        Assert.False(mapped);
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("100%")]
    [InlineData("a//b")]
    [InlineData("a/")]
    [InlineData("..")]
    [InlineData("m1/./x")]
    [InlineData("caf\u00e9")]
    [InlineData("tab\there")]
    [InlineData("tilde~1")]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123456789")]
    public void Long_or_unusual_levels_map_to_a_stable_short_safe_id(string levels)
    {
        var id = IngestStreamId.For(levels, out var mapped);

        Assert.True(mapped);
        Assert.Equal(id, IngestStreamId.For(levels, out _));
        Assert.True(id.Length <= IngestStreamId.PrefixLength + 13, id);
        Assert.Matches("~[0-9a-f]{12}$", id);
        Assert.All(id, c => Assert.True(IsSafeFileNameChar(c) && c != '%', $"'{c}' in {id}"));
        Assert.DoesNotContain('/', id);
    }

    [Fact]
    public void A_65k_character_level_maps_to_a_readable_prefix_and_a_hash_and_a_checkpoint_name_that_fits()
    {
        var level = "sensor-" + new string('x', 65_500);
        var route = Route();

        Assert.True(route.TryGetStreamId($"plant/{level}/accel", out var streamId));
        Assert.True(route.TryGetStreamId($"plant/{level}y/accel", out var otherId));

        Assert.StartsWith("vib/sensor-xxxxxxxx", streamId, StringComparison.Ordinal);
        Assert.True(streamId.Length <= "vib/".Length + IngestStreamId.PrefixLength + 13, streamId);
        Assert.NotEqual(streamId, otherId);
        Assert.Equal(2, route.MappedIds);
        var file = Path.GetFileName(StreamCheckpoint.PathFor("/state", streamId));
        Assert.Equal("/state", Path.GetDirectoryName(StreamCheckpoint.PathFor("/state", streamId)));
        Assert.True(Encoding.UTF8.GetByteCount(file + ".tmp") < 255, file);
        Assert.Null(MqttTopicRules.Problem(new MqttTopics("edgerunner", "dev").SensorResult(streamId), out _));
    }

    [Fact]
    public void Levels_used_as_they_are_keep_their_stream_id_and_a_mapped_id_never_equals_one()
    {
        var route = Route("plant/#");
        Assert.True(route.TryGetStreamId("plant/line1/m2", out var plain));
        Assert.Equal("vib/line1/m2", plain);

        // Someone publishing on a level that looks like a mapped id: '~' is unsafe, so it is mapped again, never taken as is.
        var mappedId = IngestStreamId.For("has space", out _);
        Assert.NotEqual(mappedId, IngestStreamId.For(mappedId, out var remapped));
        Assert.True(remapped);
    }

    [Fact]
    public void Every_worst_case_safe_id_gives_a_checkpoint_file_name_that_fits()
    {
        // 64 characters, half of them level separators: each '/' is written "%2F" in the file name.
        var levels = string.Join('/', Enumerable.Repeat("a", 32));
        Assert.Equal(63, levels.Length);
        Assert.Equal(levels, IngestStreamId.For(levels, out var mapped));
        Assert.False(mapped);
        var file = Path.GetFileName(StreamCheckpoint.PathFor("/state", "vib/" + levels));
        Assert.True(Encoding.UTF8.GetByteCount(file + ".tmp") < 255, file);
    }

    [Fact]
    public void Valid_topics_pass_with_their_utf8_length()
    {
        Assert.Null(MqttTopicRules.Problem("edgerunner/dev/vision/front/result", out var bytes));
        Assert.Equal(34, bytes);
        Assert.Null(MqttTopicRules.Problem(new string('\u00e9', 30_000), out bytes));
        Assert.Equal(60_000, bytes);
        Assert.Null(MqttTopicRules.Problem(new string('a', 65_535), out bytes));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("a/+/b", "wildcards")]
    [InlineData("a/#", "wildcards")]
    [InlineData("a\0b", "NUL")]
    [InlineData("a\u0001b", "U+0001")]
    [InlineData("a\u0085b", "U+0085")]
    public void Topics_MQTT_does_not_allow_are_refused_with_the_reason(string topic, string reason)
    {
        Assert.Contains(reason, MqttTopicRules.Problem(topic, out var bytes), StringComparison.Ordinal);
        Assert.Equal(0, bytes);
    }

    [Fact]
    public void A_topic_with_a_lone_surrogate_has_no_utf8_form_and_is_refused()
    {
        // Not an InlineData: attribute strings are stored as UTF-8, which would replace the surrogate.
        var topic = "a" + (char)0xD800 + "b";
        Assert.Contains("lone surrogate", MqttTopicRules.Problem(topic, out _), StringComparison.Ordinal);
    }

    [Fact]
    public void Topics_longer_than_65535_utf8_bytes_are_refused()
    {
        Assert.Contains("65535", MqttTopicRules.Problem(new string('a', 65_536), out _), StringComparison.Ordinal);
        // 33,000 two-byte characters: short enough in characters, too long in bytes.
        Assert.Contains("66000 UTF-8 bytes", MqttTopicRules.Problem(new string('\u00e9', 33_000), out _), StringComparison.Ordinal);
    }

    [Fact]
    public void An_oversized_ingest_payload_is_refused_and_counted_before_it_is_read()
    {
        var route = Route(maxPayloadBytes: 1024);
        var payload = Encoding.UTF8.GetBytes(string.Join('\n', Enumerable.Repeat("0.1,0.2,0.98", 200)));
        Assert.True(payload.Length > 1024);

        var destination = new float[route.Parser.MaxSamples(payload.Length) * 3];
        Assert.True(route.Parser.MaxSamples(payload.Length) <= route.Parser.MaxSamples(1024), "the buffer is sized by the limit, not the payload");
        Assert.False(route.Parser.TryParse(payload, destination, out _, out _, out var error));
        route.RejectMalformed("plant/m1/accel", error);

        Assert.StartsWith(MqttPayloadParser.TooLargePrefix, error, StringComparison.Ordinal);
        Assert.Equal(1, route.OversizedPayloads);
        Assert.Equal(1, route.MalformedPayloads);
        Assert.True(route.Parser.TryParse(payload.AsSpan(0, 1000 - (1000 % 13) - 1), destination, out var samples, out _, out _));
        Assert.True(samples > 0);
    }

    private static FairOutgoingQueue Queue(int capacity = 100, long maxBytes = 1 << 20) => new(capacity, maxBytes, new FakeTimeProvider());

    private static List<OutgoingMessage> DrainAll(FairOutgoingQueue queue)
    {
        var messages = new List<OutgoingMessage>();
        while (queue.TryDequeue(out var message))
        {
            messages.Add(message);
            queue.Release(message);
        }

        return messages;
    }

    private static string Text(OutgoingMessage message) => Encoding.UTF8.GetString(message.Buffer, 0, message.Length);

    [Fact]
    public void A_flood_from_one_producer_drops_its_own_oldest_and_nothing_of_the_others()
    {
        var queue = Queue(capacity: 100);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(EnqueueOutcome.Queued, queue.TryEnqueue($"{Base}/vision/cam/result", Encoding.UTF8.GetBytes($"cam {i}"), false, out _));
        }

        QueueReport last = default;
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(EnqueueOutcome.Queued, queue.TryEnqueue($"{Base}/sensors/vib/flood/result", Encoding.UTF8.GetBytes($"flood {i}"), false, out var report));
            last = report.Producer is null ? last : report;
            if (i % 100 == 0)
            {
                queue.TryEnqueue($"{Base}/sensors/vib/quiet/result", Encoding.UTF8.GetBytes($"quiet {i / 100}"), false, out _);
            }
        }

        Assert.Equal(100, queue.Count);
        Assert.Equal(0, queue.DroppedFor($"{Base}/vision/cam"));
        Assert.Equal(0, queue.DroppedFor($"{Base}/sensors/vib/quiet"));
        Assert.Equal(1000 + 10 + 10 - 100, queue.DroppedFor($"{Base}/sensors/vib/flood"));
        Assert.Equal(queue.Dropped, queue.DroppedFor($"{Base}/sensors/vib/flood"));
        Assert.Equal($"{Base}/sensors/vib/flood", last.Producer);

        var messages = DrainAll(queue);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"cam {i}"), messages.Where(m => m.Producer.EndsWith("/cam", StringComparison.Ordinal)).Select(Text));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"quiet {i}"), messages.Where(m => m.Producer.EndsWith("/quiet", StringComparison.Ordinal)).Select(Text));
        // The flood keeps its newest, in order.
        Assert.Equal(Enumerable.Range(920, 80).Select(i => $"flood {i}"), messages.Where(m => m.Producer.EndsWith("/flood", StringComparison.Ordinal)).Select(Text));
    }

    [Fact]
    public void Producers_are_served_in_turn_and_each_producer_in_order()
    {
        var queue = Queue();
        foreach (var topic in new[] { "result", "state", "result" })
        {
            queue.TryEnqueue($"{Base}/vision/a/{topic}", Encoding.UTF8.GetBytes($"a-{topic}"), false, out _);
        }

        queue.TryEnqueue($"{Base}/vision/b/result", "b-1"u8, false, out _);
        queue.TryEnqueue($"{Base}/vision/b/result", "b-2"u8, false, out _);

        Assert.Equal(["a-result", "b-1", "a-state", "b-2", "a-result"], DrainAll(queue).Select(Text));
    }

    [Fact]
    public void A_producer_alone_may_use_the_whole_queue()
    {
        var queue = Queue(capacity: 50);
        for (var i = 0; i < 50; i++)
        {
            queue.TryEnqueue($"{Base}/vision/cam/result", "x"u8, false, out _);
        }

        Assert.Equal(50, queue.Count);
        Assert.Equal(0, queue.Dropped);
    }

    [Fact]
    public void The_byte_budget_drops_from_the_producer_holding_the_most_bytes_and_large_payloads_are_not_pooled()
    {
        var queue = Queue(capacity: 1000, maxBytes: 1_000_000);
        var big = new byte[FairOutgoingQueue.PooledPayloadLimit + 1];
        queue.TryEnqueue($"{Base}/vision/cam/result", "small"u8, false, out _);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(EnqueueOutcome.Queued, queue.TryEnqueue($"{Base}/vision/cam2/snapshot", big, false, out _));
        }

        Assert.True(queue.Bytes <= 1_000_000);
        Assert.Equal(0, queue.DroppedFor($"{Base}/vision/cam"));
        Assert.Equal(20 - (1_000_000 - 5) / big.Length, queue.DroppedFor($"{Base}/vision/cam2"));
        var messages = DrainAll(queue);
        Assert.All(messages.Where(m => m.Length == big.Length), m => Assert.False(m.Pooled));
        Assert.True(messages.Single(m => m.Length == 5).Pooled);
    }

    [Fact]
    public void A_bad_or_too_large_message_is_refused_for_its_producer_and_counted()
    {
        var queue = Queue();
        var longTopic = $"{Base}/sensors/vib/{new string('x', 65_600)}/result";
        Assert.Equal(EnqueueOutcome.InvalidTopic, queue.TryEnqueue(longTopic, "1"u8, false, out var report));
        Assert.True(report.Log);
        Assert.Contains("65535", report.Reason, StringComparison.Ordinal);
        Assert.Equal(EnqueueOutcome.InvalidTopic, queue.TryEnqueue(longTopic, "2"u8, false, out report));
        Assert.False(report.Log); // rate-limited: one line per producer per 10 s

        queue.MaxPacketSize = 100;
        Assert.Equal(EnqueueOutcome.TooLarge, queue.TryEnqueue($"{Base}/vision/cam/snapshot", new byte[100], false, out report));
        Assert.Contains("Maximum Packet Size (100 bytes)", report.Reason, StringComparison.Ordinal);
        Assert.Equal(EnqueueOutcome.Queued, queue.TryEnqueue($"{Base}/vision/cam/result", new byte[50], false, out _));

        Assert.Equal(2, queue.RefusedFor(FairOutgoingQueue.ProducerOf(longTopic).ToString()));
        Assert.Equal(1, queue.RefusedFor($"{Base}/vision/cam"));
        Assert.Equal(3, queue.Refused);
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public void Queueing_and_sending_allocates_nothing_in_steady_state()
    {
        var queue = Queue(capacity: 64);
        string[] topics = [$"{Base}/vision/cam/result", $"{Base}/vision/cam/state", $"{Base}/sensors/vib/m1/result", $"{Base}/sensors/pump/event"];
        var payload = new byte[700];

        void Round()
        {
            // More than the capacity, so drops happen too.
            for (var i = 0; i < 100; i++)
            {
                queue.TryEnqueue(topics[i % topics.Length], payload, false, out _);
            }

            while (queue.TryDequeue(out var message))
            {
                queue.Release(message);
            }
        }

        Round();
        Round();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 50; i++)
        {
            Round();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(queue.Dropped > 0);
    }

    [Fact]
    public async Task A_closed_queue_refuses_new_messages_and_reads_out_what_it_holds()
    {
        var queue = Queue();
        queue.TryEnqueue($"{Base}/vision/cam/result", "1"u8, false, out _);
        queue.Close();

        Assert.Equal(EnqueueOutcome.Closed, queue.TryEnqueue($"{Base}/vision/cam/result", "2"u8, false, out _));
        Assert.True(await queue.WaitToReadAsync(TestContext.Current.CancellationToken));
        Assert.Single(DrainAll(queue));
        Assert.False(await queue.WaitToReadAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_waiting_reader_wakes_for_a_message()
    {
        var queue = Queue();
        var waiting = queue.WaitToReadAsync(TestContext.Current.CancellationToken).AsTask();
        Assert.False(waiting.IsCompleted);
        queue.TryEnqueue($"{Base}/vision/cam/result", "1"u8, false, out _);

        Assert.True(await waiting);
        Assert.True(queue.TryDequeue(out var message));
        queue.Release(message);
    }
}
