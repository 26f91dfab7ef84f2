using System.Globalization;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Cli;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// <c>edgerunner bench</c> and the provider in <c>edgerunner evaluate</c>, through the real command line and the real
/// ONNX Runtime on the bundled and shared models. Asserts on structure and sanity (positive, ordered percentiles, the
/// provider named), never on speed.
/// </summary>
public sealed class BenchCommandTests
{
    private const int ExUsage = 64;
    private const int ExDataErr = 65;
    private static readonly TimeSpan Exit = TimeSpan.FromMinutes(3);

    private static string Bundled(string relative) => Path.Combine(TestPaths.RepositoryRoot, "models", "bundled", relative);

    private static JsonArray Models(string stdout) => JsonNode.Parse(stdout)!["models"]!.AsArray();

    private static void AssertSane(JsonNode model)
    {
        var latency = model["latency_ms"]!;
        var p50 = latency["p50"]!.GetValue<double>();
        var p90 = latency["p90"]!.GetValue<double>();
        var p99 = latency["p99"]!.GetValue<double>();
        Assert.True(p50 > 0, model.ToJsonString());
        Assert.True(p50 <= p90 && p90 <= p99, model.ToJsonString());
        Assert.True(model["runs"]!.GetValue<long>() > 0, model.ToJsonString());
        Assert.True(model["first_run_ms"]!.GetValue<double>() > 0, model.ToJsonString());
        Assert.True(model["throughput_per_second"]!.GetValue<double>() > 0, model.ToJsonString());
        Assert.Equal(64, model["sha256"]!.GetValue<string>().Length);
    }

    [Fact]
    public async Task FP32_and_INT8_side_by_side_as_JSON_name_the_provider_and_give_ordered_percentiles()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bench = DaemonProcess.Start(["bench", Bundled("shapes-detector/model.fp32.onnx"), Bundled("shapes-detector/model.json"), "--seconds", "1", "--json"]);

