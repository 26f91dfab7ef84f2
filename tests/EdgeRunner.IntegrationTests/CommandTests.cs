using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service;
using EdgeRunner.Service.Catalog;
using EdgeRunner.Service.Commands;
using EdgeRunner.Service.Diagnostics;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;
using Json.Schema;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet;
using MQTTnet.Formatter;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// MQTT commands (<c>{prefix}/{device}/cmd/{name}</c>, <c>Mqtt:Commands</c>) end to end: a real mosquitto, the daemon
/// in-process on the bundled demo models, and an MQTT 5 client that sends requests with a response topic and
/// correlation data and reads the replies, each validated against docs/schemas/replies/command.reply.schema.json.
/// </summary>
public sealed class CommandTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private static JsonObject Lstm() => TestConfig.BundledModel("vibration-lstm");

    [Fact]
    public async Task Reset_is_answered_with_the_correlation_data_and_refusals_are_answered_counted_and_change_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("cmd", ct);
        await using var events = await scenario.ProbeAsync("sensors/m1/event", ct);
        var config = scenario.WriteConfig(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = Lstm() },
                ["Sensors"] = new JsonObject { ["m1"] = TestConfig.SimulatedVibration(11) },
            },
            new JsonObject { ["Commands"] = new JsonObject { ["Allow"] = new JsonArray("reset"), ["MaxPayloadBytes"] = 256 } });
        var host = await scenario.StartHostAsync(config, ct);
        var commands = host.Services.GetRequiredService<CommandService>();
        var sensors = host.Services.GetRequiredService<SensorService>();
        using var listener = ListenToCommandCounter(host.Services.GetRequiredService<EdgeRunnerMetrics>().Meter, out var measured);
        await using var client = await CommandClient.ConnectAsync(scenario.Port, scenario.Topic("reply/cmd-test"), ct);
        await WaitUntilSubscribedAsync(host, ct);

        // A valid reset: the reply carries the correlation data, the stream acknowledges on its event topic.
        await client.SendAsync(scenario.Topic("cmd/reset"), """{"stream":"m1","reason":"operator"}""", "c-1", ct);
        var ok = await client.WaitReplyAsync("c-1", ct);
        Assert.True(ok.Root.GetProperty("ok").GetBoolean(), ok.Payload);
        Assert.Equal("reset", ok.Root.GetProperty("command").GetString());
        Assert.Equal("m1", ok.Root.GetProperty("stream").GetString());
        Assert.Equal(scenario.DeviceId, ok.Root.GetProperty("device").GetString());
        var acknowledged = await events.WaitForAsync(m => m.Payload.Contains("\"reset\"", StringComparison.Ordinal) && m.Payload.Contains("operator", StringComparison.Ordinal), Wait, ct);
        Assert.False(acknowledged.Retain);

        // A stream that does not exist: answered, not done.
        await client.SendAsync(scenario.Topic("cmd/reset"), """{"stream":"nope"}""", "c-2", ct);
        AssertRefused(await client.WaitReplyAsync("c-2", ct), "reset", "failed", "no sensor stream 'nope'");

        // Unknown, not allowed, oversized, malformed (not JSON, not an object, a field of the wrong type).
        await client.SendAsync(scenario.Topic("cmd/explode"), "{}", "c-3", ct);
        AssertRefused(await client.WaitReplyAsync("c-3", ct), "explode", "unknown", "unknown command 'explode'");
        await client.SendAsync(scenario.Topic("cmd/reload"), "{}", "c-4", ct);
        AssertRefused(await client.WaitReplyAsync("c-4", ct), "reload", "not-allowed", "Mqtt:Commands:Allow");
        await client.SendAsync(scenario.Topic("cmd/reset"), $$"""{"stream":"m1","reason":"{{new string('x', 300)}}"}""", "c-5", ct);
        AssertRefused(await client.WaitReplyAsync("c-5", ct), "reset", "oversized", "Mqtt:Commands:MaxPayloadBytes");
        await client.SendAsync(scenario.Topic("cmd/reset"), "{\"stream\":", "c-6", ct);
        AssertRefused(await client.WaitReplyAsync("c-6", ct), "reset", "malformed", "not JSON");
        await client.SendAsync(scenario.Topic("cmd/reset"), "[1,2]", "c-7", ct);
        AssertRefused(await client.WaitReplyAsync("c-7", ct), "reset", "malformed", "JSON object");
        await client.SendAsync(scenario.Topic("cmd/reset"), """{"stream":7}""", "c-8", ct);
        AssertRefused(await client.WaitReplyAsync("c-8", ct), "reset", "failed", "\"stream\" must be a non-empty string");

        // No response topic: still run (the stream acknowledges) and counted, with no reply to anyone.
        await client.SendAsync(scenario.Topic("cmd/reset"), """{"stream":"m1","reason":"silent"}""", correlation: null, ct, withResponseTopic: false);
        await events.WaitForAsync(m => m.Payload.Contains("\"reset\"", StringComparison.Ordinal) && m.Payload.Contains("silent", StringComparison.Ordinal), Wait, ct);

        // Today's reset topic keeps working beside the command.
        var legacyBefore = sensors.ResetsAccepted;
        await client.SendAsync(scenario.Topic("sensors/m1/reset"), """{"reason":"legacy"}""", correlation: null, ct, withResponseTopic: false);
        await events.WaitForAsync(m => m.Payload.Contains("\"reset\"", StringComparison.Ordinal) && m.Payload.Contains("legacy", StringComparison.Ordinal), Wait, ct);
        Assert.Equal(legacyBefore + 1, sensors.ResetsAccepted);

        Assert.Equal(9, commands.Received);
        Assert.Equal(2, commands.Count("reset", "ok"));
        Assert.Equal(2, commands.Count("reset", "failed"));
        Assert.Equal(1, commands.Count(CommandService.UnknownCommandTag, "unknown"));
        Assert.Equal(1, commands.Count("reload", "not-allowed"));
        Assert.Equal(1, commands.Count("reset", "oversized"));
        Assert.Equal(2, commands.Count("reset", "malformed"));
        // Every request with a response topic was answered, once; the one without got none.
        Assert.Equal(8, commands.Replies);
        Assert.Equal(8, client.Replies.Count);
        Assert.All(client.Replies, r => Assert.False(r.Retain));
        // The meter counts the same, by command and outcome.
        Assert.Equal(2, measured.Where(m => m.Command == "reset" && m.Outcome == "ok").Sum(m => m.Value));
        Assert.Equal(1, measured.Where(m => m.Command == "unknown" && m.Outcome == "unknown").Sum(m => m.Value));
        Assert.Equal(9, measured.Sum(m => m.Value));
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task Camera_commands_take_a_snapshot_restart_the_source_and_set_the_score_threshold()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("cmdcam", ct);
        await using var results = await scenario.ProbeAsync("vision/cam/result", ct);
        await using var states = await scenario.ProbeAsync("vision/cam/state", ct);
        await using var snapshots = await scenario.ProbeAsync("vision/cam/snapshot", ct);
        var config = scenario.WriteConfig(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["detector"] = TestConfig.BundledModel("shapes-detector"), ["lstm"] = Lstm() },
                ["Cameras"] = new JsonObject
                {
                    ["cam"] = new JsonObject
                    {
                        ["Model"] = "detector",
                        ["Fps"] = 10,
                        ["DetectFps"] = 4,
                        // Only the first label change publishes on its own within the test: a second snapshot is the command's.
                        ["Snapshots"] = new JsonObject { ["Enabled"] = true, ["MaxWidth"] = 160, ["MinIntervalSeconds"] = 86400 },
                        ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 320, ["Height"] = 240, ["Seed"] = 7 },
                    },
                },
                ["Sensors"] = new JsonObject { ["m1"] = TestConfig.SimulatedVibration(12) },
            },
            new JsonObject { ["Commands"] = new JsonObject { ["Allow"] = new JsonArray("snapshot", "restart-camera", "set-threshold") } });
        var host = await scenario.StartHostAsync(config, ct);
        var pipeline = Assert.Single(host.Services.GetRequiredService<VisionService>().Pipelines);
        await using var client = await CommandClient.ConnectAsync(scenario.Port, scenario.Topic("reply/cam-test"), ct);
        await WaitUntilSubscribedAsync(host, ct);

        // Snapshot: after the first (a label appeared), the next one within the day-long interval is the command's.
        await snapshots.WaitForAsync(_ => true, Wait, ct);
        await client.SendAsync(scenario.Topic("cmd/snapshot"), """{"camera":"cam"}""", "s-1", ct);
        var snapshotReply = await client.WaitReplyAsync("s-1", ct);
        Assert.True(snapshotReply.Root.GetProperty("ok").GetBoolean(), snapshotReply.Payload);
        Assert.Equal(scenario.Topic("vision/cam/snapshot"), snapshotReply.Root.GetProperty("topic").GetString());
        var commanded = await snapshots.WaitForAsync(_ => true, Wait, ct);
        Assert.Equal([0xFF, 0xD8], commanded.PayloadBytes[..2]);
        Assert.Equal(2, pipeline.Snapshots!.Published);
        await client.SendAsync(scenario.Topic("cmd/snapshot"), """{"camera":"garage"}""", "s-2", ct);
        AssertRefused(await client.WaitReplyAsync("s-2", ct), "snapshot", "failed", "no camera 'garage'");

        // Restart: the camera says reconnecting (why) and streams again from a new source.
        var sourceBefore = pipeline.Source;
        await client.SendAsync(scenario.Topic("cmd/restart-camera"), """{"camera":"cam"}""", "r-1", ct);
        var restartReply = await client.WaitReplyAsync("r-1", ct);
        Assert.True(restartReply.Root.GetProperty("ok").GetBoolean(), restartReply.Payload);
        await states.WaitForAsync(m => m.Payload.Contains("\"reconnecting\"", StringComparison.Ordinal) && m.Payload.Contains("restart requested by a command", StringComparison.Ordinal), Wait, ct);
        await states.WaitForAsync(m => m.Payload.Contains("\"streaming\"", StringComparison.Ordinal), Wait, ct);
        Assert.Equal(1, pipeline.RequestedRestarts);
        Assert.NotSame(sourceBefore, pipeline.Source);
        Assert.Equal(0, pipeline.CaptureRestarts);

        // Threshold: the lowest score seen so far, then a threshold just above it; later results never show it.
        var lowest = await LowestScoreAsync(results, ct);
        var threshold = Math.Round(lowest + 0.001, 4, MidpointRounding.AwayFromZero);
        await client.SendAsync(scenario.Topic("cmd/set-threshold"), $$"""{"camera":"cam","score":{{threshold.ToString(CultureInfo.InvariantCulture)}}}""", "t-1", ct);
        var thresholdReply = await client.WaitReplyAsync("t-1", ct);
        Assert.True(thresholdReply.Root.GetProperty("ok").GetBoolean(), thresholdReply.Payload);
        var decoderThreshold = thresholdReply.Root.GetProperty("decoder_threshold").GetDouble();
        Assert.Equal(0.25, decoderThreshold, 5);
        Assert.Equal(decoderThreshold, thresholdReply.Root.GetProperty("previous").GetDouble(), 5);
        // Results of frames captured before the change may still come: from the seq the reply names on, every detection is above it.
        var fromSeq = thresholdReply.Root.GetProperty("from_seq").GetInt64();
        var after = await NextResultsAsync(results, 8, fromSeq, ct);
        Assert.All(after.SelectMany(r => r.GetProperty("detections").EnumerateArray()), d => Assert.True(d.GetProperty("score").GetDouble() >= threshold - 1e-4, $"score {d.GetProperty("score")} below {threshold}"));

        await client.SendAsync(scenario.Topic("cmd/set-threshold"), """{"camera":"cam","score":0.1}""", "t-2", ct);
        AssertRefused(await client.WaitReplyAsync("t-2", ct), "set-threshold", "failed", "below the model's decode threshold 0.25");
        await client.SendAsync(scenario.Topic("cmd/set-threshold"), """{"camera":"cam","score":"high"}""", "t-3", ct);
        AssertRefused(await client.WaitReplyAsync("t-3", ct), "set-threshold", "failed", "\"score\" must be a number from 0 to 1");
        await client.SendAsync(scenario.Topic("cmd/set-threshold"), """{"stream":"m1","score":0.5}""", "t-4", ct);
        AssertRefused(await client.WaitReplyAsync("t-4", ct), "set-threshold", "failed", "model manifest");
        await client.SendAsync(scenario.Topic("cmd/set-threshold"), """{"camera":"cam","score":0.25}""", "t-5", ct);
        var back = await client.WaitReplyAsync("t-5", ct);
        Assert.True(back.Root.GetProperty("ok").GetBoolean(), back.Payload);
        Assert.Equal(threshold, back.Root.GetProperty("previous").GetDouble(), 4);

        var commands = host.Services.GetRequiredService<CommandService>();
        Assert.Equal(1, commands.Count("snapshot", "ok"));
        Assert.Equal(1, commands.Count("restart-camera", "ok"));
        Assert.Equal(2, commands.Count("set-threshold", "ok"));
        Assert.Equal(3, commands.Count("set-threshold", "failed"));
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task Commands_are_off_by_default_and_reload_without_a_model_reloader_is_answered_as_not_available()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("cmdreload", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = Lstm() },
                ["Sensors"] = new JsonObject { ["m1"] = TestConfig.SimulatedVibration(13) },
            },
            ct);
        await using var client = await CommandClient.ConnectAsync(scenario.Port, scenario.Topic("reply/reload-test"), ct);

        // Commands are off by default: the daemon does not even subscribe. Its stop (below) proves nothing was taken.
        var off = host.Services.GetRequiredService<CommandService>();
        await client.SendAsync(scenario.Topic("cmd/reload"), "{}", "off-1", ct);
        await host.StopAsync(ct);
        Assert.Equal(0, off.Received);
        Assert.Empty(client.Replies);

        // The same device again, with reload allowed this time.
        var config = scenario.WriteConfig(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = Lstm() },
                ["Sensors"] = new JsonObject { ["m1"] = TestConfig.SimulatedVibration(13) },
            },
            new JsonObject { ["Commands"] = new JsonObject { ["Allow"] = new JsonArray("reload") } });
        var allowed = await scenario.StartHostAsync(config, ct);
        await WaitUntilSubscribedAsync(allowed, ct);
        await client.SendAsync(scenario.Topic("cmd/reload"), """{"model":"lstm"}""", "rl-1", ct);
        var reply = await client.WaitReplyAsync("rl-1", ct);
        if (allowed.Services.GetService<IModelReloader>() is null)
        {
            AssertRefused(reply, "reload", "failed", ReloadCommand.NotAvailable);
        }
        else
        {
            // A build with hot model swap: the reply says what it did.
            Assert.True(reply.Root.TryGetProperty("message", out _), reply.Payload);
            Assert.Equal("lstm", reply.Root.GetProperty("model").GetString());
        }

        await client.SendAsync(scenario.Topic("cmd/reload"), """{"model":3}""", "rl-2", ct);
        AssertRefused(await client.WaitReplyAsync("rl-2", ct), "reload", "failed", "\"model\" must be a string");
        await allowed.StopAsync(ct);
    }

    [Fact]
    public async Task A_command_that_runs_past_its_timeout_is_answered_timeout_and_the_next_one_still_runs()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("cmdtimeout", ct);
        var config = scenario.WriteConfig(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = Lstm() },
                ["Sensors"] = new JsonObject { ["m1"] = TestConfig.SimulatedVibration(14) },
            },
            new JsonObject { ["Commands"] = new JsonObject { ["Allow"] = new JsonArray("reload", "reset"), ["TimeoutSeconds"] = 0.5 } });
        // The reload command's seam (hot model swap is another part): a reloader that never finishes unless asked for "fast".
        var host = await scenario.StartHostAsync(config, ct, services => services.AddSingleton<IModelReloader, StuckReloader>());
        await using var client = await CommandClient.ConnectAsync(scenario.Port, scenario.Topic("reply/timeout-test"), ct);
        await WaitUntilSubscribedAsync(host, ct);

        await client.SendAsync(scenario.Topic("cmd/reload"), "{}", "slow", ct);
        AssertRefused(await client.WaitReplyAsync("slow", ct), "reload", "timeout", "Mqtt:Commands:TimeoutSeconds");
        await client.SendAsync(scenario.Topic("cmd/reload"), """{"model":"fast"}""", "fast", ct);
        var fast = await client.WaitReplyAsync("fast", ct);
        Assert.True(fast.Root.GetProperty("ok").GetBoolean(), fast.Payload);
        Assert.Equal("fast", Assert.Single(fast.Root.GetProperty("reloaded").EnumerateArray()).GetString());
        await client.SendAsync(scenario.Topic("cmd/reset"), """{"stream":"m1"}""", "after", ct);
        Assert.True((await client.WaitReplyAsync("after", ct)).Root.GetProperty("ok").GetBoolean());

        var commands = host.Services.GetRequiredService<CommandService>();
        Assert.Equal(1, commands.Count("reload", "timeout"));
        Assert.Equal(1, commands.Count("reload", "ok"));
        await host.StopAsync(ct);
    }

    [Fact]
    public void A_raised_score_threshold_drops_the_lower_detections_and_decoding_still_allocates_nothing()
    {
        var configuration = EdgeRunnerHost.BuildConfiguration(TestConfig.Write(new JsonObject { ["Models"] = new JsonObject { ["detector"] = TestConfig.BundledModel("shapes-detector") } }), []);
        using var host = EdgeRunnerHost.Build(configuration);
        using var processor = VisionProcessorFactory.Create(host.Services.GetRequiredService<ModelCatalog>().Get("detector"), "Camera test", NullLoggerFactory.Instance);
        var head = Assert.IsType<DetectionHead>(processor.Head);
        using var frame = new SyntheticScene(320, 240, seed: 3).RenderFrame(new FramePool(), 0);

        processor.Process(frame);
        var scores = head.Results.ToArray().Select(d => d.Score).ToList();
        Assert.True(scores.Count >= 2, $"{scores.Count} detections in the synthetic scene");
        Assert.Equal(head.DecoderThreshold, head.ScoreThreshold.Value);

        // Just above the lowest: that one goes, the others stay.
        var threshold = scores.Min() + 1e-4f;
        head.ScoreThreshold.Set(threshold);
        processor.Process(frame);
        Assert.Equal(scores.Count(s => s >= threshold), head.Count);
        Assert.True(head.Count < scores.Count);
        Assert.All(head.Results.ToArray(), d => Assert.True(d.Score >= threshold));
        AllocationAssert.SteadyStateIsZero(() => processor.Process(frame));
    }

    [Fact]
    public async Task An_unknown_command_in_allow_stops_the_daemon_process_with_exit_78_naming_the_key()
    {
        // As an operator would write it on the command line: the built-in configuration plus one allowed command too many.
        await using var daemon = DaemonProcess.Start(["--Mqtt:Commands:Allow:0=reset", "--Mqtt:Commands:Allow:1=shutdown"]);

        Assert.Equal(78, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken));
        Assert.Contains("Mqtt:Commands:Allow:1: unknown command 'shutdown'", daemon.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"Allow":["reset","format-disk"]}""", "Mqtt:Commands:Allow:1: unknown command 'format-disk'")]
    [InlineData("""{"Allow":["reset"],"MaxPayload":10}""", "Mqtt:Commands:MaxPayload: unknown key")]
    [InlineData("""{"MaxPayloadBytes":0}""", "Mqtt:Commands:MaxPayloadBytes: must be between")]
    [InlineData("""{"TimeoutSeconds":0}""", "Mqtt:Commands:TimeoutSeconds: must be between")]
    public void Bad_command_settings_are_configuration_errors_naming_the_key(string commands, string expected)
    {
        var path = TestConfig.Write(new JsonObject
        {
            ["Mqtt"] = new JsonObject { ["Commands"] = JsonNode.Parse(commands) },
        });
        var configuration = EdgeRunnerHost.BuildConfiguration(path, []);
        using var host = EdgeRunnerHost.Build(configuration);
        var errors = EdgeRunnerHost.FindConfigurationErrors(configuration, host.Services);
        Assert.Contains(errors, e => e.StartsWith(expected, StringComparison.Ordinal));
    }

    /// <summary>Reloads the model "fast" at once; anything else waits until cancelled (the command's timeout).</summary>
    private sealed class StuckReloader : IModelReloader
    {
        public async Task<ModelReloadOutcome> ReloadAsync(string? modelName, CancellationToken cancellationToken)
        {
            if (modelName != "fast")
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return new ModelReloadOutcome(true, $"{modelName} swapped in", [modelName!]);
        }
    }

    /// <summary>A refusal or failure: not ok, the outcome, an error saying why, and a reply the schema accepts.</summary>
    internal static void AssertRefused(CommandReply reply, string command, string outcome, string errorPart)
    {
        Assert.False(reply.Root.GetProperty("ok").GetBoolean(), reply.Payload);
        Assert.Equal(command, reply.Root.GetProperty("command").GetString());
        Assert.Equal(outcome, reply.Root.GetProperty("outcome").GetString());
        Assert.Contains(errorPart, reply.Root.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    /// <summary>Waits until the daemon's command subscription is granted (a request sent before would find no subscriber).</summary>
    internal static async Task WaitUntilSubscribedAsync(Microsoft.Extensions.Hosting.IHost host, CancellationToken ct)
    {
        var dispatcher = host.Services.GetRequiredService<EdgeRunner.Service.Mqtt.MqttSubscriptionDispatcher>();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Wait);
        while (!dispatcher.AllSubscribed)
        {
            await Task.Delay(50, timeout.Token);
        }
    }

    private static async Task<double> LowestScoreAsync(MqttProbe results, CancellationToken ct)
    {
        while (true)
        {
            var message = await results.WaitForAsync(_ => true, Wait, ct);
            var scores = JsonDocument.Parse(message.Payload).RootElement.GetProperty("detections").EnumerateArray().Select(d => d.GetProperty("score").GetDouble()).ToList();
            // A detection the threshold can drop: above the decoder's 0.25, below 0.99 (room for a threshold above it).
            if (scores.Count > 0 && scores.Min() < 0.99)
            {
                return scores.Min();
            }
        }
    }

    private static async Task<List<JsonElement>> NextResultsAsync(MqttProbe results, int count, long fromSeq, CancellationToken ct)
    {
        var list = new List<JsonElement>();
        while (list.Count < count)
        {
            var message = await results.WaitForAsync(_ => true, Wait, ct);
            var root = JsonDocument.Parse(message.Payload).RootElement.Clone();
            if (root.GetProperty("seq").GetInt64() >= fromSeq)
            {
                list.Add(root);
            }
        }

        return list;
    }

    private static MeterListener ListenToCommandCounter(Meter meter, out ConcurrentQueue<(string Command, string Outcome, long Value)> measured)
    {
        var queue = new ConcurrentQueue<(string Command, string Outcome, long Value)>();
        measured = queue;
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter == meter && instrument.Name == "edgerunner.commands")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? command = null, outcome = null;
            foreach (var tag in tags)
            {
                command = tag.Key == "command" ? tag.Value as string : command;
                outcome = tag.Key == "outcome" ? tag.Value as string : outcome;
            }

            queue.Enqueue((command ?? "?", outcome ?? "?", value));
        });
        listener.Start();
        return listener;
    }
}

/// <summary>A command reply as received: its correlation data (UTF-8), payload, retain flag and parsed root.</summary>
internal sealed record CommandReply(string? Correlation, string Payload, bool Retain, JsonElement Root);

/// <summary>
/// An MQTT 5 client that sends commands with a response topic and correlation data, and reads the replies on that
/// topic; every reply is checked against docs/schemas/replies/command.reply.schema.json as it arrives.
/// </summary>
internal sealed class CommandClient : IAsyncDisposable
{
    private static readonly Lazy<JsonSchema> ReplySchema = new(() => JsonSchema.FromFile(
        Path.Combine(TestPaths.RepositoryRoot, "docs", "schemas", "replies", "command.reply.schema.json"),
        new BuildOptions { SchemaRegistry = new SchemaRegistry() }));

    private static readonly EvaluationOptions SchemaOptions = new() { OutputFormat = OutputFormat.List, RequireFormatValidation = true };

    private readonly IMqttClient _client;
    private readonly Channel<CommandReply> _replies = Channel.CreateUnbounded<CommandReply>();
    private readonly List<CommandReply> _seen = [];
    private readonly List<string> _schemaErrors = [];

    private CommandClient(IMqttClient client, string replyTopic)
    {
        _client = client;
        ReplyTopic = replyTopic;
    }

    /// <summary>Where the replies come (the requests' response topic).</summary>
    public string ReplyTopic { get; }

    /// <summary>Every reply so far.</summary>
    public IReadOnlyList<CommandReply> Replies
    {
        get
        {
            lock (_seen)
            {
                return [.. _seen];
            }
        }
    }

    /// <summary>Connects (as <paramref name="username"/> when given) and subscribes to <paramref name="replyTopic"/>.</summary>
    public static async Task<CommandClient> ConnectAsync(int port, string replyTopic, CancellationToken ct, string? username = null, string? password = null)
    {
        var mqtt = new MqttClientFactory().CreateMqttClient();
        var client = new CommandClient(mqtt, replyTopic);
        mqtt.ApplicationMessageReceivedAsync += e => client.OnMessage(e.ApplicationMessage);
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", port)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithClientId("cmd-" + Guid.NewGuid().ToString("N")[..12]);
        if (username is not null)
        {
            options.WithCredentials(username, password);
        }

        try
        {
            await mqtt.ConnectAsync(options.Build(), ct);
            var subscribe = await mqtt.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(f => f.WithTopic(replyTopic).WithAtLeastOnceQoS()).Build(), ct);
            Assert.All(subscribe.Items, i => Assert.True(i.ResultCode <= MqttClientSubscribeResultCode.GrantedQoS2, $"subscription to {replyTopic}: {i.ResultCode}"));
        }
        catch
        {
            mqtt.Dispose();
            throw;
        }

        return client;
    }

    /// <summary>Publishes a request (QoS 1, MQTT 5 response topic and correlation data unless told otherwise); returns the broker's acknowledgement.</summary>
    public Task<MqttClientPublishResult> SendAsync(string topic, string payload, string? correlation, CancellationToken ct, bool withResponseTopic = true)
    {
        var message = new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(Encoding.UTF8.GetBytes(payload))
            .WithQualityOfServiceLevel(MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce);
        if (withResponseTopic)
        {
            message.WithResponseTopic(ReplyTopic);
        }

        if (correlation is not null)
        {
            message.WithCorrelationData(Encoding.UTF8.GetBytes(correlation));
        }

        return _client.PublishAsync(message.Build(), ct);
    }

    /// <summary>The next reply with <paramref name="correlation"/> (replies before it are consumed), validated against the schema.</summary>
    public async Task<CommandReply> WaitReplyAsync(string correlation, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            while (true)
            {
                var reply = await _replies.Reader.ReadAsync(timeout.Token);
                if (reply.Correlation == correlation)
                {
                    lock (_schemaErrors)
                    {
                        Assert.Empty(_schemaErrors);
                    }

                    return reply;
                }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"No reply with correlation data '{correlation}'. Replies: {string.Join(" | ", Replies.Select(r => $"{r.Correlation}: {r.Payload}"))}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_client.IsConnected)
            {
                await _client.DisconnectAsync();
            }
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
        {
            // The broker may already be gone.
        }

        _client.Dispose();
    }

    private Task OnMessage(MqttApplicationMessage message)
    {
        var payload = Encoding.UTF8.GetString(message.Payload);
        var correlation = message.CorrelationData is { } data ? Encoding.UTF8.GetString(data) : null;
        using var document = JsonDocument.Parse(payload);
        var results = ReplySchema.Value.Evaluate(document.RootElement, SchemaOptions);
        if (!results.IsValid)
        {
            lock (_schemaErrors)
            {
                _schemaErrors.AddRange(((IEnumerable<EvaluationResults>)[results, .. results.Details ?? []])
                    .SelectMany(n => (n.Errors ?? new Dictionary<string, string>()).Select(e => $"{payload}: {n.InstanceLocation} {e.Key}: {e.Value}")));
            }
        }

        var reply = new CommandReply(correlation, payload, message.Retain, document.RootElement.Clone());
        lock (_seen)
        {
            _seen.Add(reply);
        }

        _replies.Writer.TryWrite(reply);
        return Task.CompletedTask;
    }
}
