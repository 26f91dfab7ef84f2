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
        await WaitUntilAsync(() => publisher.IsConnected, ct);

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
