using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EdgeRunner.IntegrationTests;

/// <summary>What subscribers complain about in other daemons: results lost while the broker is down.</summary>
public sealed class BrokerOutageTests
{
    [Fact]
    public async Task Results_produced_while_the_broker_is_down_are_delivered_after_it_returns_without_gaps()
    {
        var ct = TestContext.Current.CancellationToken;
        var image = TestPaths.SharedFile("images/goldfish.jpg");
        var model = TestConfig.MobileNetModel();
        var persistence = Directory.CreateTempSubdirectory("edgerunner-outage-").FullName;
        try
        {
            var broker = await MosquittoBroker.StartAsync(ct, persistenceDirectory: persistence);
            var port = broker.Port;
            var deviceId = "outage-" + Guid.NewGuid().ToString("N")[..8];
            var configFile = TestConfig.Write(new JsonObject
            {
                ["Device"] = new JsonObject { ["Id"] = deviceId },
                ["Mqtt"] = new JsonObject { ["Host"] = "127.0.0.1", ["Port"] = port, ["ReconnectMaxDelaySeconds"] = 1 },
                ["Models"] = new JsonObject { ["mobilenet"] = model },
                ["Cameras"] = new JsonObject
                {
                    ["cam"] = new JsonObject
                    {
                        ["Model"] = "mobilenet",
                        ["Fps"] = 10,
                        ["Source"] = new JsonObject { ["Kind"] = "Images", ["Path"] = image, ["Loop"] = true },
                    },
                },
            });

            // A subscriber with a persistent session, like a cloud bridge: the broker keeps its messages while it is away.
            await using var probe = await MqttProbe.ConnectAsync(port, $"edgerunner/{deviceId}/vision/+/result", TimeSpan.FromSeconds(5), ct, persistentClientId: "bridge-" + deviceId);
            var configuration = EdgeRunnerHost.BuildConfiguration(configFile, []);
            using var host = EdgeRunnerHost.Build(configuration);
            await host.StartAsync(ct);
            var publisher = host.Services.GetRequiredService<MqttPublisher>();

            static long Seq(ReceivedMessage m) => JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64();
            await probe.WaitForAsync(m => Seq(m) >= 3, TimeSpan.FromSeconds(30), ct);

            // Outage: the broker goes away for a while; the camera keeps producing.
            await broker.StopGracefullyAsync(ct);
            await broker.DisposeAsync();
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            broker = await MosquittoBroker.StartAsync(ct, port, persistence);
            await using (broker)
            {
                await probe.ReconnectAsync(TimeSpan.FromSeconds(10), ct);
                var lastBeforeStop = probe.Seen.Max(Seq);
                await probe.WaitForAsync(m => Seq(m) >= lastBeforeStop + 40, TimeSpan.FromSeconds(60), ct);
                await host.StopAsync(ct);

                var received = probe.Seen.Select(Seq).Distinct().Order().ToList();
                var first = received[0];
                var missing = Enumerable.Range((int)first, (int)(received[^1] - first + 1)).Select(i => (long)i).Except(received).ToList();
                Assert.Empty(missing);
                Assert.True(publisher.Connects >= 2, $"publisher reconnected ({publisher.Connects} connections)");
                Assert.Equal(0, publisher.Dropped);
            }
        }
        finally
        {
            Directory.Delete(persistence, recursive: true);
        }
    }
}
