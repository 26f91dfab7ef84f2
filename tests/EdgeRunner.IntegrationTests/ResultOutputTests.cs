using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Publishing;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// A second result output is one class registered with <c>AddResultOutput</c>: the daemon (a simulated sensor
/// stream on the bundled vibration LSTM, a real mosquitto) hands every result to it and to MQTT alike.
/// </summary>
public sealed class ResultOutputTests
{
    /// <summary>An output that keeps every payload it is handed, by topic.</summary>
    private sealed class RecordingOutput : IResultOutput
    {
        public ConcurrentQueue<(string Topic, string Payload)> Received { get; } = new();

        public bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain)
        {
            Received.Enqueue((topic, Encoding.UTF8.GetString(payload)));
            return true;
        }
    }

    [Fact]
    public async Task A_second_output_receives_the_same_results_as_mqtt()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("outputs", ct);
        var resultTopic = scenario.Topic("sensors/pump/result");
        await using var probe = await scenario.ProbeAsync("sensors/pump/result", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["m"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("vibration-lstm") } },
                ["Sensors"] = new JsonObject { ["pump"] = new JsonObject { ["Model"] = "m", ["Source"] = new JsonObject { ["Kind"] = "SimulatedVibration" } } },
            },
            ct,
            services => services.AddResultOutput<RecordingOutput>());
        var recording = host.Services.GetRequiredService<RecordingOutput>();

        var delivered = await probe.WaitForAsync(m => m.Topic == resultTopic, TimeSpan.FromSeconds(60), ct);
        await host.StopAsync(ct);

        // The very payload MQTT delivered was handed to the second output too.
        Assert.Contains((resultTopic, delivered.Payload), recording.Received);
        var composite = Assert.IsType<CompositeResultPublisher>(host.Services.GetRequiredService<IResultPublisher>());
        Assert.Equal(2, composite.Outputs.Count);
    }
}
