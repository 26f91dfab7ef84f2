using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>A real recorded vibration stream replayed through the CSV source and the daemon, beside a simulated one.</summary>
public sealed class SensorReplayThroughDaemonTests
{
    [Fact]
    public async Task ST_fan_recording_is_resampled_stepped_and_published_beside_a_simulated_machine()
    {
        var ct = TestContext.Current.CancellationToken;
        var recording = TestPaths.SharedFile("data/st-fan-vibration/fan_fault.txt");
        await using var scenario = await DaemonScenario.StartAsync("replay", ct);
        var config = scenario.WriteConfig(new JsonObject
        {
            ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
            ["Sensors"] = new JsonObject
            {
                // 104 Hz recording, resampled to the model's 200 Hz, replayed 20x faster than recorded.
                ["fan-rack"] = new JsonObject
                {
                    ["Model"] = "lstm",
                    ["Source"] = new JsonObject
                    {
                        ["Kind"] = "Csv",
                        ["Path"] = recording,
                        ["Columns"] = new JsonArray("A_X", "A_Y", "A_Z"),
                        ["SampleRateHz"] = 104,
                        ["Speed"] = 20,
                        ["Loop"] = false,
                    },
                },
                ["sim"] = TestConfig.SimulatedVibration(7),
            },
        });
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        var host = await scenario.StartHostAsync(config, ct);

        var windows = new List<JsonElement>();
        while (windows.Count < 20)
        {
            var message = await probe.WaitForAsync(m => m.Topic.EndsWith("/fan-rack/result", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
            windows.Add(JsonDocument.Parse(message.Payload).RootElement);
        }

        await probe.WaitForAsync(m => m.Topic.EndsWith("/sim/result", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
        await host.StopAsync(ct);

        // Consecutive steps, each 50 model samples = 0.25 s of recording, windows back to back.
        for (var i = 0; i < windows.Count; i++)
        {
            Assert.Equal(i, windows[i].GetProperty("seq").GetInt64());
            Assert.Equal(i + 1, windows[i].GetProperty("state_steps").GetInt64());
            var start = windows[i].GetProperty("window").GetProperty("start").GetDateTimeOffset();
            var end = windows[i].GetProperty("window").GetProperty("end").GetDateTimeOffset();
            Assert.Equal(0.25, (end - start).TotalSeconds, 6);
            if (i > 0)
            {
                Assert.Equal(windows[i - 1].GetProperty("window").GetProperty("end").GetDateTimeOffset(), start);
            }

            var sum = windows[i].GetProperty("probabilities").EnumerateObject().Sum(p => p.Value.GetDouble());
            Assert.Equal(1.0, sum, 3);
        }
    }
}
