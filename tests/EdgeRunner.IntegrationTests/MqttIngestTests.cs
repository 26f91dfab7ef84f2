using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Sensor streams fed over MQTT, through the daemon in-process against a real mosquitto and the bundled
/// vibration LSTM (200 Hz, 3 channels, 50-sample chunks): one stream per topic of a wildcard, payload
/// formats, malformed payloads, reset commands, the stream cap, and idle eviction with restore.
/// </summary>
public sealed class MqttIngestTests
{
    private const int Chunk = 50;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    /// <summary>A 3-axis accelerometer-like signal (g), deterministic per seed, as decimal text both formats carry identically.</summary>
    private static string[][] Signal(int samples, int seed, int offset = 0)
    {
        var frequency = 20 + (7 * seed);
        var result = new string[samples][];
        for (var i = 0; i < samples; i++)
        {
            var t = (i + offset) / 200.0;
            var ax = (0.3 * Math.Sin(2 * Math.PI * frequency * t)) + (0.05 * Math.Sin(2 * Math.PI * 3.1 * frequency * t));
            var ay = 0.2 * Math.Cos(2 * Math.PI * frequency * t);
            var az = 1 + (0.05 * Math.Sin(2 * Math.PI * 2 * frequency * t));
            result[i] = [F(ax), F(ay), F(az)];
        }

        return result;
    }

    private static string F(double value) => value.ToString("0.#####", CultureInfo.InvariantCulture);

    private static string JsonBatch(IEnumerable<string[]> samples) =>
        "[" + string.Join(",", samples.Select(s => $"{{\"ax\":{s[0]},\"ay\":{s[1]},\"az\":{s[2]}}}")) + "]";

    private static JsonObject MqttStream(string topic, JsonObject? extra = null)
    {
        var source = new JsonObject { ["Kind"] = "Mqtt", ["Topic"] = topic, ["Columns"] = new JsonArray("ax", "ay", "az") };
        foreach (var (key, value) in extra ?? [])
        {
            source[key] = value?.DeepClone();
        }

        return new JsonObject { ["Model"] = "lstm", ["Source"] = source };
    }

    private static string Config(DaemonScenario scenario, JsonObject sensors, string? stateDirectory = null)
    {
        var sections = new JsonObject
        {
            ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
            ["Sensors"] = sensors,
        };
        if (stateDirectory is not null)
        {
            sections["State"] = new JsonObject { ["Directory"] = stateDirectory };
        }

        return scenario.WriteConfig(sections);
    }

    /// <summary>Results of stream <paramref name="stream"/> by seq.</summary>
    private static SortedDictionary<long, JsonElement> Results(MqttProbe probe, string deviceId, string stream) =>
        new(probe.Seen
            .Where(m => m.Topic == $"edgerunner/{deviceId}/sensors/{stream}/result")
            .Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .GroupBy(r => r.GetProperty("seq").GetInt64())
            .ToDictionary(g => g.Key, g => g.First()));

    private static double[] Probabilities(JsonElement result) =>
        [.. result.GetProperty("probabilities").EnumerateObject().Select(p => p.Value.GetDouble())];

    private static double MaxDifference(JsonElement a, JsonElement b) =>
        Probabilities(a).Zip(Probabilities(b), (x, y) => Math.Abs(x - y)).Max();

    /// <summary>Waits until every stream has published results up to seq <c>count - 1</c>.</summary>
    private static async Task WaitForResultsAsync(MqttProbe probe, string deviceId, IReadOnlyDictionary<string, int> counts, CancellationToken ct)
    {
        while (!counts.All(c => Results(probe, deviceId, c.Key).ContainsKey(c.Value - 1)))
        {
            await probe.WaitForAsync(_ => true, Wait, ct);
        }
    }

    private static async Task<JsonElement> WaitForEventAsync(MqttProbe probe, string deviceId, string stream, string eventName, CancellationToken ct)
    {
        var topic = $"edgerunner/{deviceId}/sensors/{stream}/event";
        bool Matches(ReceivedMessage m) => m.Topic == topic && JsonDocument.Parse(m.Payload).RootElement.GetProperty("event").GetString() == eventName;
        var seen = probe.Seen.FirstOrDefault(Matches);
        return JsonDocument.Parse((seen ?? await probe.WaitForAsync(Matches, Wait, ct)).Payload).RootElement;
    }

