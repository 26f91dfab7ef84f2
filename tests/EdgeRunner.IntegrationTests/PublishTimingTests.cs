using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Diagnostics;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The publish stage's histograms (<c>edgerunner.publish.ack.duration</c>, <c>edgerunner.publish.queue.duration</c>)
/// of an in-process daemon with a synthetic camera and a simulated machine on a real mosquitto: served by the
/// Prometheus endpoint per <c>kind</c> and <c>id</c>, summed up in the health message per camera, per stream and
/// for all messages, and counting every message the broker acknowledged, once.
/// </summary>
public sealed class PublishTimingTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Every_acknowledged_message_is_timed_per_camera_and_stream_in_prometheus_and_the_health_message()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("publish-timing", ct);
        var health = await scenario.ProbeAsync("health", ct);
        var port = FreePort.Next();
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Metrics"] = new JsonObject { ["HealthIntervalSeconds"] = 1, ["Prometheus"] = new JsonObject { ["Port"] = port } },
                ["Models"] = new JsonObject
                {
                    ["detector"] = TestConfig.BundledModel("shapes-detector"),
                    ["lstm"] = TestConfig.BundledModel("vibration-lstm"),
                },
                ["Cameras"] = new JsonObject
                {
                    ["yard"] = new JsonObject { ["Model"] = "detector", ["Fps"] = 10, ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 320, ["Height"] = 240, ["Seed"] = 3 } },
                },
                ["Sensors"] = new JsonObject { ["pump"] = TestConfig.SimulatedVibration(5) },
            },
            ct,
            // Listening before any service starts, so the first message published is timed too (the count check below).
            services => services.AddHostedService(sp => new ListenFromStart(sp.GetRequiredService<MetricsCollector>())));

        // The health message: per camera and stream, and for every message, once an interval saw them acknowledged.
        var message = await health.WaitForAsync(m => Timed(m.Payload), Within, ct);
        Assert.Empty(SchemaValidator.Errors("health", message.Payload));
        var root = JsonDocument.Parse(message.Payload).RootElement;
        AssertPercentiles(Assert.Single(root.GetProperty("cameras").EnumerateArray()).GetProperty("publish_ack_ms"));
        AssertPercentiles(Assert.Single(root.GetProperty("streams").EnumerateArray()).GetProperty("publish_ack_ms"));
        AssertPercentiles(root.GetProperty("mqtt").GetProperty("ack_ms"));
        AssertPercentiles(root.GetProperty("mqtt").GetProperty("queue_ms"));

        // The Prometheus endpoint: a histogram in seconds per kind and id, its +Inf bucket equal to its count.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var url = new Uri($"http://127.0.0.1:{port}/metrics");
        var text = await http.GetStringAsync(url, ct);
        Assert.Contains("# TYPE edgerunner_publish_ack_duration_seconds histogram", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE edgerunner_publish_queue_duration_seconds histogram", text, StringComparison.Ordinal);
        foreach (var labels in new[] { "kind=\"camera\",id=\"yard\"", "kind=\"stream\",id=\"pump\"", "kind=\"other\"" })
        {
            var count = Sample(text, $"edgerunner_publish_ack_duration_seconds_count{{{labels}}}");
            Assert.True(count > 0, $"no acknowledged message timed for {labels}");
            Assert.Equal(count, Sample(text, $"edgerunner_publish_ack_duration_seconds_bucket{{{labels},le=\"+Inf\"}}"));
            Assert.True(Sample(text, $"edgerunner_publish_ack_duration_seconds_sum{{{labels}}}") > 0);
        }

        // Stopped (the queue drained): every message the broker acknowledged was timed once, each after its wait in the queue was.
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        var collector = host.Services.GetRequiredService<MetricsCollector>();
        await host.StopAsync(ct);
        var snapshot = collector.Collect();
        var acknowledged = snapshot.Histograms.Where(h => h.Instrument.Name == PublishTiming.AckDurationName).ToList();
        var queued = snapshot.Histograms.Where(h => h.Instrument.Name == PublishTiming.QueueDurationName).Sum(h => h.Count);
        Assert.Equal(publisher.Published, acknowledged.Sum(h => h.Count));
        Assert.True(queued >= publisher.Published, $"{queued} queue waits timed for {publisher.Published} messages published");
        Assert.All(acknowledged, h => Assert.Contains(h.Tag(PublishTiming.KindTag), new[] { PublishTiming.CameraKind, PublishTiming.StreamKind, PublishTiming.OtherKind }));
    }

    /// <summary>A health message whose interval timed the camera's and the stream's messages.</summary>
    private static bool Timed(string payload)
    {
        var root = JsonDocument.Parse(payload).RootElement;
        return root.GetProperty("cameras").EnumerateArray().Any(c => c.GetProperty("publish_ack_ms").ValueKind == JsonValueKind.Object)
            && root.GetProperty("streams").EnumerateArray().Any(s => s.GetProperty("publish_ack_ms").ValueKind == JsonValueKind.Object)
            && root.GetProperty("mqtt").GetProperty("ack_ms").ValueKind == JsonValueKind.Object;
    }

    private static void AssertPercentiles(JsonElement percentiles)
    {
        var p50 = percentiles.GetProperty("p50").GetDouble();
        Assert.True(p50 > 0);
        Assert.True(percentiles.GetProperty("p99").GetDouble() >= p50);
    }

    /// <summary>The value of the one sample line that starts with <paramref name="series"/> and a space.</summary>
    private static double Sample(string text, string series)
    {
        var line = Assert.Single(text.Split('\n'), l => l.StartsWith(series + " ", StringComparison.Ordinal));
        return double.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture);
    }

    /// <summary>Makes the host's <see cref="MetricsCollector"/> (the listener) when the hosted services are made: before any starts.</summary>
    private sealed class ListenFromStart(MetricsCollector collector) : IHostedService
    {
        public MetricsCollector Collector { get; } = collector;

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
