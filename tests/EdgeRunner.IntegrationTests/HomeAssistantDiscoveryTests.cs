using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.HomeAssistant;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Home Assistant MQTT discovery against a real mosquitto and the daemon in-process: retained configs for a detection
/// camera (sensor and camera entity), a classifying stream (class and score) and a score stream (score and anomaly
/// binary sensor), whose topics are ones the daemon really publishes; republished on Home Assistant's birth message;
/// a camera taken out of the configuration is removed with an empty retained config at the next start.
/// </summary>
public sealed class HomeAssistantDiscoveryTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Discovery_configs_are_retained_point_at_real_topics_come_again_on_birth_and_go_when_a_camera_leaves()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ha", ct);
        var node = $"edgerunner_{scenario.DeviceId}";
        var state = Path.Combine(scenario.Folder, "state");
        var forecaster = await WriteForecasterAsync(scenario.Folder, ct);
        var csv = Path.Combine(scenario.Folder, "tank.csv");
        await File.WriteAllLinesAsync(csv, ["v", .. Enumerable.Range(0, 400).Select(i => (i % 8 == 7 ? "4" : "0.5"))], ct);

        JsonObject Config(bool withCamera)
        {
            var config = new JsonObject
            {
                ["Models"] = new JsonObject
                {
                    ["detector"] = TestConfig.BundledModel("shapes-detector"),
                    ["lstm"] = TestConfig.BundledModel("vibration-lstm"),
                    ["forecaster"] = new JsonObject { ["Manifest"] = forecaster },
                },
                ["Sensors"] = new JsonObject
                {
                    ["pump"] = TestConfig.SimulatedVibration(3),
                    ["tank"] = new JsonObject { ["Model"] = "forecaster", ["Source"] = TestConfig.CsvReplay(csv, 100, "v") },
                },
                ["State"] = new JsonObject { ["Directory"] = state },
            };
            if (withCamera)
            {
                config["Cameras"] = new JsonObject
                {
                    ["cam"] = new JsonObject
                    {
                        ["Model"] = "detector",
                        ["Fps"] = 10,
                        ["Snapshots"] = new JsonObject { ["Enabled"] = true, ["MinIntervalSeconds"] = 0.1 },
                        ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 320, ["Height"] = 240, ["Seed"] = 5 },
                    },
                };
            }

            return config;
        }

        var mqtt = new JsonObject { ["HomeAssistant"] = new JsonObject { ["Enabled"] = true } };
        var discovery = await scenario.ProbeTopicAsync("homeassistant/#", ct);
        var device = await scenario.ProbeAsync("#", ct);
        var host = await scenario.StartHostAsync(scenario.WriteConfig(Config(withCamera: true), mqtt), ct);
        var service = host.Services.GetRequiredService<HomeAssistantDiscovery>();

        string[] expected =
        [
            $"homeassistant/sensor/{node}/cam_detections/config",
            $"homeassistant/camera/{node}/cam_snapshot/config",
            $"homeassistant/sensor/{node}/pump_class/config",
            $"homeassistant/sensor/{node}/pump_score/config",
            $"homeassistant/sensor/{node}/tank_score/config",
            $"homeassistant/binary_sensor/{node}/tank_anomaly/config",
        ];
        string[] cameraTopics = [.. expected.Take(2)];
        string[] streamTopics = [.. expected.Skip(2)];
        Assert.Equal(expected.Order(), service.Configs.Select(c => c.Topic).Order());
        foreach (var topic in expected)
        {
            await SeenAsync(discovery, m => m.Topic == topic, Wait, ct);
        }

        // A subscriber arriving later (Home Assistant starting) gets every config retained.
        var late = await scenario.ProbeTopicAsync($"homeassistant/+/{node}/+/config", ct);
        var configs = new Dictionary<string, JsonElement>();
        foreach (var topic in expected)
        {
            var message = await SeenAsync(late, m => m.Topic == topic, Wait, ct);
            Assert.True(message.Retain, topic);
            configs[topic] = JsonDocument.Parse(message.Payload).RootElement;
        }

        var status = scenario.Topic("status");
        var referenced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (topic, config) in configs)
        {
            Assert.StartsWith($"{node}_", config.GetProperty("unique_id").GetString(), StringComparison.Ordinal);
            Assert.False(string.IsNullOrEmpty(config.GetProperty("name").GetString()));
            Assert.Equal(status, config.GetProperty("availability_topic").GetString());
            Assert.Equal("online", config.GetProperty("payload_available").GetString());
            Assert.Equal("offline", config.GetProperty("payload_not_available").GetString());
            var block = config.GetProperty("device");
            Assert.Equal([node], block.GetProperty("identifiers").EnumerateArray().Select(i => i.GetString()));
            Assert.Contains(scenario.DeviceId, block.GetProperty("name").GetString(), StringComparison.Ordinal);
            Assert.False(string.IsNullOrEmpty(block.GetProperty("model").GetString()));
            Assert.False(string.IsNullOrEmpty(block.GetProperty("sw_version").GetString()));
            foreach (var key in new[] { "state_topic", "json_attributes_topic", "topic" })
            {
                if (config.TryGetProperty(key, out var value))
                {
                    referenced.Add(value.GetString()!);
                }
            }

            if (topic.Contains("/sensor/", StringComparison.Ordinal) || topic.Contains("/binary_sensor/", StringComparison.Ordinal))
            {
                Assert.StartsWith("{{", config.GetProperty("value_template").GetString(), StringComparison.Ordinal);
            }
        }

        Assert.Equal(configs.Values.Select(c => c.GetProperty("unique_id").GetString()).Distinct().Count(), configs.Count);
        Assert.Equal(
            new[] { "vision/cam/result", "vision/cam/snapshot", "sensors/pump/result", "sensors/tank/result" }.Select(scenario.Topic).Order(),
            referenced.Order());

        // Every topic the configs name is one the daemon publishes, and the availability topic says online.
        foreach (var topic in referenced.Append(status))
        {
            await SeenAsync(device, m => m.Topic == topic, Wait, ct);
        }

        Assert.Contains(device.Seen, m => m.Topic == status && m.Payload == "online");
        Assert.Contains(device.Seen, m => m.Topic == scenario.Topic("sensors/tank/result") && m.Payload.Contains("\"active\"", StringComparison.Ordinal));

        // Home Assistant's birth message: every config is published again.
        var before = expected.ToDictionary(t => t, t => discovery.Seen.Count(m => m.Topic == t));
        await using (var homeAssistant = await MqttSender.ConnectAsync(scenario.Port, ct))
        {
            await homeAssistant.PublishAsync("homeassistant/status", "online", ct);
        }

        foreach (var topic in expected)
        {
            var seen = before[topic];
            await WaitUntilAsync(() => discovery.Seen.Count(m => m.Topic == topic) > seen, ct);
        }

        Assert.Equal(1, service.BirthsSeen);
        await host.StopAsync(ct);
        Assert.True(File.Exists(Path.Combine(state, HomeAssistantDiscovery.RecordFileName)));

        // The camera leaves the configuration: its two configs are emptied (retained), the streams' stay.
        var afterStop = discovery.Seen.Count;
        var second = await scenario.StartHostAsync(scenario.WriteConfig(Config(withCamera: false), mqtt), ct);
        foreach (var topic in cameraTopics)
        {
            var removal = await SeenAsync(discovery, m => m.Topic == topic && m.PayloadBytes.Length == 0, Wait, ct);
            Assert.True(removal.Retain, topic);
        }

        await WaitUntilAsync(() => discovery.Seen.Skip(afterStop).Count(m => streamTopics.Contains(m.Topic) && m.Payload.Length > 0) >= 4, ct);
        await second.StopAsync(ct);

        // Home Assistant starting now finds the streams' configs and none of the camera's.
        var afterRemoval = await scenario.ProbeTopicAsync($"homeassistant/+/{node}/+/config", ct);
        foreach (var topic in streamTopics)
        {
            await SeenAsync(afterRemoval, m => m.Topic == topic && m.Retain, Wait, ct);
        }

        Assert.DoesNotContain(afterRemoval.Seen, m => cameraTopics.Contains(m.Topic));
    }

    [Fact]
    public async Task Discovery_is_off_by_default_and_a_bad_prefix_stops_startup_naming_the_key()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ha-off", ct);
        var host = await scenario.StartHostAsync(new JsonObject { ["Sensors"] = new JsonObject { ["pump"] = TestConfig.SimulatedVibration(3, "lstm") }, ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") } }, ct);
        Assert.Empty(host.Services.GetRequiredService<HomeAssistantDiscovery>().Configs);
        await host.StopAsync(ct);

        var bad = scenario.WriteConfig(new JsonObject(), new JsonObject { ["HomeAssistant"] = new JsonObject { ["Enabled"] = true, ["DiscoveryPrefix"] = "home/#" } });
        await using var daemon = scenario.StartProcess(["--config", bad]);
        Assert.Equal(78, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));
        Assert.Contains("Mqtt:HomeAssistant:DiscoveryPrefix: must be a non-empty topic without wildcards", daemon.Stderr, StringComparison.Ordinal);
    }

    /// <summary>The first message <paramref name="probe"/> has received (at any time since it subscribed) that matches <paramref name="predicate"/>.</summary>
    private static async Task<ReceivedMessage> SeenAsync(MqttProbe probe, Func<ReceivedMessage, bool> predicate, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        while (true)
        {
            if (probe.Seen.FirstOrDefault(predicate) is { } message)
            {
                return message;
            }

            try
            {
                await Task.Delay(50, deadline.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"No matching MQTT message within {timeout}. Seen: {string.Join(" | ", probe.Seen.Select(m => $"{m.Topic} ({m.PayloadBytes.Length} bytes)"))}");
            }
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Wait);
        while (!condition())
        {
            await Task.Delay(50, timeout.Token);
        }
    }

    // A score model: forecast of the next chunk = this chunk (persistence); an error of 1 or more raises the condition.
    private static async Task<string> WriteForecasterAsync(string folder, CancellationToken ct)
    {
        const int ChunkSamples = 4;
        var (_, manifest) = await TestManifests.WriteModelAsync(
            folder,
            "persistence",
            OnnxProto.WriteModel(
                8,
                [(string.Empty, 17)],
                [new OnnxNode("Add", string.Empty, ["x", "zero"], ["forecast"], [])],
                [new OnnxTensor("zero", OnnxTensor.Float, [], [0f], [])],
                [("x", OnnxTensor.Float, ["batch", 1, ChunkSamples])],
                [("forecast", OnnxTensor.Float, ["batch", 1, ChunkSamples])]),
            new JsonObject
            {
                ["task"] = "sequence_forecast",
                ["state"] = new JsonArray(),
                ["stream"] = new JsonObject { ["input"] = "x", ["sample_rate_hz"] = 100, ["channels"] = new JsonArray("v"), ["chunk_samples"] = ChunkSamples },
                ["postprocess"] = new JsonObject { ["kind"] = "sequence_forecast", ["output"] = "forecast", ["threshold"] = 1.0 },
            },
            ct);
        return manifest;
    }
}