    /// <summary>Starts the daemon and waits until the broker granted its subscriptions: samples sent earlier would be lost, as for any MQTT subscriber.</summary>
    private static async Task<IHost> StartAsync(DaemonScenario scenario, string config, CancellationToken ct)
    {
        var host = await scenario.StartHostAsync(config, ct);
        var publisher = host.Services.GetRequiredService<EdgeRunner.Service.Mqtt.MqttPublisher>();
        var deadline = DateTime.UtcNow + Wait;
        while (!publisher.AllSubscribed)
        {
            Assert.True(DateTime.UtcNow < deadline, "the daemon did not subscribe");
            await Task.Delay(20, ct);
        }

        return host;
    }

    [Fact]
    public async Task Each_topic_of_a_wildcard_is_its_own_stream_and_numbers_and_json_give_identical_results()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ingest", ct);
        var deviceId = scenario.DeviceId;
        var prefix = $"plant/{deviceId}";
        var config = Config(scenario, new JsonObject { ["vib"] = MqttStream($"{prefix}/+/accel") });
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await StartAsync(scenario, config, ct);
        await using var sender = await MqttSender.ConnectAsync(scenario.Port, ct);

        var machine = Signal(6 * Chunk, seed: 1);
        var other = Signal(6 * Chunk, seed: 2);
        foreach (var sample in machine)
        {
            await sender.PublishAsync($"{prefix}/m1/accel", string.Join(",", sample), ct); // one sample per message, plain numbers
        }

        foreach (var batch in machine.Chunk(25))
        {
            await sender.PublishAsync($"{prefix}/m2/accel", JsonBatch(batch), ct); // the same samples as JSON batches
        }

        foreach (var sample in other)
        {
            await sender.PublishAsync($"{prefix}/m3/accel", $"{{\"az\":{sample[2]},\"ax\":{sample[0]},\"ay\":{sample[1]}}}", ct);
        }

        await WaitForResultsAsync(probe, deviceId, new Dictionary<string, int> { ["vib/m1"] = 6, ["vib/m2"] = 6, ["vib/m3"] = 6 }, ct);

        var m1 = Results(probe, deviceId, "vib/m1");
        var m2 = Results(probe, deviceId, "vib/m2");
        var m3 = Results(probe, deviceId, "vib/m3");
        var streams = host.Services.GetRequiredService<SensorService>().Streams.Select(s => s.StreamId).Order().ToArray();
        Assert.Equal(["vib/m1", "vib/m2", "vib/m3"], streams);
        for (long seq = 0; seq < 6; seq++)
        {
            Assert.Equal("vib/m1", m1[seq].GetProperty("stream").GetString());
            Assert.Equal(seq + 1, m1[seq].GetProperty("state_steps").GetInt64());
            Assert.Equal(Probabilities(m1[seq]), Probabilities(m2[seq])); // same floats, whatever the format
        }

        // Another machine, another state: its outputs are its own.
        Assert.True(Enumerable.Range(0, 6).Max(seq => MaxDifference(m1[seq], m3[seq])) > 1e-3);
        Assert.Equal(0, host.Services.GetRequiredService<SensorService>().IngestRoutes.Single().MalformedPayloads);
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task Malformed_payloads_are_counted_and_the_other_stream_goes_on()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ingest", ct);
        var deviceId = scenario.DeviceId;
        var prefix = $"plant/{deviceId}";
        var config = Config(scenario, new JsonObject { ["vib"] = MqttStream($"{prefix}/+/accel") });
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await StartAsync(scenario, config, ct);
        await using var sender = await MqttSender.ConnectAsync(scenario.Port, ct);
        string[] garbage = ["", "hello", "0.1,0.2", "{\"ax\":1,\"ay\":2}", "[1,2,3", "{\"ax\":\"x\",\"ay\":1,\"az\":1}", "[[1,2,3],[4,5]]"];

        var good = Signal(4 * Chunk, seed: 3);
        foreach (var batch in good.Chunk(Chunk))
        {
            // Garbage first: when m1's last result is out, every message before it has been handled.
            foreach (var payload in garbage)
            {
                await sender.PublishAsync($"{prefix}/bad/accel", payload, ct);
            }

            await sender.PublishAsync($"{prefix}/m1/accel", JsonBatch(batch), ct);
        }

        await WaitForResultsAsync(probe, deviceId, new Dictionary<string, int> { ["vib/m1"] = 4 }, ct);

