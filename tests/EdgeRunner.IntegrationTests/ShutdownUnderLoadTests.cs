using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// A slow recording upsampled to a fast model: the NAB machine-temperature CSV (one sample every five
/// minutes) fed to a 1000 Hz model is 300,000 model steps per source sample, so one block of the source
/// keeps the stream's runner busy for minutes. The daemon warns about the ratio at startup, and a SIGTERM
/// in the middle of such a block still stops it promptly, with exit code 0: the runner checks for the stop
/// between steps. A ratio whose buffers would not fit is refused at startup, naming the key.
/// </summary>
public sealed class ShutdownUnderLoadTests
{
    private const int ChunkSamples = 16;
    private const int Hidden = 1024;

    /// <summary>A classifier that does real work per step (about a million multiply-adds), so 300,000 steps take minutes.</summary>
    private static byte[] BusyClassifier()
    {
        static float[] Weights(int count, float scale) => [.. Enumerable.Range(0, count).Select(i => MathF.Sin(i * 0.37f) * scale)];
        return OnnxProto.WriteModel(
            8,
            [(string.Empty, 17)],
            [
                new OnnxNode("MatMul", string.Empty, ["x", "w1"], ["h1"], []),
                new OnnxNode("MatMul", string.Empty, ["h1", "w2"], ["h2"], []),
                new OnnxNode("MatMul", string.Empty, ["h2", "w3"], ["logits"], []),
                new OnnxNode("Softmax", string.Empty, ["logits"], ["probabilities"], [OnnxProto.IntAttribute("axis", -1)]),
            ],
            [
                new OnnxTensor("w1", OnnxTensor.Float, [ChunkSamples, Hidden], Weights(ChunkSamples * Hidden, 0.01f), []),
                new OnnxTensor("w2", OnnxTensor.Float, [Hidden, Hidden], Weights(Hidden * Hidden, 0.001f), []),
                new OnnxTensor("w3", OnnxTensor.Float, [Hidden, 2], Weights(Hidden * 2, 0.01f), []),
            ],
            [("x", OnnxTensor.Float, ["batch", 1, ChunkSamples])],
            [("probabilities", OnnxTensor.Float, ["batch", 1, 2])]);
    }

    private static async Task<string> ManifestAsync(string folder, double sampleRateHz, CancellationToken ct)
    {
        var (_, manifest) = await TestManifests.WriteModelAsync(
            folder,
            "busy",
            BusyClassifier(),
            new JsonObject
            {
                ["task"] = "sequence_classification",
                ["labels"] = new JsonArray("normal", "hot"),
                ["state"] = new JsonArray(),
                ["stream"] = new JsonObject { ["input"] = "x", ["sample_rate_hz"] = sampleRateHz, ["channels"] = new JsonArray("value"), ["chunk_samples"] = ChunkSamples },
                ["postprocess"] = new JsonObject { ["kind"] = "sequence_classification", ["output"] = "probabilities" },
            },
            ct);
        return manifest;
    }

    private static JsonObject Sections(string manifest) => new()
    {
        ["Models"] = new JsonObject { ["busy"] = new JsonObject { ["Manifest"] = manifest } },
        ["Sensors"] = new JsonObject
        {
            ["temp"] = new JsonObject
            {
                ["Model"] = "busy",
                ["Source"] = new JsonObject
                {
                    ["Kind"] = "Csv",
                    ["Path"] = TestPaths.SharedFile("data/nab/realKnownCause/machine_temperature_system_failure.csv"),
                    ["Columns"] = new JsonArray("value"),
                    ["TimestampColumn"] = "timestamp",
                    ["Speed"] = 0,
                    ["Loop"] = false,
                },
            },
        },
    };

    [Fact]
    public async Task Sigterm_while_a_runner_steps_through_a_300000x_upsampled_block_exits_0_within_the_drain_timeout()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var manifest = await ManifestAsync(temp.Path, 1000, ct);
        const double DrainTimeoutSeconds = 10;

        await using var scenario = await DaemonScenario.StartAsync("busy", ct);
        var config = scenario.WriteConfig(Sections(manifest), new JsonObject { ["DrainTimeoutSeconds"] = DrainTimeoutSeconds, ["QualityOfService"] = 0 });
        var probe = await scenario.ProbeAsync("sensors/temp/result", ct);
        var daemon = scenario.StartProcess(["--config", config]);

        // Results flow: the runner is inside the first block's 300,000 steps (minutes of work) when the stop comes.
        await probe.WaitForAsync(_ => true, TimeSpan.FromSeconds(60), ct);
        await probe.WaitForAsync(m => m.Payload.Contains("\"seq\":50,", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
        daemon.Terminate();

        // WaitForExitAsync throws when the daemon is still running after the drain timeout.
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(DrainTimeoutSeconds), ct));
        Assert.Contains("a ratio of 300000 (above 10)", daemon.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("fail:", daemon.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_ratio_whose_buffers_would_not_fit_is_refused_at_startup_naming_the_key()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();

        // 100 kHz from one sample per five minutes: 30 million model samples per source sample.
        var manifest = await ManifestAsync(temp.Path, 100_000, ct);
        await using var scenario = await DaemonScenario.StartAsync("toofar", ct);
        var daemon = scenario.StartProcess(["--config", scenario.WriteConfig(Sections(manifest))]);

        Assert.Equal(78, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60), ct));
        var output = daemon.Stdout + daemon.Stderr;
        Assert.Contains("Sensors:temp:Source:SampleRateHz: the source's 0.003333 Hz resampled to the model's 100000 Hz is 30000000×", output, StringComparison.Ordinal);
    }
}
