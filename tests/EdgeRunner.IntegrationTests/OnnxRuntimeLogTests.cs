using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// ONNX Runtime's own log goes through the daemon's logging: the UltraFace RFB-320 of ../shared, whose graph lists
/// its initializers among its inputs, makes ONNX Runtime warn once per initializer; the daemon logs the first
/// warning once and the rest as a count, with no escape codes, and nothing of it reaches stderr.
/// </summary>
public sealed partial class OnnxRuntimeLogTests
{
    private const string UltraFaceSha256 = "34cd7e60aeff28744c657de7a3dc64e872d506741de66987f3426f2b79f88017";

    [Fact]
    public async Task Initializer_warnings_of_a_real_model_are_logged_once_with_a_count_and_never_on_stderr()
    {
        var ct = TestContext.Current.CancellationToken;
        var model = TestPaths.SharedFile("models/ultraface-rfb-320/model.onnx");
        Assert.Equal(UltraFaceSha256, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(model, ct))));
        await using var scenario = await DaemonScenario.StartAsync("ortlog", ct);
        var config = scenario.WriteConfig(new JsonObject
        {
            ["Models"] = new JsonObject
            {
                ["faces"] = new JsonObject
                {
                    ["Path"] = model,
                    ["Task"] = "Detection",
                    ["Preprocess"] = new JsonObject
                    {
                        ["Width"] = 320,
                        ["Height"] = 240,
                        ["Scale"] = 1,
                        ["Mean"] = new JsonArray(127, 127, 127),
                        ["Std"] = new JsonArray(128, 128, 128),
                    },
                    ["Detection"] = new JsonObject { ["Decoder"] = "ssd", ["ScoreThreshold"] = 0.7 },
                },
            },
            ["Cameras"] = new JsonObject
            {
                ["cam"] = new JsonObject { ["Model"] = "faces", ["Fps"] = 5, ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 320, ["Height"] = 240 } },
            },
            ["Sensors"] = new JsonObject(),
        });
        var probe = await scenario.ProbeAsync("vision/cam/result", ct);
        var daemon = scenario.StartProcess(["--config", config]);

        // A result means the model was loaded (and its warnings were given) before it.
        await probe.WaitForAsync(_ => true, TimeSpan.FromSeconds(60), ct);
        daemon.Terminate();
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));

        var lines = daemon.Stdout.Split('\n');
        var first = Assert.Single(lines, l => l.Contains("appears in graph inputs", StringComparison.Ordinal) && !l.Contains("repeated", StringComparison.Ordinal));
        Assert.Contains("warn: OnnxRuntime", first, StringComparison.Ordinal);
        var summary = Assert.Single(lines, l => l.Contains("repeated", StringComparison.Ordinal) && l.Contains("appears in graph inputs", StringComparison.Ordinal));
        var count = int.Parse(RepeatCount().Match(summary).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(count > 1, summary);
        Assert.DoesNotContain("appears in graph inputs", daemon.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', daemon.Stdout + daemon.Stderr);
    }

    [GeneratedRegex(@"repeated (\d+) more times")]
    private static partial Regex RepeatCount();
}
