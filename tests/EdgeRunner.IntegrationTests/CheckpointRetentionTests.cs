using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>Checkpoints left by MQTT topics that went away are pruned at start; configured streams' never are.</summary>
public sealed class CheckpointRetentionTests
{
    [Fact]
    public async Task Old_checkpoints_of_dynamic_streams_are_deleted_and_the_rest_kept()
    {
        var ct = TestContext.Current.CancellationToken;
        using var state = new TempFolder();
        var old = DateTime.UtcNow - TimeSpan.FromDays(40);
        string Checkpoint(string name, DateTime written)
        {
            var path = Path.Combine(state.Path, name);
            File.WriteAllBytes(path, [1, 2, 3]);
            File.SetLastWriteTimeUtc(path, written);
            return path;
        }

        var gone = Checkpoint("vib%2Fm-retired.state", old);
        var recent = Checkpoint("vib%2Fm-recent.state", DateTime.UtcNow - TimeSpan.FromDays(2));
        var configured = Checkpoint("press.state", old);

        await using var scenario = await DaemonScenario.StartAsync("prune", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
                ["Sensors"] = new JsonObject
                {
                    ["vib"] = new JsonObject { ["Model"] = "lstm", ["Source"] = new JsonObject { ["Kind"] = "Mqtt", ["Topic"] = $"plant-{scenario.DeviceId}/+/accel", ["Columns"] = new JsonArray("ax", "ay", "az") } },
                },
                ["State"] = new JsonObject { ["Directory"] = state.Path, ["DynamicStreamRetentionDays"] = 30 },
            },
            ct);
        await host.StopAsync(ct);

        Assert.False(File.Exists(gone));
        Assert.True(File.Exists(recent));
        Assert.True(File.Exists(configured));
    }
}