        var service = host.Services.GetRequiredService<SensorService>();
        Assert.Equal(4 * garbage.Length, service.IngestRoutes.Single().MalformedPayloads);
        Assert.Equal(4, Results(probe, deviceId, "vib/m1").Count);
        Assert.Empty(Results(probe, deviceId, "vib/bad"));
        Assert.Equal(["vib/m1"], service.Streams.Select(s => s.StreamId)); // a malformed payload creates no stream
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task A_reset_command_resets_exactly_that_stream()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ingest", ct);
        var deviceId = scenario.DeviceId;
        var prefix = $"plant/{deviceId}";
        var config = Config(scenario, new JsonObject { ["vib"] = MqttStream($"{prefix}/+/accel") });
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await StartAsync(scenario, config, ct);
        await using var sender = await MqttSender.ConnectAsync(scenario.Port, ct);
        var before = Signal(4 * Chunk, seed: 4);
        var after = Signal(4 * Chunk, seed: 4, offset: 4 * Chunk);

        foreach (var stream in new[] { "m1", "m2" })
        {
            await sender.PublishAsync($"{prefix}/{stream}/accel", JsonBatch(before), ct);
        }

        // Half a chunk more on m1: the reset must drop this pending partial chunk too.
        await sender.PublishAsync($"{prefix}/m1/accel", JsonBatch(after.Take(Chunk / 2)), ct);
        await sender.PublishAsync($"edgerunner/{deviceId}/sensors/vib/m1/reset", "{\"reason\":\"bearing replaced\"}", ct);
        await sender.PublishAsync($"edgerunner/{deviceId}/sensors/nope/reset", string.Empty, ct);
        await sender.PublishAsync($"edgerunner/{deviceId}/sensors/vib/m2/reset", "not json", ct);
        foreach (var stream in new[] { "m1", "m2", "fresh" })
        {
            await sender.PublishAsync($"{prefix}/{stream}/accel", JsonBatch(after), ct);
        }

        var acknowledgement = await WaitForEventAsync(probe, deviceId, "vib/m1", "reset", ct);
        await WaitForResultsAsync(probe, deviceId, new Dictionary<string, int> { ["vib/m1"] = 8, ["vib/m2"] = 8, ["vib/fresh"] = 4 }, ct);

        Assert.Equal("bearing replaced", acknowledgement.GetProperty("reason").GetString());
        Assert.Equal(1, acknowledgement.GetProperty("state_resets").GetInt64());
        var m1 = Results(probe, deviceId, "vib/m1");
        var m2 = Results(probe, deviceId, "vib/m2");
        var fresh = Results(probe, deviceId, "vib/fresh");
        for (var i = 0; i < 4; i++)
        {
            // After the reset m1 is a fresh stream on the same samples; m2 carries its state on.
            Assert.Equal(Probabilities(fresh[i]), Probabilities(m1[4 + i]));
            Assert.Equal(i + 1, m1[4 + i].GetProperty("state_steps").GetInt64());
            Assert.Equal(1, m1[4 + i].GetProperty("state_resets").GetInt64());
            Assert.Equal(4 + i + 1, m2[4 + i].GetProperty("state_steps").GetInt64());
            Assert.Equal(0, m2[4 + i].GetProperty("state_resets").GetInt64());
        }

        for (var i = 0; i < 4; i++)
        {
            // Before the reset both saw the same samples from zero: the same outputs.
            Assert.Equal(Probabilities(m1[i]), Probabilities(m2[i]));
        }

        Assert.True(Enumerable.Range(0, 4).Max(i => MaxDifference(m2[4 + i], fresh[i])) > 1e-4, "m2 kept its state");
        var service = host.Services.GetRequiredService<SensorService>();
        Assert.Equal(2, service.ResetsRejected); // unknown stream, unreadable payload
        Assert.Equal(1, service.ResetsAccepted);
        Assert.DoesNotContain(probe.Seen, m => m.Topic.EndsWith("/vib/m2/event", StringComparison.Ordinal));
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task A_stream_beyond_the_cap_is_rejected_once_and_the_others_are_unaffected()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ingest", ct);
        var deviceId = scenario.DeviceId;
        var prefix = $"plant/{deviceId}";
        var config = Config(scenario, new JsonObject { ["vib"] = MqttStream($"{prefix}/+/accel", new JsonObject { ["MaxStreams"] = 2 }) });
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await StartAsync(scenario, config, ct);
        await using var sender = await MqttSender.ConnectAsync(scenario.Port, ct);
        var samples = Signal(4 * Chunk, seed: 5);

