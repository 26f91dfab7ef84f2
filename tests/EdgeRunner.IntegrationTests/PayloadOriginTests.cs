using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Preprocessing;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Publishing;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;

namespace EdgeRunner.IntegrationTests;

/// <summary>The boot id tells two runs of a device apart; writing it costs the hot path nothing.</summary>
public sealed class PayloadOriginTests
{
    [Fact]
    public async Task A_restarted_daemon_has_a_new_boot_id_and_its_cameras_seq_starts_again()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("boots", ct);
        var config = scenario.WriteConfig(new JsonObject
        {
            ["Models"] = new JsonObject { ["detector"] = TestConfig.BundledModel("shapes-detector") },
            ["Cameras"] = new JsonObject
            {
                ["cam"] = new JsonObject
                {
                    ["Model"] = "detector",
                    ["Fps"] = 10,
                    ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 320, ["Height"] = 240, ["Seed"] = 9 },
                },
            },
        });

        var first = await RunUntilSeqAsync(scenario, config, 5, ct);
        var second = await RunUntilSeqAsync(scenario, config, 0, ct);

        Assert.NotEqual(Field(first[0], "boot_id"), Field(second[0], "boot_id"));
        Assert.All(first, r => Assert.Equal(Field(first[0], "boot_id"), Field(r, "boot_id")));
        foreach (var run in (List<JsonElement>[])[first, second])
        {
            // Every frame numbered before the run's first result was dropped, skipped or failed, and counted
            // in it: so its seq counts from 0 again, not from where the first run stopped.
            var head = run[0];
            var uncounted = head.GetProperty("frames_dropped").GetInt64() + head.GetProperty("frames_skipped_rate").GetInt64()
                + head.GetProperty("frames_skipped_motion").GetInt64() + head.GetProperty("frames_failed").GetInt64();
            Assert.InRange(head.GetProperty("seq").GetInt64(), 0, uncounted);
            Assert.Equal(scenario.DeviceId, Field(head, "device"));
        }
    }

    [Fact]
    public void Writing_a_camera_result_with_its_origin_allocates_nothing()
    {
        var origin = PayloadOrigin.NewBoot("gate-1");
        using var writer = new VisionResultWriter(origin, "shapes-detector", new string('a', 64), "CPUExecutionProvider");
        var context = new VisionResultContext("cam", 7, DateTimeOffset.UnixEpoch, null, 320, 240, new FrameTimings(1.5, 2.5), 0);
        var head = new NoResultsHead();
        long bytes = 0;

        AllocationAssert.SteadyStateIsZero(() => bytes += writer.Write(context, head).Length);

        var payload = JsonDocument.Parse(writer.Write(context, head).ToArray()).RootElement;
        Assert.Equal("edgerunner.vision.result/1", Field(payload, "schema"));
        Assert.Equal(origin.BootId, Field(payload, "boot_id"));
        Assert.Empty(SchemaValidator.Errors("vision.result", payload.GetRawText()));
        Assert.True(bytes > 0);
    }

    [Fact]
    public void Every_state_and_event_a_stream_can_report_matches_the_sensor_schemas()
    {
        // The rare ones a demo run does not show (a device lost, a loop restarting, a model that cannot run),
        // as the daemon's own writer publishes them for a configured stream and a dynamic (wildcard) one.
        var publisher = new CapturingPublisher();
        var events = new SensorStreamEvents(publisher, new MqttTopics("edgerunner", "gate-1"), PayloadOrigin.NewBoot("gate-1"), TimeProvider.System);
        string[] states = ["streaming", "opening", "unavailable", "ended", "restarting", "failed"];
        foreach (var state in states)
        {
            events.PublishState("pump", state, "why: " + state);
        }

        foreach (var state in (string[])["restarting", "streaming", "failed"])
        {
            events.Report("vib/m1", state, "why: " + state);
        }

        events.PublishEvent("vib/m1", "failed", "State:Directory cannot be created", "plant/m1/accel", extra: null);

        Assert.Equal(states.Length + 4, publisher.Messages.Count);
        Assert.All(publisher.Messages, m =>
        {
            var kind = SchemaValidator.KindOf(m.Topic);
            Assert.NotNull(kind);
            Assert.Empty(SchemaValidator.Errors(kind, m.Payload));
        });
        Assert.Equal(states.Length, publisher.Messages.Count(m => m.Topic.EndsWith("/pump/state", StringComparison.Ordinal)));
    }

    private static string? Field(JsonElement payload, string name) => payload.GetProperty(name).GetString();

    /// <summary>Runs the daemon until its camera published a result with seq ≥ <paramref name="seq"/>; its results in order.</summary>
    private static async Task<List<JsonElement>> RunUntilSeqAsync(DaemonScenario scenario, string config, long seq, CancellationToken ct)
    {
        await using var probe = await scenario.ProbeAsync("vision/cam/result", ct);
        var host = await scenario.StartHostAsync(config, ct);
        var results = new List<JsonElement>();
        do
        {
            var message = await probe.WaitForAsync(_ => true, TimeSpan.FromSeconds(60), ct);
            results.Add(JsonDocument.Parse(message.Payload).RootElement);
        }
        while (results[^1].GetProperty("seq").GetInt64() < seq);

        await host.StopAsync(ct);
        host.Dispose();
        return results;
    }

    private sealed class CapturingPublisher : IResultPublisher
    {
        public List<(string Topic, string Payload)> Messages { get; } = [];

        public bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain = false)
        {
            Messages.Add((topic, System.Text.Encoding.UTF8.GetString(payload)));
            return true;
        }
    }

    /// <summary>A detection head whose frame had nothing in it (the writer's own work is what is measured).</summary>
    private sealed class NoResultsHead : IVisionHead
    {
        private static readonly JsonEncodedText Detections = JsonEncodedText.Encode("detections");

        public JsonEncodedText Task { get; } = JsonEncodedText.Encode("detection");

        public int Count => 0;

        public (string Label, float Score) Top => ("-", 0f);

        public void Decode(ModelSession session, in SourceMapping mapping, int frameWidth, int frameHeight)
        {
        }

        public void Write(Utf8JsonWriter writer)
        {
            writer.WriteStartArray(Detections);
            writer.WriteEndArray();
        }
    }
}