        Assert.Equal(0, await bench.WaitForExitAsync(Exit, ct));
        var models = Models(bench.Stdout);
        Assert.Equal(2, models.Count);
        Assert.EndsWith("model.fp32.onnx", models[0]!["model"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.EndsWith(Path.Combine("shapes-detector", "model.onnx"), models[1]!["model"]!.GetValue<string>(), StringComparison.Ordinal); // from the manifest
        Assert.NotEqual(models[0]!["sha256"]!.GetValue<string>(), models[1]!["sha256"]!.GetValue<string>());
        foreach (var model in models)
        {
            AssertSane(model!);
            Assert.Equal("CPUExecutionProvider", model!["execution_provider"]!.GetValue<string>());
            Assert.Null(model["fallback_reason"]);
            var input = Assert.Single(model["inputs"]!.AsArray());
            Assert.Equal("float", input!["element_type"]!.GetValue<string>());
            Assert.Equal([1L, 3, 320, 320], input["shape"]!.AsArray().Select(d => d!.GetValue<long>()));
        }

        Assert.DoesNotContain('\r', bench.Stderr); // Redirected: no progress display.
    }

    [Fact]
    public async Task A_shared_model_as_a_table_on_one_thread()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bench = DaemonProcess.Start(["bench", TestPaths.SharedFile("models/mobilenetv2-12-int8/model.onnx"), "--seconds", "1", "--threads", "1"]);

        Assert.Equal(0, await bench.WaitForExitAsync(Exit, ct));
        var lines = bench.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToDictionary(l => l[..l.IndexOf(' ', StringComparison.Ordinal)], l => l[l.IndexOf(' ', StringComparison.Ordinal)..].Trim());
        Assert.Equal("CPUExecutionProvider", lines["provider"]);
        Assert.Equal("1", lines["threads"]);
        Assert.StartsWith("input float [", lines["inputs"], StringComparison.Ordinal);
        double Ms(string key) => double.Parse(lines[key].Replace(" ms", string.Empty, StringComparison.Ordinal), CultureInfo.InvariantCulture);
        Assert.True(Ms("p50") > 0 && Ms("p50") <= Ms("p90") && Ms("p90") <= Ms("p99"), bench.Stdout);
        Assert.EndsWith(" /s", lines["throughput"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_absent_provider_falls_back_to_CPU_and_says_why()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bench = DaemonProcess.Start(["bench", Bundled("shapes-detector/model.onnx"), "--provider", "tensorrt", "--seconds", "0.5", "--json"]);

        Assert.Equal(0, await bench.WaitForExitAsync(Exit, ct));
        var model = Assert.Single(Models(bench.Stdout))!;
        AssertSane(model);
        Assert.Equal("tensorrt", model["requested_provider"]!.GetValue<string>());
        Assert.Equal("CPUExecutionProvider", model["execution_provider"]!.GetValue<string>());
        Assert.Contains("TensorrtExecutionProvider is not in this ONNX Runtime build", model["fallback_reason"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stateful_sequence_model_and_a_uint8_input_model_get_inputs_of_their_types_and_shapes()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bench = DaemonProcess.Start(["bench", Bundled("vibration-lstm/model.onnx"), Path.Combine(AppContext.BaseDirectory, "Fixtures", "uint8-mean.onnx"), "--dim", "steps=4", "--seconds", "0.5", "--json"]);

        Assert.Equal(0, await bench.WaitForExitAsync(Exit, ct));
        var models = Models(bench.Stdout);
        var lstm = models[0]!;
        AssertSane(lstm);
        var inputs = lstm["inputs"]!.AsArray().ToDictionary(i => i!["name"]!.GetValue<string>(), i => i!["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray());
        Assert.Equal([1L, 4, 3, 50], inputs["x"]);
        Assert.Equal([1L, 1, 48], inputs["h0"]);
        var uint8 = models[1]!;
        AssertSane(uint8);
        Assert.Equal("uint8", Assert.Single(uint8["inputs"]!.AsArray())!["element_type"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(ExUsage, "--provider", "tpu")]
    [InlineData(ExUsage, "--seconds", "0")]
    [InlineData(ExUsage, "--dim", "steps")]
    [InlineData(ExDataErr, "--seconds", "1")]
    public async Task Bad_options_and_files_that_are_not_models_are_refused(int exitCode, string option, string value)
    {
        var ct = TestContext.Current.CancellationToken;
        var notAModel = Path.Combine(TestPaths.RepositoryRoot, "models", "bundled", "shapes-detector", "labels.txt");
        await using var bench = DaemonProcess.Start(["bench", exitCode == ExDataErr ? notAModel : Bundled("shapes-detector/model.onnx"), option, value]);

        Assert.Equal(exitCode, await bench.WaitForExitAsync(Exit, ct));
        Assert.StartsWith("edgerunner bench: ", bench.Stderr, StringComparison.Ordinal);
        Assert.True(string.IsNullOrWhiteSpace(bench.Stdout), bench.Stdout);
    }

    [Fact]
    public void On_a_terminal_a_progress_line_is_rewritten_in_place_and_cleared()
    {
        using var progress = new StringWriter();

        var (code, text) = BenchCommand.Run([Bundled("shapes-detector/model.onnx")], "cpu", 1, 1, [], json: false, progress, TestContext.Current.CancellationToken);

        Assert.Equal(0, code);
        Assert.Contains("p99", text, StringComparison.Ordinal);
        var shown = progress.ToString();
        Assert.StartsWith("\rmodel.onnx: ", shown, StringComparison.Ordinal);
        Assert.Contains(" runs, last ", shown, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', shown);
        Assert.EndsWith("\r", shown, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Evaluate_names_the_provider_of_every_model()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var evaluate = DaemonProcess.Start(["evaluate", "--frames", "10", "--seconds", "20"]);

        Assert.Equal(0, await evaluate.WaitForExitAsync(Exit, ct));
        var headers = evaluate.Stdout.Split('\n').Where(l => l.StartsWith("camera ", StringComparison.Ordinal) || l.StartsWith("sensors ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, headers.Count);
        Assert.All(headers, h => Assert.Contains("…, CPUExecutionProvider)", h, StringComparison.Ordinal));
    }
}
