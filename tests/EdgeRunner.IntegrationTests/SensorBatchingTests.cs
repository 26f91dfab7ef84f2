using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.IntegrationTests;

/// <summary>Streams of one model are stepped together in one run, and none sees another's state.</summary>
public sealed class SensorBatchingTests
{
    private const int Steps = 10;

    private static async Task<(Dictionary<long, double[]> Results, long Runs, long StreamSteps)> RunAsync(int streams, CancellationToken ct, int maxBatch = 64)
    {
        await using var scenario = await DaemonScenario.StartAsync("batch", ct);
        var sensors = new JsonObject();
        for (var i = 0; i < streams; i++)
        {
            // Stream "m3" is the same machine (seed 303) whatever else runs beside it.
            sensors[$"m{i + 3 - Math.Min(3, streams - 1)}"] = TestConfig.SimulatedVibration(300 + i + 3 - Math.Min(3, streams - 1));
        }

        var probe = await scenario.ProbeAsync("sensors/m3/result", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("vibration-lstm"), ["BatchWaitMilliseconds"] = 40, ["MaxBatch"] = maxBatch } },
                ["Sensors"] = sensors,
            },
            ct);
        await probe.WaitForAsync(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64() >= Steps, TimeSpan.FromSeconds(60), ct);
        var batcher = Assert.Single(host.Services.GetRequiredService<SensorService>().Batchers);
        var (runs, streamSteps) = (batcher.Runs, batcher.Steps);
        await host.StopAsync(ct);
        var results = probe.Seen
            .Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .GroupBy(r => r.GetProperty("seq").GetInt64())
            .ToDictionary(g => g.Key, g => g.First().GetProperty("probabilities").EnumerateObject().Select(p => p.Value.GetDouble()).ToArray());
        return (results, runs, streamSteps);
    }

    [Fact]
    public async Task Eight_streams_are_batched_and_each_matches_the_same_machine_running_alone()
    {
        var ct = TestContext.Current.CancellationToken;
        var alone = await RunAsync(streams: 1, ct);
        var batched = await RunAsync(streams: 8, ct);

        Assert.True(batched.StreamSteps >= 2 * batched.Runs, $"mean batch {(double)batched.StreamSteps / batched.Runs:0.0} ({batched.StreamSteps} steps in {batched.Runs} runs)");
        for (long seq = 0; seq <= Steps; seq++)
        {
            var difference = batched.Results[seq].Zip(alone.Results[seq], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(difference <= 1e-5, $"step {seq}: max |Δ| {difference}");
        }
    }

    [Fact]
    public async Task MaxBatch_caps_the_streams_stepped_in_one_run()
    {
        var ct = TestContext.Current.CancellationToken;
        var alone = await RunAsync(streams: 1, ct);
        var capped = await RunAsync(streams: 8, ct, maxBatch: 3);

        // 8 streams in batches of at most 3: at least ⌈8/3⌉ runs per round of steps, and still batched.
        Assert.True(capped.StreamSteps <= 3 * capped.Runs, $"{capped.StreamSteps} stream steps in {capped.Runs} runs exceed 3 per run");
        Assert.True(capped.StreamSteps > capped.Runs, "nothing was batched");
        for (long seq = 0; seq <= Steps; seq++)
        {
            var difference = capped.Results[seq].Zip(alone.Results[seq], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(difference <= 1e-5, $"step {seq}: max |Δ| {difference}");
        }
    }
}
