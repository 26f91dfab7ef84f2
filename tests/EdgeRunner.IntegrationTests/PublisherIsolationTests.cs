using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Publishing;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MQTTnet;
using MQTTnet.Diagnostics.PacketInspection;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// One bad message must never silence the daemon: a hostile ingest topic, a publish that throws, and one
/// stream flooding the outgoing queue, each through the daemon against a real mosquitto, with a camera
/// (mobilenet on an image) and other MQTT-fed streams (the bundled vibration LSTM) that must go on.
/// </summary>
public sealed class PublisherIsolationTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    /// <summary>A camera (mobilenet on an image at 10 fps) and a wildcard MQTT ingest entry <c>vib</c> on <c>plant-{device}/+/accel</c>.</summary>
    private static string WriteConfig(DaemonScenario scenario, int queueCapacity = 10_000, double publishTimeoutSeconds = 5) => scenario.WriteConfig(
        new JsonObject
        {
            ["Models"] = new JsonObject
            {
                ["mobilenet"] = TestConfig.MobileNetModel(),
                ["lstm"] = TestConfig.BundledModel("vibration-lstm"),
            },
            ["Cameras"] = new JsonObject
            {
                ["cam"] = new JsonObject
                {
                    ["Model"] = "mobilenet",
                    ["Fps"] = 10,
                    ["Source"] = new JsonObject { ["Kind"] = "Images", ["Path"] = TestPaths.SharedFile("images/goldfish.jpg"), ["Loop"] = true },
                },
            },
            ["Sensors"] = new JsonObject
            {
                ["vib"] = new JsonObject
                {
                    ["Model"] = "lstm",
                    ["Source"] = new JsonObject { ["Kind"] = "Mqtt", ["Topic"] = $"plant-{scenario.DeviceId}/+/accel", ["Format"] = "Numbers" },
                },
            },
        },
        mqtt: new JsonObject { ["QueueCapacity"] = queueCapacity, ["PublishTimeoutSeconds"] = publishTimeoutSeconds });

    /// <summary><paramref name="samples"/> samples of a 3-axis vibration, one per line (plain numbers).</summary>
    private static string Samples(int samples, int offset = 0)
    {
        var text = new StringBuilder(samples * 24);
        for (var i = offset; i < offset + samples; i++)
        {
            var t = i / 200.0;
            text.Append(CultureInfo.InvariantCulture, $"{0.3 * Math.Sin(2 * Math.PI * 27 * t):0.#####},{0.2 * Math.Cos(2 * Math.PI * 27 * t):0.#####},{1 + (0.05 * Math.Sin(2 * Math.PI * 54 * t)):0.#####}\n");
        }

        return text.ToString();
    }

    private static long Seq(ReceivedMessage message) => JsonDocument.Parse(message.Payload).RootElement.GetProperty("seq").GetInt64();

    /// <summary>The seq numbers received on <paramref name="topic"/>, distinct, in order.</summary>
    private static List<long> Seqs(MqttProbe probe, string topic) => [.. probe.Seen.Where(m => m.Topic == topic).Select(Seq).Distinct().Order()];

    /// <summary>
    /// No camera result was lost after the camera made it: <c>seq</c> is the source's frame number, and the camera
    /// itself drops frames when inference is behind (on a loaded machine), counting them in <c>frames_dropped</c>
    /// (likewise the skipped ones). A frame dropped there is dropped before any later frame is inferred, so the last
    /// result's count covers every frame missing between the results received.
    /// </summary>
    private static void AssertNoCameraResultLost(MqttProbe probe, string topic)
    {
        var results = probe.Seen.Where(m => m.Topic == topic).Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .DistinctBy(r => r.GetProperty("seq").GetInt64()).OrderBy(r => r.GetProperty("seq").GetInt64()).ToList();
        Assert.True(results.Count > 1, "camera results came");
        var last = results[^1];
        var missing = last.GetProperty("seq").GetInt64() - results[0].GetProperty("seq").GetInt64() + 1 - results.Count;
        var notInferred = last.GetProperty("frames_dropped").GetInt64() + last.GetProperty("frames_skipped_rate").GetInt64() + last.GetProperty("frames_skipped_motion").GetInt64();
        Assert.True(missing <= notInferred, $"{missing} camera results missing, but the camera did not infer only {notInferred} frames");
    }

    private static async Task<IMqttClient> ConnectSenderAsync(int port, CancellationToken ct)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithProtocolVersion(MqttProtocolVersion.V500).WithClientId("sensor-" + Guid.NewGuid().ToString("N")).Build(), ct);
        return client;
    }

    private static Task<MqttClientPublishResult> SendAsync(IMqttClient client, string topic, string payload, CancellationToken ct) =>
        client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(Encoding.UTF8.GetBytes(payload)).WithQualityOfServiceLevel(MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).Build(), ct);

    /// <summary>The first message matching <paramref name="predicate"/> among those seen after the first <paramref name="after"/>, waiting for it if none has come yet.</summary>
    private static async Task<ReceivedMessage> SeenAsync(MqttProbe probe, Func<ReceivedMessage, bool> predicate, CancellationToken ct, int after = 0)
    {
        ReceivedMessage? found = null;
        await WaitUntilAsync(() => (found = probe.Seen.Skip(after).FirstOrDefault(predicate)) is not null, "a matching message came", ct);
        return found!;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}");
            await Task.Delay(20, ct);
        }
    }

    /// <summary>The daemon in-process with its MQTT client wrapped by <paramref name="client"/>; started once its subscriptions are granted.</summary>
    private static async Task<IHost> StartInProcessAsync(DaemonScenario scenario, string configFile, FaultyMqttClient client, CancellationToken ct)
    {
        var host = await scenario.StartHostAsync(configFile, ct, services => services.AddSingleton<Func<IMqttClient>>(_ => () => client));
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        await WaitUntilAsync(() => publisher.AllSubscribed, "the daemon subscribed", ct);
        return host;
    }

    [Fact]
    public async Task A_65k_character_topic_level_becomes_a_short_stream_id_and_the_daemon_keeps_publishing_and_exits_0()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("hostile", ct);
        var deviceId = scenario.DeviceId;
        var configFile = WriteConfig(scenario);
        var probe = await scenario.ProbeAsync("#", ct);
        var daemon = scenario.StartProcess(["--config", configFile]);
        var cameraTopic = $"edgerunner/{deviceId}/vision/cam/result";
        await SeenAsync(probe, m => m.Topic == $"edgerunner/{deviceId}/status" && m.Payload == "online", ct);
        await SeenAsync(probe, m => m.Topic == cameraTopic, ct);

        // The ingest topic fits MQTT (65,535 bytes); the result topic with the level in it would not.
        var prefix = $"plant-{deviceId}/";
        var level = "sensor-" + new string('x', 65_535 - prefix.Length - "/accel".Length - "sensor-".Length);
        var hostileTopic = $"{prefix}{level}/accel";
        Assert.Equal(65_535, hostileTopic.Length);
        Assert.True($"edgerunner/{deviceId}/sensors/vib/{level}/result".Length > MqttTopicRules.MaxTopicBytes);
        var mappedId = "vib/" + IngestStreamId.For(level, out var mapped);
        Assert.True(mapped);

        var sender = await ConnectSenderAsync(scenario.Port, ct);
        try
        {
            // A normal stream before and after the hostile message, 4 results (50-sample chunks) each time.
            await SendAsync(sender, $"{prefix}m1/accel", Samples(200), ct);
            await SendAsync(sender, hostileTopic, Samples(100), ct);
            await SendAsync(sender, $"{prefix}m1/accel", Samples(200, 200), ct);
            await SendAsync(sender, hostileTopic, Samples(100, 100), ct);
        }
        finally
        {
            await sender.DisconnectAsync(cancellationToken: ct);
            sender.Dispose();
        }

        var m1Topic = $"edgerunner/{deviceId}/sensors/vib/m1/result";
        var mappedTopic = $"edgerunner/{deviceId}/sensors/{mappedId}/result";
        await SeenAsync(probe, m => m.Topic == m1Topic && Seq(m) == 7, ct);
        await SeenAsync(probe, m => m.Topic == mappedTopic && Seq(m) == 3, ct);
        var cameraSeqBefore = Seqs(probe, cameraTopic)[^1];
        await SeenAsync(probe, m => m.Topic == cameraTopic && Seq(m) >= cameraSeqBefore + 5, ct);

        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7], Seqs(probe, m1Topic));
        Assert.Equal([0, 1, 2, 3], Seqs(probe, mappedTopic));
        Assert.Equal(mappedId, JsonDocument.Parse(probe.Seen.First(m => m.Topic == mappedTopic).Payload).RootElement.GetProperty("stream").GetString());
        AssertNoCameraResultLost(probe, cameraTopic);
        Assert.DoesNotContain(probe.Seen, m => m.Topic == $"edgerunner/{deviceId}/status" && m.Payload != "online");

        daemon.Terminate();
        await SeenAsync(probe, m => m.Topic == $"edgerunner/{deviceId}/status" && m.Payload == "offline", ct);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));
        Assert.Contains($"is stream {mappedId}", daemon.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", daemon.Stderr + daemon.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_publish_that_throws_drops_that_message_alone_and_the_status_says_degraded_while_nothing_goes_out()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("throwing", ct);
        var deviceId = scenario.DeviceId;
        var configFile = WriteConfig(scenario);
        var client = new FaultyMqttClient(new MqttClientFactory().CreateMqttClient());
        var statusTopic = $"edgerunner/{deviceId}/status";
        var cameraTopic = $"edgerunner/{deviceId}/vision/cam/result";
        var probe = await scenario.ProbeAsync("#", ct);
        using var host = await StartInProcessAsync(scenario, configFile, client, ct);
        var publisher = host.Services.GetRequiredService<MqttPublisher>();

        // One stream's messages throw in the client (as MQTTnet does for a topic it finds invalid); the others go on.
        client.Fault = m => m.Topic.Contains("/sensors/vib/bad/", StringComparison.Ordinal) ? new MqttProtocolViolationException("injected: bad message") : null;
        var sender = await ConnectSenderAsync(scenario.Port, ct);
        try
        {
            await SendAsync(sender, $"plant-{deviceId}/bad/accel", Samples(200), ct);
            await SendAsync(sender, $"plant-{deviceId}/good/accel", Samples(200), ct);
            await WaitUntilAsync(() => publisher.Failed >= 4, "the bad stream's 4 results failed", ct);
            await SendAsync(sender, $"plant-{deviceId}/good/accel", Samples(200, 200), ct);
            var goodTopic = $"edgerunner/{deviceId}/sensors/vib/good/result";
            await SeenAsync(probe, m => m.Topic == goodTopic && Seq(m) == 7, ct);
            Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7], Seqs(probe, goodTopic));
            Assert.DoesNotContain(probe.Seen, m => m.Topic.Contains("/sensors/vib/bad/", StringComparison.Ordinal));
            Assert.Equal(0, publisher.LoopFailures);
            Assert.Null(publisher.DegradedReason);

            // A topic MQTT does not allow, handed to the publisher directly: refused for its producer, never sent.
            var badTopic = $"edgerunner/{deviceId}/sensors/{new string('y', 65_600)}/result";
            Assert.False(host.Services.GetRequiredService<IResultPublisher>().TryPublish(badTopic, "{}"u8));
            Assert.Equal(1, publisher.RefusedFor(badTopic[..badTopic.LastIndexOf('/')]));

            // Now every result fails: the status says degraded, with the reason beside it; the camera is still running.
            client.Fault = m => m.Topic.StartsWith(statusTopic, StringComparison.Ordinal) ? null : new InvalidDataException("injected: everything fails");
            var degraded = await SeenAsync(probe, m => m.Topic == statusTopic && m.Payload == "degraded", ct);
            Assert.True(degraded.Retain);
            var afterDegraded = probe.Seen.Count;
            var detailPayload = probe.Seen.Last(m => m.Topic == $"{statusTopic}/detail").Payload;
            Assert.Empty(SchemaValidator.Errors("status.detail", detailPayload));
            var detail = JsonDocument.Parse(detailPayload).RootElement;
            Assert.Equal("degraded", detail.GetProperty("status").GetString());
            Assert.Contains("injected: everything fails", detail.GetProperty("reason").GetString(), StringComparison.Ordinal);
            Assert.NotNull(publisher.DegradedReason);

            // Publishing works again: online, and the camera's results flow.
            var failedBefore = publisher.Failed;
            client.Fault = null;
            await SeenAsync(probe, m => m.Topic == statusTopic && m.Payload == "online", ct, afterDegraded);
            var lastCamera = Seqs(probe, cameraTopic)[^1];
            await SeenAsync(probe, m => m.Topic == cameraTopic && Seq(m) > lastCamera, ct);
            Assert.Null(publisher.DegradedReason);
            Assert.Equal("online", JsonDocument.Parse(probe.Seen.Last(m => m.Topic == $"{statusTopic}/detail").Payload).RootElement.GetProperty("status").GetString());
            Assert.True(failedBefore >= 4 + MqttPublisher.DegradedAfterFailures, $"{failedBefore} messages failed");
            Assert.Equal(0, publisher.LoopFailures);
        }
        finally
        {
            await sender.DisconnectAsync(cancellationToken: ct);
            sender.Dispose();
        }

        // Stopping is clean: no exception, offline said.
        await host.StopAsync(ct);
        await probe.WaitForAsync(m => m.Topic == statusTopic && m.Payload == "offline", Wait, ct);
    }

    [Fact]
    public async Task A_flood_from_one_stream_drops_only_its_own_results_and_the_camera_and_other_streams_lose_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("flood", ct);
        var deviceId = scenario.DeviceId;
        // A small queue, and a publish that may wait long: the link is stalled below, not broken.
        var configFile = WriteConfig(scenario, queueCapacity: 200, publishTimeoutSeconds: 300);
        var client = new FaultyMqttClient(new MqttClientFactory().CreateMqttClient());
        var cameraTopic = $"edgerunner/{deviceId}/vision/cam/result";
        var quietTopic = $"edgerunner/{deviceId}/sensors/vib/quiet/result";
        var floodProducer = $"edgerunner/{deviceId}/sensors/vib/flood";
        var probe = await scenario.ProbeAsync("#", ct);
        using var host = await StartInProcessAsync(scenario, configFile, client, ct);
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        await SeenAsync(probe, m => m.Topic == cameraTopic, ct);

        // Stall every result publish (a slow link): what is produced meanwhile waits in the queue.
        var stall = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Stall = m => m.Topic.EndsWith("/status", StringComparison.Ordinal) ? null : stall.Task;
        var sender = await ConnectSenderAsync(scenario.Port, ct);
        try
        {
            await SendAsync(sender, $"plant-{deviceId}/quiet/accel", Samples(200), ct);
            // 20 messages of 2,000 samples (about 45 KB each, under the 64 KiB ingest limit): 800 results.
            for (var i = 0; i < 20; i++)
            {
                await SendAsync(sender, $"plant-{deviceId}/flood/accel", Samples(2000, i * 2000), ct);
            }

            await SendAsync(sender, $"plant-{deviceId}/quiet/accel", Samples(200, 200), ct);
            await WaitUntilAsync(() => publisher.DroppedFor(floodProducer) >= 400, "the flood overflowed its share", ct);
        }
        finally
        {
            await sender.DisconnectAsync(cancellationToken: ct);
            sender.Dispose();
        }

        stall.SetResult();
        client.Stall = null;
        await SeenAsync(probe, m => m.Topic == quietTopic && Seq(m) == 7, ct);
        var lastCamera = probe.Seen.Where(m => m.Topic == cameraTopic).Select(Seq).Max();
        await SeenAsync(probe, m => m.Topic == cameraTopic && Seq(m) > lastCamera + 3, ct);
        await host.StopAsync(ct);

        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7], Seqs(probe, quietTopic));
        AssertNoCameraResultLost(probe, cameraTopic);
        Assert.Equal(0, publisher.DroppedFor($"edgerunner/{deviceId}/vision/cam"));
        Assert.Equal(0, publisher.DroppedFor($"edgerunner/{deviceId}/sensors/vib/quiet"));
        Assert.Equal(publisher.Dropped, publisher.DroppedFor(floodProducer));
        var flood = Seqs(probe, $"{floodProducer}/result");
        Assert.True(flood.Count < 800, $"the flood lost its oldest ({flood.Count} of 800 delivered)");
        Assert.Equal(799, flood[^1]);
    }

    [Fact]
    public async Task A_publishing_loop_that_keeps_failing_stops_the_daemon_with_exit_code_70_and_stopping_stays_clean()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("loopfail", ct);
        var configFile = WriteConfig(scenario);
        var client = new FaultyMqttClient(new MqttClientFactory().CreateMqttClient());
        using var host = await StartInProcessAsync(scenario, configFile, client, ct);
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => stopping.TrySetResult());
        try
        {
            // Every turn of the loop now fails before any message is touched (the camera's next result wakes it).
            client.BrokenState = true;
            await stopping.Task.WaitAsync(Wait, ct);

            Assert.Equal(MqttPublisher.MaxLoopFailures, publisher.LoopFailures);
            Assert.Equal(MqttPublisher.LoopFailedExitCode, Environment.ExitCode);
            Assert.Contains("publishing loop failed", publisher.DegradedReason, StringComparison.Ordinal);
            await host.StopAsync(ct); // never throws, though the client still does
        }
        finally
        {
            // The test process's own exit code.
            Environment.ExitCode = 0;
        }
    }

    /// <summary>
    /// The daemon's MQTT client with faults injected at publish: <see cref="Fault"/> throws for chosen messages,
    /// <see cref="Stall"/> holds chosen messages until a task completes. Everything else goes to the real client.
    /// </summary>
    private sealed class FaultyMqttClient(IMqttClient inner) : IMqttClient
    {
        public Func<MqttApplicationMessage, Exception?>? Fault { get; set; }

        public Func<MqttApplicationMessage, Task?>? Stall { get; set; }

        public event Func<MqttApplicationMessageReceivedEventArgs, Task> ApplicationMessageReceivedAsync
        {
            add => inner.ApplicationMessageReceivedAsync += value;
            remove => inner.ApplicationMessageReceivedAsync -= value;
        }

        public event Func<MqttClientConnectedEventArgs, Task> ConnectedAsync
        {
            add => inner.ConnectedAsync += value;
            remove => inner.ConnectedAsync -= value;
        }

        public event Func<MqttClientConnectingEventArgs, Task> ConnectingAsync
        {
            add => inner.ConnectingAsync += value;
            remove => inner.ConnectingAsync -= value;
        }

        public event Func<MqttClientDisconnectedEventArgs, Task> DisconnectedAsync
        {
            add => inner.DisconnectedAsync += value;
            remove => inner.DisconnectedAsync -= value;
        }

        public event Func<InspectMqttPacketEventArgs, Task> InspectPacketAsync
        {
            add => inner.InspectPacketAsync += value;
            remove => inner.InspectPacketAsync -= value;
        }

        /// <summary>True: reading the connection state throws, a fault of the loop itself rather than of one message.</summary>
        public bool BrokenState { get; set; }

        public bool IsConnected => BrokenState ? throw new InvalidDataException("injected: client state unreadable") : inner.IsConnected;

        public MqttClientOptions Options => inner.Options;

        public Task<MqttClientConnectResult> ConnectAsync(MqttClientOptions options, CancellationToken cancellationToken = default) => inner.ConnectAsync(options, cancellationToken);

        public Task DisconnectAsync(MqttClientDisconnectOptions options, CancellationToken cancellationToken = default) => inner.DisconnectAsync(options, cancellationToken);

        public Task PingAsync(CancellationToken cancellationToken = default) => inner.PingAsync(cancellationToken);

        public async Task<MqttClientPublishResult> PublishAsync(MqttApplicationMessage applicationMessage, CancellationToken cancellationToken = default)
        {
            if (Stall?.Invoke(applicationMessage) is { } stall)
            {
                await stall.WaitAsync(cancellationToken);
            }

            if (Fault?.Invoke(applicationMessage) is { } fault)
            {
                throw fault;
            }

            return await inner.PublishAsync(applicationMessage, cancellationToken);
        }

        public Task SendEnhancedAuthenticationExchangeDataAsync(MqttEnhancedAuthenticationExchangeData data, CancellationToken cancellationToken = default) =>
            inner.SendEnhancedAuthenticationExchangeDataAsync(data, cancellationToken);

        public Task<MqttClientSubscribeResult> SubscribeAsync(MqttClientSubscribeOptions options, CancellationToken cancellationToken = default) => inner.SubscribeAsync(options, cancellationToken);

        public Task<MqttClientUnsubscribeResult> UnsubscribeAsync(MqttClientUnsubscribeOptions options, CancellationToken cancellationToken = default) => inner.UnsubscribeAsync(options, cancellationToken);

        public void Dispose() => inner.Dispose();
    }
}
