using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The embedded broker checks who is talking: the daemon in-process with its embedded broker on a free
/// port, a simulated machine (results all the time) and an MQTT-fed stream, and other clients (MQTTnet,
/// mosquitto_sub) trying what they may and may not do.
/// </summary>
public sealed class EmbeddedBrokerAccessTests
{
    private const int Chunk = 50;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private static JsonObject Sections(string deviceId) => new()
    {
        ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
        ["Sensors"] = new JsonObject
        {
            ["pump"] = TestConfig.SimulatedVibration(3),
            ["tank"] = new JsonObject
            {
                ["Model"] = "lstm",
                ["Source"] = new JsonObject { ["Kind"] = "Mqtt", ["Topic"] = $"plant/{deviceId}/tank", ["Columns"] = new JsonArray("ax", "ay", "az") },
            },
        },
    };

    /// <summary>Starts the daemon and waits until its subscriptions are granted (the ACL learns the writable topics from them).</summary>
    private static async Task<IHost> StartAsync(DaemonScenario scenario, CancellationToken ct, JsonObject? embeddedBroker = null)
    {
        var host = await scenario.StartHostAsync(scenario.WriteConfig(Sections(scenario.DeviceId), embeddedBroker: embeddedBroker), ct);
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        var deadline = DateTime.UtcNow + Wait;
        while (!publisher.AllSubscribed)
        {
            Assert.True(DateTime.UtcNow < deadline, "the daemon did not subscribe");
            await Task.Delay(20, ct);
        }

        return host;
    }

    private static string Samples(int count)
    {
        var samples = Enumerable.Range(0, count).Select(i =>
        {
            var t = i / 200.0;
            return string.Create(CultureInfo.InvariantCulture, $"{{\"ax\":{0.3 * Math.Sin(2 * Math.PI * 27 * t):0.#####},\"ay\":{0.2 * Math.Cos(2 * Math.PI * 27 * t):0.#####},\"az\":1}}");
        });
        return "[" + string.Join(",", samples) + "]";
    }

    private static MqttClientOptions ClientOptions(int port, string clientId, string? username = null, string? password = null, string host = "127.0.0.1")
    {
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(host, port)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithClientId(clientId);
        if (username is not null)
        {
            builder.WithCredentials(username, password);
        }

        return builder.Build();
    }

    /// <summary>Connects; the result code's name, or for a refused connection the client's message (which names the code).</summary>
    private static async Task<string> ConnectAsync(IMqttClient client, MqttClientOptions options, CancellationToken ct)
    {
        try
        {
            return (await client.ConnectAsync(options, ct)).ResultCode.ToString();
        }
        catch (MQTTnet.Adapter.MqttConnectingFailedException ex)
        {
            return ex.Message;
        }
    }

    private static Task<MqttClientPublishResult> PublishAsync(IMqttClient client, string topic, string payload, bool retain, CancellationToken ct) =>
        client.PublishAsync(
            new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(Encoding.UTF8.GetBytes(payload)).WithRetainFlag(retain).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build(),
            ct);

