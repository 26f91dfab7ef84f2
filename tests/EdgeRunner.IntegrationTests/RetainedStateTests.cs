using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EdgeRunner.IntegrationTests;

/// <summary>Retained states are published on change only, so after a reconnect the daemon sends the latest of each again.</summary>
public sealed class RetainedStateTests
{
    [Fact]
    public async Task A_broker_that_lost_its_retained_messages_gets_the_latest_states_again_after_the_reconnect()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var csv = Path.Combine(temp.Path, "short.csv");
        await File.WriteAllLinesAsync(csv, ["ax,ay,az", .. Enumerable.Range(0, 100).Select(i => "0.01,0.02,1.0")], ct);

        var broker = await MosquittoBroker.StartAsync(ct);
        var port = broker.Port;
        var deviceId = "retained-" + Guid.NewGuid().ToString("N")[..8];
        var config = TestConfig.Write(new JsonObject
        {
            ["Device"] = new JsonObject { ["Id"] = deviceId },
            ["Mqtt"] = new JsonObject { ["Host"] = "127.0.0.1", ["Port"] = port, ["ReconnectMaxDelaySeconds"] = 1 },
            ["Models"] = new JsonObject { ["lstm"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("vibration-lstm") } },
            ["Sensors"] = new JsonObject
            {
                ["replay"] = new JsonObject
                {
                    ["Model"] = "lstm",
                    ["Source"] = new JsonObject { ["Kind"] = "Csv", ["Path"] = csv, ["Columns"] = new JsonArray("ax", "ay", "az"), ["SampleRateHz"] = 200, ["Speed"] = 0, ["Loop"] = false },
                },
            },
        });
        var stateTopic = $"edgerunner/{deviceId}/sensors/replay/state";
        using var host = await InProcessDaemon.StartAsync(config, ct);
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        await using (var probe = await MqttProbe.ConnectAsync(port, stateTopic, TimeSpan.FromSeconds(5), ct))
        {
            await probe.WaitForAsync(m => m.Payload.Contains("\"ended\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
        }

        // The broker restarts without persistence: its retained messages are gone.
        await broker.StopGracefullyAsync(ct);
        await broker.DisposeAsync();
        broker = await MosquittoBroker.StartAsync(ct, port);
        await using (broker)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (publisher.Connects < 2 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, ct);
            }

            Assert.True(publisher.Connects >= 2, "the publisher reconnected");
            await using var dashboard = await MqttProbe.ConnectAsync(port, stateTopic, TimeSpan.FromSeconds(5), ct);
            var state = await dashboard.WaitForAsync(m => m.Retain, TimeSpan.FromSeconds(10), ct);
            Assert.Equal("ended", JsonDocument.Parse(state.Payload).RootElement.GetProperty("state").GetString());
            await host.StopAsync(ct);
        }
    }
}
