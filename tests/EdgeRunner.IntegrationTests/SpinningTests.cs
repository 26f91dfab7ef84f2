using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary><c>Models:{name}:Spinning</c> on the real daemon (docs/models.md "Spinning").</summary>
public sealed partial class SpinningTests
{
    private const int ExConfig = 78;

    [Fact]
    public async Task The_demo_camera_model_runs_without_spinning_under_Auto()
    {
        var ct = TestContext.Current.CancellationToken;
        var port = FreePort.Next();
        await using var daemon = DaemonProcess.Start([], new Dictionary<string, string> { ["EDGERUNNER__Mqtt__EmbeddedBroker__Port"] = port.ToString(CultureInfo.InvariantCulture) });
        await using var results = await MqttProbe.ConnectAsync(port, "edgerunner/demo/vision/synthetic/result", TimeSpan.FromSeconds(60), ct);

        // Ready and inferring: the decision was made and logged before the first frame.
        await results.WaitForAsync(_ => true, TimeSpan.FromSeconds(60), ct);
        daemon.Terminate();
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));

        // The demo camera: 5 frames/s on a detector of a few ms, busy far less than half the time.
        var decision = DecisionLine().Match(daemon.Stdout);
        Assert.True(decision.Success, daemon.Stdout);
        Assert.Equal("5", decision.Groups["rate"].Value);
        var duty = double.Parse(decision.Groups["duty"].Value, CultureInfo.InvariantCulture);
        Assert.InRange(duty, 0, 0.5);
    }

    [Fact]
    public async Task An_unknown_spinning_choice_stops_startup_naming_the_key()
    {
        await using var daemon = DaemonProcess.Start(["--Models:shapes-detector:Spinning=Sometimes"]);

        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Contains("Models:shapes-detector:Spinning", daemon.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bench_shows_both_spinning_choices_side_by_side_with_their_CPU_per_run()
    {
        var ct = TestContext.Current.CancellationToken;
        var model = Path.Combine(TestPaths.RepositoryRoot, "models", "bundled", "shapes-detector", "model.onnx");
        await using var bench = DaemonProcess.Start(["bench", model, "--spinning", "both", "--rate", "20", "--threads", "2", "--seconds", "0.5", "--json"]);

        Assert.Equal(0, await bench.WaitForExitAsync(TimeSpan.FromMinutes(3), ct));
        var models = JsonNode.Parse(bench.Stdout)!["models"]!.AsArray();
        Assert.Equal(["on", "off"], models.Select(m => m!["spinning"]!.GetValue<string>()));
        foreach (var result in models)
        {
            Assert.EndsWith("model.onnx", result!["model"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal(20, result["rate_per_second"]!.GetValue<double>());
            Assert.True(result["runs"]!.GetValue<long>() > 0, result.ToJsonString());
            Assert.True(result["cpu_ms_per_run"]!.GetValue<double>() > 0, result.ToJsonString());
            Assert.True(result["cpu_percent"]!.GetValue<double>() > 0, result.ToJsonString());
            Assert.True(result["latency_ms"]!["p50"]!.GetValue<double>() > 0, result.ToJsonString());
        }
    }

    [Fact]
    public async Task Bench_refuses_an_unknown_spinning_choice()
    {
        var model = Path.Combine(TestPaths.RepositoryRoot, "models", "bundled", "shapes-detector", "model.onnx");
        await using var bench = DaemonProcess.Start(["bench", model, "--spinning", "sometimes"]);

        Assert.Equal(64, await bench.WaitForExitAsync(TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken));
        Assert.Contains("--spinning takes on, off or both (got 'sometimes')", bench.Stderr, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"Model shapes-detector: spinning off \(duty cycle (?<duty>[0-9.]+): (?<rate>[0-9.]+) runs/s × [0-9.]+ ms\)")]
    private static partial Regex DecisionLine();
}
