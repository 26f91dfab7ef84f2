using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The daemon's connection to its own embedded broker (in-process, loopback) carries no MQTT keep-alive:
/// MQTTnet's keep-alive loop wakes every 250 ms whatever the period, most of an idle daemon's wake-ups.
/// </summary>
public sealed class EmbeddedBrokerKeepAliveTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_daemon_connects_to_its_embedded_broker_without_a_keep_alive_whatever_KeepAliveSeconds_says()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = DaemonScenario.WithEmbeddedBroker("keepalive");
        var config = scenario.WriteConfig(
            new JsonObject { ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") }, ["Sensors"] = new JsonObject { ["pump"] = TestConfig.SimulatedVibration(5) } },
            mqtt: new JsonObject { ["KeepAliveSeconds"] = 15 });
        var host = await scenario.StartHostAsync(config, ct);
        var broker = host.Services.GetRequiredService<EmbeddedMqttBroker>();
        var deadline = DateTime.UtcNow + Wait;
        while (broker.DaemonKeepAliveSeconds < 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the daemon did not connect to its embedded broker");
            await Task.Delay(20, ct);
        }

        Assert.Equal(0, broker.DaemonKeepAliveSeconds);

        // And it publishes over that connection as before.
        var probe = await scenario.ProbeAsync("sensors/pump/result", ct);
        var result = await probe.WaitForAsync(m => m.Topic == scenario.Topic("sensors/pump/result"), Wait, ct);
        Assert.Contains("\"model\"", result.Payload, StringComparison.Ordinal);
    }
}
