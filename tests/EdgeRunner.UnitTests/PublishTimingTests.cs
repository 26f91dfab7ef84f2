using EdgeRunner.Service.Diagnostics;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Publishing.Spool;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests;

/// <summary>
/// The publish stage's timing on a fake clock: the outbox stamps each message when it is handed over, the queue
/// wait and the time to acknowledgement are measured from that stamp in seconds with the camera's or stream's
/// <c>kind</c> and <c>id</c> (a stream id may span levels), a message without a stamp is not timed (the spool gives
/// none to what an earlier run appended), and timing allocates nothing once a producer is known.
/// </summary>
public sealed class PublishTimingTests
{
    private const string Base = "edgerunner/dev";

    [Fact]
    public void The_queue_wait_and_the_time_to_acknowledgement_are_measured_from_the_enqueue_stamp_per_kind_and_id()
    {
        using var services = new ServiceCollection().AddMetrics().AddSingleton<EdgeRunnerMetrics>().BuildServiceProvider();
        var metrics = services.GetRequiredService<EdgeRunnerMetrics>();
        using var collector = new MetricsCollector(metrics);
        var time = new FakeTimeProvider();
        var timing = new PublishTiming(metrics, new MqttTopics("edgerunner", "dev"), time);
        var queue = new FairOutgoingQueue(16, 1 << 20, time);

        queue.TryEnqueue($"{Base}/vision/yard/result", "{}"u8, false, out _);
        queue.TryEnqueue($"{Base}/sensors/line1/m2/event", "{}"u8, false, out _);
        queue.TryEnqueue($"{Base}/health", "{}"u8, true, out _);
        time.Advance(TimeSpan.FromSeconds(2.5));
        var messages = new List<OutgoingMessage>();
        while (queue.TryDequeue(out var message))
        {
            timing.SendStarting(message);
            messages.Add(message);
        }

        time.Advance(TimeSpan.FromSeconds(0.5));
        foreach (var message in messages)
        {
            timing.Acknowledged(message);
            queue.Release(message);
        }

        // Not stamped (recovered from a spool an earlier run wrote): not timed.
        timing.Acknowledged(new OutgoingMessage($"{Base}/vision/yard/result", [], 0, false, false, $"{Base}/vision/yard"));

        var snapshot = collector.Collect();
        foreach (var (kind, id) in new[] { ("camera", "yard"), ("stream", "line1/m2"), ("other", (string?)null) })
        {
            var queued = Assert.Single(snapshot.Histograms, h => h.Instrument.Name == PublishTiming.QueueDurationName && h.Tag("kind") == kind && h.Tag("id") == id);
            var acknowledged = Assert.Single(snapshot.Histograms, h => h.Instrument.Name == PublishTiming.AckDurationName && h.Tag("kind") == kind && h.Tag("id") == id);
            Assert.Equal("s", acknowledged.Instrument.Unit);
            Assert.Equal(1, queued.Count);
            Assert.Equal(2.5, queued.Sum, 9);
            Assert.Equal(1, acknowledged.Count);
            Assert.Equal(3.0, acknowledged.Sum, 9);
            Assert.InRange(MetricsCollector.Percentile(acknowledged.Fine, null, 0.5)!.Value, 3.0, 3.0 * MetricsCollector.FineGrowth);
        }
    }

    [Fact]
    public void A_sub_millisecond_acknowledgement_keeps_its_resolution_in_the_percentiles()
    {
        using var services = new ServiceCollection().AddMetrics().AddSingleton<EdgeRunnerMetrics>().BuildServiceProvider();
        var metrics = services.GetRequiredService<EdgeRunnerMetrics>();
        using var collector = new MetricsCollector(metrics);
        var time = new FakeTimeProvider();
        var timing = new PublishTiming(metrics, new MqttTopics("edgerunner", "dev"), time);
        var queue = new FairOutgoingQueue(16, 1 << 20, time);

        queue.TryEnqueue($"{Base}/vision/yard/result", "{}"u8, false, out _);
        Assert.True(queue.TryDequeue(out var message));
        time.Advance(TimeSpan.FromMicroseconds(180));
        timing.Acknowledged(message);
        queue.Release(message);

        var series = Assert.Single(collector.Collect().Histograms, h => h.Instrument.Name == PublishTiming.AckDurationName);
        Assert.InRange(MetricsCollector.Percentile(series.Fine, null, 0.5)!.Value, 180e-6, 180e-6 * MetricsCollector.FineGrowth);
    }

    [Fact]
    public void A_spooled_message_carries_the_stamp_of_its_append_and_one_an_earlier_run_appended_none()
    {
        var folder = Directory.CreateTempSubdirectory("edgerunner-spool-timing-");
        try
        {
            var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));
            var settings = new DiskSpoolSettings { Directory = folder.FullName, MaxBytes = 1024 * 1024 };
            using (var spool = DiskSpool.Open(settings, time))
            {
                var appended = time.GetTimestamp();
                Assert.Equal(SpoolAppendOutcome.Spooled, spool.Append($"{Base}/vision/yard/result", "{}"u8, qos: 1, retain: false));
                time.Advance(TimeSpan.FromSeconds(2));
                Assert.True(spool.TryTake(out var message));
                Assert.Equal(appended, message.EnqueuedTimestamp);
                DiskSpool.Return(message);
            }

            // The next run recovers it (never acknowledged): replayed, but with no stamp, so not timed.
            using var reopened = DiskSpool.Open(settings, time);
            Assert.Equal(1, reopened.Recovered);
            Assert.True(reopened.TryTake(out var recovered));
            Assert.Equal(0, recovered.EnqueuedTimestamp);
            DiskSpool.Return(recovered);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Timing_a_message_allocates_nothing_in_steady_state()
    {
        using var services = new ServiceCollection().AddMetrics().AddSingleton<EdgeRunnerMetrics>().BuildServiceProvider();
        var metrics = services.GetRequiredService<EdgeRunnerMetrics>();
        using var collector = new MetricsCollector(metrics);
        var time = new FakeTimeProvider();
        var timing = new PublishTiming(metrics, new MqttTopics("edgerunner", "dev"), time);
        var queue = new FairOutgoingQueue(16, 1 << 20, time);
        var camera = $"{Base}/vision/yard/result";
        var stream = $"{Base}/sensors/pump/result";

        AllocationAssert.SteadyStateIsZero(() =>
        {
            queue.TryEnqueue(camera, "{}"u8, false, out _);
            queue.TryEnqueue(stream, "{}"u8, false, out _);
            time.Advance(TimeSpan.FromMilliseconds(1));
            while (queue.TryDequeue(out var message))
            {
                timing.SendStarting(message);
                timing.Acknowledged(message);
                queue.Release(message);
            }
        });
    }
}