    /// <summary>Runs a mosquitto client to its end; returns its exit code and output.</summary>
    private static async Task<(int ExitCode, string Output)> RunAsync(string program, IEnumerable<string> arguments, CancellationToken ct)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    private static async Task<string> RetainedStatusAsync(DaemonScenario scenario, CancellationToken ct)
    {
        await using var status = await scenario.ProbeAsync("status", ct);
        var message = await status.WaitForAsync(_ => true, Wait, ct);
        Assert.True(message.Retain);
        return message.Payload;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            await Task.Delay(20, ct);
        }
    }

    [Fact]
    public async Task An_anonymous_local_client_reads_everything_and_writes_only_ingest_and_command_topics()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = DaemonScenario.WithEmbeddedBroker("acl");
        var port = scenario.Port;
        var deviceId = scenario.DeviceId;
        var device = $"edgerunner/{deviceId}";
        var host = await StartAsync(scenario, ct);
        var broker = host.Services.GetRequiredService<EmbeddedMqttBroker>();

        // An MQTT 3.1.1 reader without a client id (mosquitto_sub's default): assigned one, and reads.
        var (exitCode, output) = await RunAsync("mosquitto_sub", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-t", $"{device}/status", "-t", $"{device}/sensors/pump/result", "-v", "-C", "2", "-W", "60"], ct);
        Assert.True(exitCode == 0, output);
        Assert.Contains($"{device}/status online", output, StringComparison.Ordinal);
        Assert.Contains($"{device}/sensors/pump/result {{", output, StringComparison.Ordinal);

        var probe = await scenario.ProbeAsync("#", ct);
        using var client = new MqttClientFactory().CreateMqttClient();
        Assert.Equal(nameof(MqttClientConnectResultCode.Success), await ConnectAsync(client, ClientOptions(port, "intruder"), ct));

        // The daemon's own topics, topics nobody subscribes to as ingest, $-topics: refused, not retained.
        string[] refused = [$"{device}/status", $"{device}/sensors/pump/result", $"{device}/sensors/tank/state", $"{device}/sensors/tank/event", $"{device}/vision/cam/result", "plant/elsewhere", "$SYS/broker/uptime"];
        foreach (var topic in refused)
        {
            var result = await PublishAsync(client, topic, "offline", retain: true, ct);
            Assert.True(result.ReasonCode == MqttClientPublishReasonCode.NotAuthorized, $"{topic}: {result.ReasonCode}");
        }

        // A retained command would be replayed at every reconnect: refused too.
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, (await PublishAsync(client, $"{device}/sensors/tank/reset", string.Empty, retain: true, ct)).ReasonCode);
        var dollar = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("$SYS/#").Build(), ct);
        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, dollar.Items.Single().ResultCode);

        // The ingest topic and the reset command work.
        Assert.True((await PublishAsync(client, $"plant/{deviceId}/tank", Samples(2 * Chunk), retain: false, ct)).IsSuccess);
        await probe.WaitForAsync(m => m.Topic == $"{device}/sensors/tank/result" && JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64() == 1, Wait, ct);
        Assert.True((await PublishAsync(client, $"{device}/sensors/tank/reset", "{\"reason\":\"refilled\"}", retain: false, ct)).IsSuccess);
        var reset = await probe.WaitForAsync(m => m.Topic == $"{device}/sensors/tank/event" && m.Payload.Contains("\"reset\"", StringComparison.Ordinal), Wait, ct);

        // MQTT 3.1.1 (mosquitto_pub's default) cannot be told "not authorized", but is refused all the same.
        (exitCode, output) = await RunAsync("mosquitto_pub", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-q", "1", "-r", "-t", $"{device}/status", "-m", "offline"], ct);
        Assert.True(exitCode == 0, output);
        await WaitUntilAsync(() => broker.RefusedPublishes == refused.Length + 2, "the MQTT 3.1.1 publish to the status was not refused", ct);

        Assert.Equal("refilled", JsonDocument.Parse(reset.Payload).RootElement.GetProperty("reason").GetString());
        Assert.Equal(1, broker.RefusedSubscriptions);
        Assert.Equal(0, broker.RefusedConnections);
        Assert.Equal("online", await RetainedStatusAsync(scenario, ct));
        Assert.DoesNotContain(probe.Seen, m => m.Payload == "offline" || m.Topic.EndsWith("/vision/cam/result", StringComparison.Ordinal));
        await client.DisconnectAsync(cancellationToken: ct);
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task Nobody_else_can_take_the_daemons_client_id_or_leave_a_will_on_its_status()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = DaemonScenario.WithEmbeddedBroker("acl");
        var port = scenario.Port;
        var deviceId = scenario.DeviceId;
        var host = await StartAsync(scenario, ct);
        var broker = host.Services.GetRequiredService<EmbeddedMqttBroker>();
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        var daemonId = $"edgerunner-{deviceId}";

        using (var thief = new MqttClientFactory().CreateMqttClient())
        {
            Assert.Contains(nameof(MqttClientConnectResultCode.ClientIdentifierNotValid), await ConnectAsync(thief, ClientOptions(port, daemonId), ct), StringComparison.Ordinal);
        }

        var (exitCode, output) = await RunAsync("mosquitto_sub", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-i", daemonId, "-t", "#", "-W", "30"], ct);
        Assert.NotEqual(0, exitCode);
        Assert.Contains("identifier rejected", output, StringComparison.OrdinalIgnoreCase);

        // A will on the daemon's status, published by the broker when the connection drops (disposed
        // without a DISCONNECT): refused like any publish.
        using (var saboteur = new MqttClientFactory().CreateMqttClient())
        {
            var options = new MqttClientOptionsBuilder()
                .WithTcpServer("127.0.0.1", port)
                .WithProtocolVersion(MqttProtocolVersion.V500)
                .WithClientId("saboteur")
                .WithWillTopic($"edgerunner/{deviceId}/status")
                .WithWillPayload("offline"u8.ToArray())
                .WithWillRetain(true)
                .Build();
            Assert.Equal(nameof(MqttClientConnectResultCode.Success), await ConnectAsync(saboteur, options, ct));
        }

        await WaitUntilAsync(() => broker.RefusedPublishes == 1, "the will was not refused", ct);

        // The daemon kept its one connection and goes on publishing.
        var results = await scenario.ProbeAsync("sensors/pump/result", ct);
        await results.WaitForAsync(_ => true, Wait, ct);
        Assert.Equal("online", await RetainedStatusAsync(scenario, ct));
        Assert.Equal(2, broker.RefusedConnections);
        Assert.True(publisher.IsConnected);
        Assert.Equal(1, publisher.Connects);
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task Bound_beyond_loopback_clients_must_authenticate_and_the_daemon_connects_through_loopback()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = DaemonScenario.WithEmbeddedBroker("acl");
        var passwordFile = Path.Combine(scenario.Folder, "broker-password");
        await File.WriteAllTextAsync(passwordFile, "correct horse\n", ct);
        var port = scenario.Port;
        var deviceId = scenario.DeviceId;
        var host = await StartAsync(scenario, ct, new JsonObject { ["BindAddress"] = "0.0.0.0", ["Username"] = "plant", ["PasswordFile"] = passwordFile });
        var broker = host.Services.GetRequiredService<EmbeddedMqttBroker>();
        var publisher = host.Services.GetRequiredService<MqttPublisher>();

        foreach (var (username, password) in new (string?, string?)[] { (null, null), ("plant", "wrong"), ("someone", "correct horse") })
        {
            using var client = new MqttClientFactory().CreateMqttClient();
            Assert.Contains(nameof(MqttClientConnectResultCode.BadUserNameOrPassword), await ConnectAsync(client, ClientOptions(port, "watcher", username, password), ct), StringComparison.Ordinal);
        }

        var (exitCode, output) = await RunAsync("mosquitto_sub", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-t", "#", "-W", "30"], ct);
        Assert.NotEqual(0, exitCode);
        Assert.Contains("bad user name or password", output, StringComparison.OrdinalIgnoreCase);

        // The right credentials: reads the daemon's results; the daemon itself published them (over loopback).
        using var reader = new MqttClientFactory().CreateMqttClient();
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        reader.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult(e.ApplicationMessage.Topic);
            return Task.CompletedTask;
        };
        Assert.Equal(nameof(MqttClientConnectResultCode.Success), await ConnectAsync(reader, ClientOptions(port, "watcher", "plant", "correct horse"), ct));
        await reader.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"edgerunner/{deviceId}/sensors/pump/result").Build(), ct);
        Assert.Equal($"edgerunner/{deviceId}/sensors/pump/result", await received.Task.WaitAsync(Wait, ct));

        Assert.Equal("127.0.0.1", host.Services.GetRequiredService<EmbeddedBrokerEndpoint>().Host);
        Assert.True(publisher.IsConnected);
        Assert.True(publisher.Published > 0);
        Assert.Equal(4, broker.RefusedConnections);
        Assert.Equal(new[] { $"plant/{deviceId}/tank", $"edgerunner/{deviceId}/sensors/+/reset" }.Order(), broker.Acl.DaemonFilters.Order());
        await reader.DisconnectAsync(cancellationToken: ct);
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task Bound_beyond_loopback_without_credentials_stops_startup_naming_the_key()
    {
        await using var scenario = DaemonScenario.WithEmbeddedBroker("acl-open");
        var daemon = scenario.StartProcess(["--config", scenario.WriteConfig(Sections(scenario.DeviceId), embeddedBroker: new JsonObject { ["BindAddress"] = "0.0.0.0" })]);

        Assert.Equal(78, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken));
        Assert.Contains("Mqtt:EmbeddedBroker:Username: is required when Mqtt:EmbeddedBroker:BindAddress is not a loopback address (got '0.0.0.0')", daemon.Stderr, StringComparison.Ordinal);
    }
}
