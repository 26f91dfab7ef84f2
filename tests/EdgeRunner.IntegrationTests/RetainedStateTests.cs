using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.IntegrationTests;

/// <summary>Retained states are published on change only, so after a reconnect the daemon sends the latest of each again.</summary>
public sealed class RetainedStateTests
{
    [Fact]
    public async Task A_broker_that_lost_its_retained_messages_gets_the_latest_states_again_after_the_reconnect()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("retained", ct);
        var csv = Path.Combine(scenario.Folder, "short.csv");
        await File.WriteAllLinesAsync(csv, ["ax,ay,az", .. Enumerable.Range(0, 100).Select(i => "0.01,0.02,1.0")], ct);
        var config = scenario.WriteConfig(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
                ["Sensors"] = new JsonObject { ["replay"] = new JsonObject { ["Model"] = "lstm", ["Source"] = TestConfig.CsvReplay(csv, 200, "ax", "ay", "az") } },
            },
            mqtt: new JsonObject { ["ReconnectMaxDelaySeconds"] = 1 });
        var host = await scenario.StartHostAsync(config, ct);
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        await using (var probe = await scenario.ProbeAsync("sensors/replay/state", ct))
        {
            await probe.WaitForAsync(m => m.Payload.Contains("\"ended\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
        }

        // The broker restarts without persistence: its retained messages are gone.
        await scenario.RestartBrokerAsync(ct);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (publisher.Connects < 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, ct);
        }

        Assert.True(publisher.Connects >= 2, "the publisher reconnected");
        var dashboard = await scenario.ProbeAsync("sensors/replay/state", ct);
        var state = await dashboard.WaitForAsync(m => m.Retain, TimeSpan.FromSeconds(10), ct);
        Assert.Equal("ended", JsonDocument.Parse(state.Payload).RootElement.GetProperty("state").GetString());
        await host.StopAsync(ct);
    }
}
