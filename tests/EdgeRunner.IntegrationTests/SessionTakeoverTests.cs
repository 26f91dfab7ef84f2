using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Formatter;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// On a shared broker, another client connecting with the daemon's client id takes its session over (MQTT 5
/// DISCONNECT reason 0x8E). The daemon must say so, with the fix, not just reconnect in silence.
/// </summary>
public sealed class SessionTakeoverTests
{
    [Fact]
    public async Task A_client_taking_over_the_daemons_session_is_logged_as_such_with_the_advice_and_the_daemon_reconnects()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("takeover", ct);
        var deviceId = scenario.DeviceId;
        var logs = new CapturingLoggerProvider();
        var host = await scenario.StartHostAsync(new JsonObject(), ct, services => services.AddSingleton<ILoggerProvider>(logs));
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        // Connected and done with its connect (status, subscriptions): IsConnected alone is true before that, and a
        // takeover in between is a failed connect attempt, not a lost session.
        await WaitUntilAsync(() => publisher.Connects >= 1, ct);

        // Another tool connects with the daemon's own (default) client id.
        using var intruder = new MqttClientFactory().CreateMqttClient();
        await intruder.ConnectAsync(
            new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", scenario.Port).WithClientId($"edgerunner-{deviceId}").WithProtocolVersion(MqttProtocolVersion.V500).Build(),
            ct);

        await WaitUntilAsync(() => publisher.SessionsTakenOver >= 1, ct);
        await WaitUntilAsync(() => publisher.Connects >= 2, ct); // and it is back (taking the id over in turn)
        Assert.Contains(logs.Entries, l => l.Level >= LogLevel.Warning
            && l.Message.StartsWith("MQTT session taken over", StringComparison.Ordinal)
            && l.Message.Contains($"same client id edgerunner-{deviceId}", StringComparison.Ordinal)
            && l.Message.Contains("Mqtt:ClientId", StringComparison.Ordinal));
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task A_broker_killed_and_restarted_is_not_taken_for_a_session_takeover()
    {
        var ct = TestContext.Current.CancellationToken;
        // The daemon's host is the scenario's; the broker is this test's own, so that it can be killed (SIGKILL) and started again on its port.
        await using var scenario = DaemonScenario.WithEmbeddedBroker("killed");
        var port = FreePort.Next();
        var broker = await MosquittoBroker.StartAsync(ct, port);
        try
        {
            var logs = new CapturingLoggerProvider();
            var config = TestConfig.Write(new JsonObject
            {
                ["Device"] = new JsonObject { ["Id"] = scenario.DeviceId },
                ["Mqtt"] = new JsonObject { ["Host"] = "127.0.0.1", ["Port"] = port, ["ReconnectMaxDelaySeconds"] = 1 },
            });
            var host = await scenario.StartHostAsync(config, ct, services => services.AddSingleton<ILoggerProvider>(logs));
            var publisher = host.Services.GetRequiredService<MqttPublisher>();
            await WaitUntilAsync(() => publisher.Connects >= 1, ct);

            await broker.DisposeAsync(); // SIGKILL: the connection ends without a DISCONNECT
            await WaitUntilAsync(() => !publisher.IsConnected, ct);
            broker = await MosquittoBroker.StartAsync(ct, port);
            await WaitUntilAsync(() => publisher.Connects >= 2, ct);

            Assert.Contains(logs.Entries, l => l.Message.StartsWith("MQTT connection lost", StringComparison.Ordinal));
            var mqttLines = string.Join("\n", logs.Entries.Where(l => l.Category.Contains("Mqtt", StringComparison.Ordinal)).Select(l => l.Message));
            Assert.False(logs.Entries.Any(l => l.Message.Contains("session taken over", StringComparison.Ordinal)), mqttLines);
            Assert.Equal(0, publisher.SessionsTakenOver);
            await host.StopAsync(ct);
        }
        finally
        {
            await broker.DisposeAsync();
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        while (!condition())
        {
            await Task.Delay(50, timeout.Token);
        }
    }
}