        var batches = samples.Chunk(Chunk).ToArray();
        for (var i = 0; i < batches.Length; i++)
        {
            // m1 and m2 come first and take the two slots; later m3 goes first, so all its messages are handled before m1's and m2's last results.
            foreach (var stream in i == 0 ? ["m1", "m2", "m3"] : new[] { "m3", "m1", "m2" })
            {
                await sender.PublishAsync($"{prefix}/{stream}/accel", JsonBatch(batches[i]), ct);
            }
        }

        var rejection = await WaitForEventAsync(probe, deviceId, "vib/m3", "rejected", ct);
        await WaitForResultsAsync(probe, deviceId, new Dictionary<string, int> { ["vib/m1"] = 4, ["vib/m2"] = 4 }, ct);

        Assert.Equal($"{prefix}/m3/accel", rejection.GetProperty("topic").GetString());
        Assert.Contains("MaxStreams (2)", rejection.GetProperty("reason").GetString(), StringComparison.Ordinal);
        var route = host.Services.GetRequiredService<SensorService>().IngestRoutes.Single();
        Assert.Equal(1, route.StreamsRejected);
        Assert.Equal(4, route.MessagesRejected);
        Assert.Single(probe.Seen, m => m.Topic.EndsWith("/vib/m3/event", StringComparison.Ordinal)); // published once
        Assert.Empty(Results(probe, deviceId, "vib/m3"));
        var m1 = Results(probe, deviceId, "vib/m1");
        var m2 = Results(probe, deviceId, "vib/m2");
        for (long seq = 0; seq < 4; seq++)
        {
            Assert.Equal(Probabilities(m1[seq]), Probabilities(m2[seq]));
        }

