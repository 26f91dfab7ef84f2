using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Cli;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The manifest's <c>stream.layout</c>: a <c>[1, F, 1, 2]</c> input of complex bins gets interleaved
/// (real, imaginary) pairs when declared <c>complex_interleaved</c>; undeclared, today's guess is kept
/// (and said to be a guess); a declared layout that does not fit the input's shape is refused at startup
/// and by <c>inspect</c>, naming both. The models are identities written by the test, so their output
/// is exactly the input they were fed.
/// </summary>
public sealed class StreamLayoutTests
{
    private const int Bins = 5;

    private static byte[] Identity(object[] shape) => OnnxProto.WriteModel(
        8,
        [(string.Empty, 17)],
        [new OnnxNode("Add", string.Empty, ["x", "zero"], ["y"], [])],
        [new OnnxTensor("zero", OnnxTensor.Float, [], [0f], [])],
        [("x", OnnxTensor.Float, shape)],
        [("y", OnnxTensor.Float, shape)]);

    private static ManifestStreamInput ComplexStream(string layout) => new()
    {
        Input = "x",
        SampleRateHz = 100,
        Channels = ["re", "im"],
        ChunkSamples = Bins,
        Layout = layout,
    };

    private static SequenceStreamProcessor Processor(SequenceModel model, ManifestStreamInput stream) =>
        new("s", model, new object(), stream, [], output: new SequenceOutputSpec(ModelTask.SequenceScore, null));

    [Fact]
    public void A_complex_input_of_shape_1_F_1_2_gets_interleaved_pairs_when_declared()
    {
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "stft.onnx");
        File.WriteAllBytes(path, Identity([1, Bins, 1, 2]));
        using var model = SequenceModel.Load(new SequenceModelOptions { Id = "stft", Path = path, StreamInput = "x", ResultOutput = "y" }, NullLogger.Instance);

        // Bin k is re = k + 1, im = -(k + 1) / 10, interleaved as a source delivers it.
        var samples = Enumerable.Range(0, Bins).SelectMany(k => new[] { k + 1f, -(k + 1) / 10f }).ToArray();

        var declared = Processor(model, ComplexStream("complex_interleaved"));
        declared.Step(samples);
        Assert.Equal(StreamLayout.ComplexInterleaved, declared.Layout);
        Assert.False(declared.LayoutGuessed);
        Assert.Equal(samples, declared.Result.ToArray());

