using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Every JSON payload a running daemon publishes (real mosquitto, the bundled demo models, a synthetic camera,
/// a simulated machine, a forecaster replaying a CSV that raises and clears its condition, a reset command)
/// matches its JSON Schema in docs/schemas, carries the device and this run's boot id, and the schemas are
/// strict enough to refuse a payload with a field missing or renamed.
/// </summary>
public sealed class PayloadSchemaTests(PayloadSchemaTests.DaemonMessages daemon) : IClassFixture<PayloadSchemaTests.DaemonMessages>
{
    private const string BootIdPattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

    [Fact]
    public void Every_json_payload_of_a_running_daemon_matches_its_schema()
    {
        var failures = new List<string>();
        foreach (var (topic, kind, payload) in daemon.Payloads)
        {
            var errors = SchemaValidator.Errors(kind, payload);
            if (errors.Count > 0)
            {
                failures.Add($"{topic}: {string.Join("; ", errors)}\n  {payload}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));

        // Every kind with a schema was seen, and each sensor task and event shape of the run.
        Assert.Equal(SchemaValidator.Kinds.Order(), daemon.Payloads.Select(p => p.Kind).Distinct().Order());
        string[] tasks = ["sequence_classification", "sequence_forecast"];
        Assert.All(tasks, task => Assert.Contains(daemon.Of("sensor.result"), r => r.GetProperty("task").GetString() == task));
        string[] events = ["raised", "cleared", "reset", "rejected", "evicted"];
        Assert.All(events, name => Assert.Contains(daemon.Of("sensor.event"), e => e.GetProperty("event").GetString() == name));
    }

    [Fact]
    public void A_classification_cameras_results_match_the_schema()
    {
        Requirement.That(TestPaths.Shared is not null, "../shared is not present beside the repository: no classification model.");
        var results = daemon.Payloads.Where(p => p.Kind == "vision.result" && p.Topic.EndsWith("/gallery/result", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(results);
        Assert.All(results, r =>
        {
            Assert.Empty(SchemaValidator.Errors("vision.result", r.Payload));
            Assert.Equal("classification", JsonDocument.Parse(r.Payload).RootElement.GetProperty("task").GetString());
        });
    }

    [Fact]
    public void Every_json_payload_carries_its_schema_id_the_device_and_one_boot_id()
    {
        var payloads = daemon.Payloads.Select(p => (p.Kind, Root: JsonDocument.Parse(p.Payload).RootElement)).ToList();
        Assert.All(payloads, p =>
        {
            Assert.Equal($"edgerunner.{p.Kind}/1", p.Root.GetProperty("schema").GetString());
            Assert.Equal(daemon.DeviceId, p.Root.GetProperty("device").GetString());
        });
        var bootId = Assert.Single(payloads.Select(p => p.Root.GetProperty("boot_id").GetString()).Distinct());
        Assert.Matches(BootIdPattern, bootId);
    }

    [Fact]
    public void A_sensor_results_latency_has_the_shape_of_a_camera_results()
    {
        var sensor = daemon.Of("sensor.result").First().GetProperty("latency_ms");
        var camera = daemon.Of("vision.result").First().GetProperty("latency_ms");
        Assert.Equal(JsonValueKind.Object, sensor.ValueKind);
        Assert.Equal(camera.EnumerateObject().Select(p => p.Name), sensor.EnumerateObject().Select(p => p.Name));
        Assert.All(daemon.Of("sensor.result"), r =>
        {
            Assert.True(r.GetProperty("latency_ms").GetProperty("inference").GetDouble() > 0);
            Assert.True(r.GetProperty("latency_ms").GetProperty("preprocess").GetDouble() >= 0);
        });
    }

    [Fact]
    public void Seq_goes_up_per_camera_and_stream_and_a_streams_starts_at_0_in_a_fresh_boot()
    {
        // No checkpoints (no State:Directory): a stream's seq is 0, 1, 2… A camera's goes up too, with a gap
        // for each frame dropped, skipped or failed (even the first may be dropped when inference is behind).
        foreach (var group in daemon.Payloads.Where(p => p.Kind.EndsWith(".result", StringComparison.Ordinal)).GroupBy(p => p.Topic))
        {
            var seqs = group.Select(p => JsonDocument.Parse(p.Payload).RootElement.GetProperty("seq").GetInt64()).ToList();
            Assert.True(seqs.Zip(seqs.Skip(1)).All(pair => pair.Second > pair.First), $"{group.Key}: seq not increasing: {string.Join(",", seqs)}");
            if (group.Key.Contains("/sensors/", StringComparison.Ordinal))
            {
                Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => (long)i), seqs);
            }
        }
    }

    public static TheoryData<string, string> FieldsToBreak => new()
    {
        { "vision.result", "boot_id" }, { "vision.result", "seq" }, { "vision.result", "device" }, { "vision.result", "schema" },
        { "vision.state", "boot_id" }, { "vision.state", "state" },
        { "sensor.result", "boot_id" }, { "sensor.result", "seq" }, { "sensor.result", "latency_ms" }, { "sensor.result", "window" },
        { "sensor.event", "boot_id" }, { "sensor.event", "event" }, { "sensor.event", "timestamp" },
        { "sensor.state", "boot_id" }, { "sensor.state", "reason" },
        { "health", "boot_id" }, { "health", "cameras" }, { "health", "cpu_percent" },
    };

    [Theory]
    [MemberData(nameof(FieldsToBreak))]
    public void A_schema_refuses_a_real_payload_with_a_field_missing_or_renamed(string kind, string field)
    {
        Assert.All(daemon.Payloads.Where(p => p.Kind == kind), p =>
        {
            Assert.Empty(SchemaValidator.Errors(kind, p.Payload));
            var missing = JsonNode.Parse(p.Payload)!.AsObject();
            var value = missing[field]!.DeepClone();
            Assert.True(missing.Remove(field));
            Assert.NotEmpty(SchemaValidator.Errors(kind, missing.ToJsonString()));
            missing[field + "_renamed"] = value;
            Assert.NotEmpty(SchemaValidator.Errors(kind, missing.ToJsonString()));
        });
    }

    [Fact]
    public void A_schema_refuses_the_old_bare_number_latency_and_a_wrong_type()
    {
        var result = JsonNode.Parse(daemon.Payloads.First(p => p.Kind == "sensor.result").Payload)!.AsObject();
        result["latency_ms"] = 0.21;
        Assert.NotEmpty(SchemaValidator.Errors("sensor.result", result.ToJsonString()));

        var camera = JsonNode.Parse(daemon.Payloads.First(p => p.Kind == "vision.result").Payload)!.AsObject();
        camera["seq"] = "12";
        Assert.NotEmpty(SchemaValidator.Errors("vision.result", camera.ToJsonString()));
    }

    /// <summary>One daemon run whose messages the tests of the class look at.</summary>
    public sealed class DaemonMessages : IAsyncLifetime
    {
        private const int ChunkSamples = 4;

        /// <summary>The device id of the run.</summary>
        public string DeviceId { get; private set; } = string.Empty;

        /// <summary>Every JSON message the daemon published, with its payload kind, in the order received.</summary>
        public IReadOnlyList<(string Topic, string Kind, string Payload)> Payloads { get; private set; } = [];

        /// <summary>The parsed payloads of one kind.</summary>
        public IEnumerable<JsonElement> Of(string kind) =>
            Payloads.Where(p => p.Kind == kind).Select(p => JsonDocument.Parse(p.Payload).RootElement);

        public async ValueTask InitializeAsync()
        {
            var ct = TestContext.Current.CancellationToken;
            await using var scenario = await DaemonScenario.StartAsync("payloads", ct);
            DeviceId = scenario.DeviceId;
            var forecaster = await WriteForecasterAsync(scenario.Folder, ct);

            // Forecast = the last chunk: a jump raises the condition (error 1 ≥ threshold 1), the same chunk again clears it.
            float[] values = [0.5f, 1, 1.5f, 2, 0.5f, 1, 1.5f, 4, 0.5f, 1, 1.5f, 4];
            var csv = Path.Combine(scenario.Folder, "tank.csv");
            await File.WriteAllLinesAsync(csv, ["v", .. values.Select(v => v.ToString(CultureInfo.InvariantCulture))], ct);

            var models = new JsonObject
            {
                ["detector"] = TestConfig.BundledModel("shapes-detector"),
                ["lstm"] = TestConfig.BundledModel("vibration-lstm"),
                ["forecaster"] = new JsonObject { ["Manifest"] = forecaster },
            };
            var cameras = new JsonObject
            {
                ["cam"] = new JsonObject
                {
                    ["Model"] = "detector",
                    ["Fps"] = 20,
                    ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 320, ["Height"] = 240, ["Seed"] = 5 },
                },
            };
            if (TestPaths.Shared is not null)
            {
                // A classification camera needs the reference model in ../shared (its test skips without it).
                models["mobilenet"] = TestConfig.MobileNetModel();
                cameras["gallery"] = new JsonObject
                {
                    ["Model"] = "mobilenet",
                    ["Source"] = new JsonObject { ["Kind"] = "Images", ["Path"] = TestPaths.SharedFile("images/goldfish.jpg"), ["Loop"] = false },
                };
            }

            var ingest = $"plant/{DeviceId}/+/accel";
            var probe = await scenario.ProbeAsync("#", ct);
            var host = await scenario.StartHostAsync(
                new JsonObject
                {
                    ["Metrics"] = new JsonObject { ["HealthIntervalSeconds"] = 1 },
                    ["Models"] = models,
                    ["Cameras"] = cameras,
                    ["Sensors"] = new JsonObject
                    {
                        ["pump"] = TestConfig.SimulatedVibration(3),
                        ["tank"] = new JsonObject { ["Model"] = "forecaster", ["Source"] = TestConfig.CsvReplay(csv, 100, "v") },
                        // One dynamic stream at most, evicted when idle: a second topic is rejected.
                        ["vib"] = new JsonObject
                        {
                            ["Model"] = "lstm",
                            ["Source"] = new JsonObject
                            {
                                ["Kind"] = "Mqtt",
                                ["Topic"] = ingest,
                                ["Columns"] = new JsonArray("ax", "ay", "az"),
                                ["MaxStreams"] = 1,
                                ["IdleTimeoutSeconds"] = 2,
                            },
                        },
                    },
                },
                ct);

            await SeenAsync(probe, m => m.Topic.EndsWith("/tank/state", StringComparison.Ordinal) && m.Payload.Contains("\"ended\"", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
            await SeenAsync(probe, m => m.Topic.EndsWith("/pump/result", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
            await using (var sender = await MqttSender.ConnectAsync(scenario.Port, ct))
            {
                await sender.PublishAsync(scenario.Topic("sensors/pump/reset"), """{"reason":"schema test"}""", ct);
                await SeenAsync(probe, m => m.Topic.EndsWith("/pump/event", StringComparison.Ordinal) && m.Payload.Contains("\"reset\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
                var batch = "[" + string.Join(",", Enumerable.Repeat("[0.01,0.02,1.0]", 100)) + "]";
                await sender.PublishAsync(ingest.Replace("+", "m1", StringComparison.Ordinal), batch, ct);
                await SeenAsync(probe, m => m.Topic.EndsWith("/vib/m1/result", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
                await sender.PublishAsync(ingest.Replace("+", "m2", StringComparison.Ordinal), batch, ct);
                await SeenAsync(probe, m => m.Topic.EndsWith("/vib/m1/event", StringComparison.Ordinal) && m.Payload.Contains("\"evicted\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
            }

            await SeenAsync(probe, m => m.Topic.EndsWith("/cam/result", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
            if (TestPaths.Shared is not null)
            {
                await SeenAsync(probe, m => m.Topic.EndsWith("/gallery/result", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
            }

            // A health message with the camera and the streams in it (the first comes a second after start).
            await SeenAsync(probe, m => m.Topic == scenario.Topic("health") && m.Payload.Contains("\"pump\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
            await host.StopAsync(ct);

            Payloads = [.. probe.Seen
                .Where(m => m.Topic.StartsWith(scenario.Topic(string.Empty), StringComparison.Ordinal) && !m.Topic.EndsWith("/reset", StringComparison.Ordinal))
                .Select(m => (m.Topic, Kind: SchemaValidator.KindOf(m.Topic), m.Payload))
                .Where(m => m.Kind is not null)
                .Select(m => (m.Topic, m.Kind!, m.Payload))];
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        /// <summary>Waits until the probe has received a message matching <paramref name="predicate"/> (at any time since it subscribed).</summary>
        private static async Task SeenAsync(MqttProbe probe, Func<ReceivedMessage, bool> predicate, TimeSpan timeout, CancellationToken ct)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (!probe.Seen.Any(predicate))
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"No matching MQTT message within {timeout}. Seen: {string.Join(" | ", probe.Seen.Select(m => m.Topic))}");
                }

                await Task.Delay(50, ct);
            }
        }

        private static async Task<string> WriteForecasterAsync(string folder, CancellationToken ct)
        {
            // Forecast of the next chunk = this chunk (persistence), channel-major [1, 1, 4].
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
}