        await host.StopAsync(ct);
    }

    [Fact]
    public async Task An_idle_stream_is_evicted_and_comes_back_with_its_state()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ingest", ct);
        var state = scenario.Folder;
        var deviceId = scenario.DeviceId;
        var prefix = $"plant/{deviceId}";
        var config = Config(
            scenario,
            new JsonObject
            {
                ["evicting"] = MqttStream($"{prefix}/e/+", new JsonObject { ["IdleTimeoutSeconds"] = 0.3 }),
                ["steady"] = MqttStream($"{prefix}/s/+", new JsonObject { ["IdleTimeoutSeconds"] = 0 }),
            },
            state);
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await StartAsync(scenario, config, ct);
        await using var sender = await MqttSender.ConnectAsync(scenario.Port, ct);
        var samples = Signal(8 * Chunk, seed: 6);

        await sender.PublishAsync($"{prefix}/e/m1", JsonBatch(samples.Take(4 * Chunk)), ct);
        await sender.PublishAsync($"{prefix}/s/m1", JsonBatch(samples.Take(4 * Chunk)), ct);
        var eviction = await WaitForEventAsync(probe, deviceId, "evicting/m1", "evicted", ct);

        Assert.True(eviction.GetProperty("checkpointed").GetBoolean());
        Assert.True(File.Exists(Path.Combine(state, "evicting%2Fm1.state")), "the evicted stream's state is on disk");
        var service = host.Services.GetRequiredService<SensorService>();
        Assert.DoesNotContain(service.Streams, s => s.StreamId == "evicting/m1");
        Assert.Equal(0, service.IngestRoutes.Single(r => r.ConfigId == "evicting").ActiveStreams);

        await sender.PublishAsync($"{prefix}/e/m1", JsonBatch(samples.Skip(4 * Chunk)), ct);
        await sender.PublishAsync($"{prefix}/s/m1", JsonBatch(samples.Skip(4 * Chunk)), ct);
        await WaitForResultsAsync(probe, deviceId, new Dictionary<string, int> { ["evicting/m1"] = 8, ["steady/m1"] = 8 }, ct);

        var evicted = Results(probe, deviceId, "evicting/m1");
        var uninterrupted = Results(probe, deviceId, "steady/m1");
        Assert.Equal(8, evicted.Count); // no step repeated or skipped across the eviction
        for (long seq = 0; seq < 8; seq++)
        {
            Assert.Equal(seq + 1, evicted[seq].GetProperty("state_steps").GetInt64());
            var difference = MaxDifference(evicted[seq], uninterrupted[seq]);
            Assert.True(difference <= 1e-5, $"step {seq}: max |Δ| {difference}");
        }

        await host.StopAsync(ct);
    }

    [Fact]
    public async Task A_configured_topic_is_one_stream_and_resets_reach_mqtt_and_simulated_streams()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ingest", ct);
        var deviceId = scenario.DeviceId;
        var config = Config(scenario, new JsonObject
        {
            ["tank"] = MqttStream($"plant/{deviceId}/tank"),
            ["pump"] = TestConfig.SimulatedVibration(7),
        });
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await StartAsync(scenario, config, ct);
        await using var sender = await MqttSender.ConnectAsync(scenario.Port, ct);
        var samples = Signal(3 * Chunk, seed: 8);

        await sender.PublishAsync($"plant/{deviceId}/tank", JsonBatch(samples.Take(2 * Chunk)), ct);
        await WaitForResultsAsync(probe, deviceId, new Dictionary<string, int> { ["tank"] = 2 }, ct);
        await sender.PublishAsync($"edgerunner/{deviceId}/sensors/pump/reset", string.Empty, ct);
        await sender.PublishAsync($"edgerunner/{deviceId}/sensors/tank/reset", "{\"reason\":\"refilled\"}", ct);
        await sender.PublishAsync($"plant/{deviceId}/tank", JsonBatch(samples.Skip(2 * Chunk)), ct);

        var pumpReset = await WaitForEventAsync(probe, deviceId, "pump", "reset", ct);
        var tankReset = await WaitForEventAsync(probe, deviceId, "tank", "reset", ct);
        await WaitForResultsAsync(probe, deviceId, new Dictionary<string, int> { ["tank"] = 3 }, ct);
        var pumpAfterReset = await probe.WaitForAsync(
            m => m.Topic.EndsWith("/sensors/pump/result", StringComparison.Ordinal) && JsonDocument.Parse(m.Payload).RootElement.GetProperty("state_resets").GetInt64() == 1,
            Wait,
            ct);

        Assert.Equal("command", pumpReset.GetProperty("reason").GetString());
        Assert.Equal("refilled", tankReset.GetProperty("reason").GetString());
        var tank = Results(probe, deviceId, "tank");
        Assert.Equal([1L, 2L, 1L], tank.Values.Select(r => r.GetProperty("state_steps").GetInt64()));
        Assert.Equal(1, tank[2].GetProperty("state_resets").GetInt64());
        // The first pump step after the reset starts from a zero state.
        Assert.Equal(1, JsonDocument.Parse(pumpAfterReset.Payload).RootElement.GetProperty("state_steps").GetInt64());
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task Subscriptions_are_made_again_after_the_broker_restarts()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ingest", ct, persistentBroker: true);
        var deviceId = scenario.DeviceId;
        var prefix = $"plant/{deviceId}";
        var config = scenario.WriteConfig(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
                ["Sensors"] = new JsonObject { ["vib"] = MqttStream($"{prefix}/+/accel") },
            },
            mqtt: new JsonObject { ["ReconnectMaxDelaySeconds"] = 1 });
        var samples = Signal(4 * Chunk, seed: 9);
        using var host = await StartAsync(scenario, config, ct);
        var publisher = host.Services.GetRequiredService<EdgeRunner.Service.Mqtt.MqttPublisher>();
        await using (var probe = await scenario.ProbeAsync("sensors/#", ct))
        await using (var sender = await MqttSender.ConnectAsync(scenario.Port, ct))
        {
            await sender.PublishAsync($"{prefix}/m1/accel", JsonBatch(samples.Take(2 * Chunk)), ct);
            await WaitForResultsAsync(probe, deviceId, new Dictionary<string, int> { ["vib/m1"] = 2 }, ct);
        }

        await scenario.RestartBrokerAsync(ct);
        var deadline = DateTime.UtcNow + Wait;
        while (!(publisher.Connects >= 2 && publisher.AllSubscribed))
        {
            Assert.True(DateTime.UtcNow < deadline, "the daemon did not reconnect and subscribe again");
            await Task.Delay(20, ct);
        }

        var again = await scenario.ProbeAsync("sensors/#", ct);
        await using var againSender = await MqttSender.ConnectAsync(scenario.Port, ct);
        await againSender.PublishAsync($"{prefix}/m1/accel", JsonBatch(samples.Skip(2 * Chunk)), ct);
        await WaitForResultsAsync(again, deviceId, new Dictionary<string, int> { ["vib/m1"] = 4 }, ct);

        var m1 = Results(again, deviceId, "vib/m1");
        Assert.Equal(4, m1[3].GetProperty("state_steps").GetInt64()); // the same stream, its state carried over the outage
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task A_stream_that_cannot_be_created_frees_its_slot_and_the_service_still_disposes()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ingest", ct);
        var deviceId = scenario.DeviceId;
        var prefix = $"plant/{deviceId}";
        using var temp = new TempFolder();
        // A state folder below a plain file cannot be created: every dynamic stream fails at its first
        // checkpoint set-up (IOException), independently of what a checkpoint file holds.
        var blocker = Path.Combine(temp.Path, "a-file");
        await File.WriteAllTextAsync(blocker, "not a folder", ct);
        var config = Config(
            scenario,
            new JsonObject { ["vib"] = MqttStream($"{prefix}/+/accel", new JsonObject { ["MaxStreams"] = 1 }) },
            stateDirectory: Path.Combine(blocker, "state"));
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await StartAsync(scenario, config, ct);
        await using var sender = await MqttSender.ConnectAsync(scenario.Port, ct);
        var service = host.Services.GetRequiredService<SensorService>();

        await sender.PublishAsync($"{prefix}/m1/accel", JsonBatch(Signal(Chunk, seed: 5)), ct);
        var m1 = await WaitForEventAsync(probe, deviceId, "vib/m1", "failed", ct);
        // MaxStreams is 1: only a freed slot lets m2 in (it fails the same way) instead of being rejected.
        await sender.PublishAsync($"{prefix}/m2/accel", JsonBatch(Signal(Chunk, seed: 6)), ct);
        var m2 = await WaitForEventAsync(probe, deviceId, "vib/m2", "failed", ct);

        Assert.Equal($"{prefix}/m1/accel", m1.GetProperty("topic").GetString());
        Assert.Equal($"{prefix}/m2/accel", m2.GetProperty("topic").GetString());
        var route = service.IngestRoutes.Single();
        Assert.Equal(0, route.ActiveStreams);
        Assert.Equal(2, route.StreamsFailed);
        Assert.Equal(0, route.StreamsRejected);
        Assert.Empty(service.Streams);
        Assert.Empty(Results(probe, deviceId, "vib/m1"));
        await host.StopAsync(ct);
        // The lifecycle tasks ended normally: disposing (models and batchers included) does not throw.
        await service.DisposeAsync();
    }

    [Fact]
    public async Task A_wildcard_route_whose_model_does_not_fit_fails_at_startup()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ingest", ct);
        using var temp = new TempFolder();
        // The bundled LSTM with 3 labels for its 4 outputs: a configured stream fails at startup for this.
        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(BundledModels.ManifestPath("vibration-lstm"), ct))!.AsObject();
        manifest["file"] = Path.Combine(BundledModels.Folder, "vibration-lstm", manifest["file"]!.GetValue<string>());
        manifest["labels"] = new JsonArray("normal", "imbalance", "bearing_wear");
        var manifestPath = Path.Combine(temp.Path, "model.json");
        await File.WriteAllTextAsync(manifestPath, manifest.ToJsonString(), ct);
        var config = scenario.WriteConfig(new JsonObject
        {
            ["Models"] = new JsonObject { ["lstm"] = new JsonObject { ["Manifest"] = manifestPath } },
            ["Sensors"] = new JsonObject { ["vib"] = MqttStream("plant/+/accel") },
        });

        var ex = await Assert.ThrowsAsync<EdgeRunner.Service.StartupException>(() => scenario.StartHostAsync(config, ct));

        Assert.Contains("3 labels but output 'probs' has 4 values per step", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_ingest_topic_under_the_daemons_command_topics_fails_at_startup()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ingest", ct);
        var deviceId = scenario.DeviceId;
        // With a wildcard route the daemon subscribes to edgerunner/{device}/sensors/#: every sample
        // published here would arrive twice (one copy per matching subscription).
        var config = Config(scenario, new JsonObject { ["vib"] = MqttStream($"edgerunner/{deviceId}/sensors/+/accel") });

        var ex = await Assert.ThrowsAsync<EdgeRunner.Service.StartupException>(() => scenario.StartHostAsync(config, ct));

        Assert.Equal(
            $"Sensors:vib:Source:Topic: overlaps the daemon's command topics 'edgerunner/{deviceId}/sensors/#' (both match 'edgerunner/{deviceId}/sensors/x/accel'); publish samples outside edgerunner/{deviceId}/sensors/",
            ex.Message);
    }
}