        // Undeclared: today's guess from the last two dims ([1, 2] does not read [samples, channels]) is
        // channel-major, real parts then imaginary parts; it is kept as the default and flagged a guess.
        var guessed = Processor(model, ComplexStream("auto"));
        guessed.Step(samples);
        Assert.Equal(StreamLayout.FeatureTime, guessed.Layout);
        Assert.True(guessed.LayoutGuessed);
        Assert.Equal([.. samples.Where((_, i) => i % 2 == 0), .. samples.Where((_, i) => i % 2 == 1)], guessed.Result.ToArray());
    }

    [Fact]
    public void Time_feature_feeds_samples_as_rows_and_feature_time_as_columns()
    {
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "square.onnx");
        // [batch, 3, 3]: 3 samples of 3 channels, where the shape cannot tell the order.
        File.WriteAllBytes(path, Identity(["batch", 3, 3]));
        using var model = SequenceModel.Load(new SequenceModelOptions { Id = "square", Path = path, StreamInput = "x", ResultOutput = "y" }, NullLogger.Instance);
        float[] samples = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        ManifestStreamInput Stream(string layout) => new() { Input = "x", SampleRateHz = 10, Channels = ["a", "b", "c"], ChunkSamples = 3, Layout = layout };

        var rows = Processor(model, Stream("time_feature"));
        rows.Step(samples);
        Assert.Equal(samples, rows.Result.ToArray());

        var columns = Processor(model, Stream("feature_time"));
        columns.Step(samples);
        Assert.Equal([1, 4, 7, 2, 5, 8, 3, 6, 9], columns.Result.ToArray());
    }

    [Fact]
    public void A_declared_layout_that_does_not_fit_the_input_shape_is_refused_naming_both()
    {
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "cm.onnx");
        File.WriteAllBytes(path, Identity(["batch", 3, 4]));
        using var model = SequenceModel.Load(new SequenceModelOptions { Id = "cm", Path = path, StreamInput = "x", ResultOutput = "y" }, NullLogger.Instance);
        ManifestStreamInput Stream(string layout) => new() { Input = "x", SampleRateHz = 10, Channels = ["a", "b", "c"], ChunkSamples = 4, Layout = layout };

        var error = Assert.Throws<ManifestException>(() => Processor(model, Stream("time_feature")));
        Assert.Contains("stream.layout 'time_feature' reads the input's step as [4 samples, 3 channels], but it is [3, 4]", error.Message, StringComparison.Ordinal);
        Assert.Contains("Model 'cm'", error.Message, StringComparison.Ordinal);

        var complex = Assert.Throws<ManifestException>(() => Processor(model, Stream("complex_interleaved")));
        Assert.Contains("complex_interleaved", complex.Message, StringComparison.Ordinal);

        var unknown = Assert.Throws<ManifestException>(() => Processor(model, Stream("nchw")));
        Assert.Contains("stream.layout 'nchw' is not one of auto, feature_time, time_feature, complex_interleaved", unknown.Message, StringComparison.Ordinal);

        Assert.Equal(StreamLayout.FeatureTime, Processor(model, Stream("feature_time")).Layout);
    }

    [Fact]
    public async Task Inspect_shows_the_layout_in_effect_and_refuses_one_that_does_not_fit()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        JsonObject Body(string layout) => new()
        {
            ["task"] = "sequence_score",
            ["state"] = new JsonArray(),
            ["stream"] = new JsonObject { ["input"] = "x", ["sample_rate_hz"] = 100, ["channels"] = new JsonArray("re", "im"), ["chunk_samples"] = Bins, ["layout"] = layout },
            ["postprocess"] = new JsonObject { ["kind"] = "sequence_score", ["output"] = "y" },
        };

        var (_, good) = await TestManifests.WriteModelAsync(temp.Path, "stft", Identity([1, Bins, 1, 2]), Body("complex_interleaved"), ct);
        var (code, text) = InspectCommand.Run(good);
        Assert.Equal(0, code);
        Assert.Contains("stream: input 'x' takes 10 values per step", text, StringComparison.Ordinal);
        Assert.Contains("layout complex_interleaved [samples, (real, imaginary)] (declared)", text, StringComparison.Ordinal);

        var (_, bad) = await TestManifests.WriteModelAsync(temp.Path, "stft-bad", Identity([1, Bins, 1, 2]), Body("feature_time"), ct);
        (code, text) = InspectCommand.Run(bad);
        Assert.Equal(InspectCommand.ModelError, code);
        Assert.Contains("stream.layout 'feature_time' reads the input's step as [2 channels, 5 samples], but it is [5, 1, 2]", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_daemon_refuses_a_layout_that_does_not_fit_at_startup_and_logs_the_one_in_effect()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        JsonObject Body(string layout) => new()
        {
            ["task"] = "sequence_score",
            ["state"] = new JsonArray(),
            ["stream"] = new JsonObject { ["input"] = "x", ["sample_rate_hz"] = 100, ["channels"] = new JsonArray("re", "im"), ["chunk_samples"] = Bins, ["layout"] = layout },
            ["postprocess"] = new JsonObject { ["kind"] = "sequence_score", ["output"] = "y" },
        };
        var csv = Path.Combine(temp.Path, "stft.csv");
        await File.WriteAllLinesAsync(csv, ["re,im", .. Enumerable.Range(0, 20).Select(i => $"{i},{-i}")], ct);

        await using var scenario = await DaemonScenario.StartAsync("layout", ct);
        var (_, bad) = await TestManifests.WriteModelAsync(temp.Path, "stft-bad", Identity([1, Bins, 1, 2]), Body("time_feature_typo"), ct);
        var config = scenario.WriteConfig(new JsonObject
        {
            ["Models"] = new JsonObject { ["m"] = new JsonObject { ["Manifest"] = bad } },
            ["Sensors"] = new JsonObject { ["bins"] = new JsonObject { ["Model"] = "m", ["Source"] = TestConfig.CsvReplay(csv, 100, "re", "im") } },
        });
        var refused = scenario.StartProcess(["--config", config]);
        Assert.Equal(78, await refused.WaitForExitAsync(TimeSpan.FromSeconds(60), ct));
        Assert.Contains("stream.layout 'time_feature_typo' is not one of", refused.Stdout + refused.Stderr, StringComparison.Ordinal);

        var (_, good) = await TestManifests.WriteModelAsync(temp.Path, "stft", Identity([1, Bins, 1, 2]), Body("complex_interleaved"), ct);
        config = scenario.WriteConfig(new JsonObject
        {
            ["Models"] = new JsonObject { ["m"] = new JsonObject { ["Manifest"] = good } },
            ["Sensors"] = new JsonObject { ["bins"] = new JsonObject { ["Model"] = "m", ["Source"] = TestConfig.CsvReplay(csv, 100, "re", "im") } },
        });
        var probe = await scenario.ProbeAsync("sensors/bins/result", ct);
        var daemon = scenario.StartProcess(["--config", config]);
        var first = await probe.WaitForAsync(_ => true, TimeSpan.FromSeconds(60), ct);
        daemon.Terminate();
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60), ct));
        Assert.Contains("Sensor bins: model m input 'x' is fed as complex_interleaved [samples, (real, imaginary)] (declared)", daemon.Stdout, StringComparison.Ordinal);

        // The identity's output is its input: the first chunk's pairs, interleaved.
        var values = System.Text.Json.JsonDocument.Parse(first.Payload).RootElement.GetProperty("values");
        Assert.Equal([0, 0, 1, -1, 2, -2, 3, -3, 4, -4], Enumerable.Range(0, 10).Select(i => values.GetProperty(i.ToString(System.Globalization.CultureInfo.InvariantCulture)).GetDouble()));
    }
}
