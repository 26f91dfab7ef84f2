using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>A sensor model that cannot be run fails its own streams, named and explained; the other streams go on.</summary>
public sealed class SensorModelFailureTests
{
    [Fact]
    public async Task A_model_whose_state_input_has_no_output_fails_its_stream_and_the_others_keep_running()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();

        // The ONNX LSTM node test as a streaming graph, but with Y_c dropped: initial_c cannot be carried.
        var rig = RecurrentNodeStreamingTests.NodeRig.Create("test_lstm_defaults");
        var (model, manifest) = await TestManifests.WriteModelAsync(
            temp.Path,
            "lstm-without-yc",
            rig.StreamingGraph(dropCellOutput: true),
            new JsonObject
            {
                ["task"] = "sequence_score",
                ["stream"] = new JsonObject { ["input"] = "X", ["batch_axis"] = 1, ["sample_rate_hz"] = 10, ["channels"] = new JsonArray("a", "b"), ["chunk_samples"] = 1 },
                ["postprocess"] = new JsonObject { ["kind"] = "sequence_score", ["output"] = "Y", ["batch_axis"] = 2 },
            },
            ct);
        var csv = Path.Combine(temp.Path, "two-channels.csv");
        await File.WriteAllLinesAsync(csv, ["a,b", "0.1,0.2", "0.3,0.4"], ct);

        await using var scenario = await DaemonScenario.StartAsync("badmodel", ct);
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject
                {
                    ["lstm"] = TestConfig.BundledModel("vibration-lstm"),
                    ["broken"] = new JsonObject { ["Manifest"] = manifest },
                },
                ["Sensors"] = new JsonObject
                {
                    ["pump"] = TestConfig.SimulatedVibration(3),
                    ["valve"] = new JsonObject
                    {
                        ["Model"] = "broken",
                        ["Source"] = new JsonObject { ["Kind"] = "Csv", ["Path"] = csv, ["Columns"] = new JsonArray("a", "b"), ["SampleRateHz"] = 10 },
                    },
                },
            },
            ct);

        var failed = await probe.WaitForAsync(m => m.Topic.EndsWith("/valve/state", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
        var state = JsonDocument.Parse(failed.Payload).RootElement;
        Assert.Equal("failed", state.GetProperty("state").GetString());
        var reason = state.GetProperty("reason").GetString()!;
        Assert.Contains("'initial_c'", reason, StringComparison.Ordinal);
        Assert.Contains("no output matches it", reason, StringComparison.Ordinal);
        Assert.Contains(model, reason, StringComparison.Ordinal);

        // The other stream runs.
        await probe.WaitForAsync(m => m.Topic.EndsWith("/pump/result", StringComparison.Ordinal) && JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64() >= 2, TimeSpan.FromSeconds(30), ct);
        Assert.DoesNotContain(probe.Seen, m => m.Topic.EndsWith("/valve/result", StringComparison.Ordinal));
        await host.StopAsync(ct);

        // Fixed (another model) and restarted: the retained state no longer says failed.
        var restarted = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
                ["Sensors"] = new JsonObject { ["valve"] = TestConfig.SimulatedVibration(4) },
            },
            ct);
        await probe.WaitForAsync(m => m.Topic.EndsWith("/valve/result", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
        await restarted.StopAsync(ct);

        var dashboard = await scenario.ProbeAsync("sensors/valve/state", ct);
        var now = await dashboard.WaitForAsync(m => m.Retain, TimeSpan.FromSeconds(10), ct);
        Assert.Equal("streaming", JsonDocument.Parse(now.Payload).RootElement.GetProperty("state").GetString());
    }
}
