using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Cli;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Sequence models whose first dimension is fixed above 1: an autoencoder over a window of frames
/// (<c>[6, 4]</c> here, <c>[217, 640]</c> in the wild). Read as a batch axis it cannot run, so it is
/// refused when loaded and by <c>inspect</c>, naming the dimension; declared as part of the step
/// (<c>stream.batch_axis</c> -1) it runs, one stream per run. The model (half its input) is written by the test.
/// </summary>
public sealed class FixedBatchTests
{
    private const int Frames = 6;
    private const int Features = 4;

    private static byte[] HalfWindow() => OnnxProto.WriteModel(
        8,
        [(string.Empty, 17)],
        [new OnnxNode("Mul", string.Empty, ["x", "half"], ["reconstruction"], [])],
        [new OnnxTensor("half", OnnxTensor.Float, [], [0.5f], [])],
        [("x", OnnxTensor.Float, [Frames, Features])],
        [("reconstruction", OnnxTensor.Float, [Frames, Features])]);

    private static JsonObject Body(int? batchAxis) => new()
    {
        ["task"] = "sequence_reconstruction",
        ["state"] = new JsonArray(),
        ["stream"] = batchAxis is { } axis
            ? new JsonObject { ["input"] = "x", ["sample_rate_hz"] = 10, ["channels"] = new JsonArray("f0", "f1", "f2", "f3"), ["chunk_samples"] = Frames, ["batch_axis"] = axis, ["layout"] = "time_feature" }
            : new JsonObject { ["input"] = "x", ["sample_rate_hz"] = 10, ["channels"] = new JsonArray("f0", "f1", "f2", "f3"), ["chunk_samples"] = Frames },
        ["postprocess"] = new JsonObject { ["kind"] = "sequence_reconstruction", ["output"] = "reconstruction" },
    };

    [Fact]
    public void A_fixed_first_dimension_read_as_the_batch_axis_is_refused_naming_it()
    {
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "window.onnx");
        File.WriteAllBytes(path, HalfWindow());

        var error = Assert.Throws<ModelLoadException>(() => SequenceModel.Load(
            new SequenceModelOptions { Id = "window", Path = path, StreamInput = "x", ResultOutput = "reconstruction", ValuesPerStep = Frames * Features },
            NullLogger.Instance));
        Assert.Contains("stream input 'x' [6,4] has dimension 0 fixed at 6", error.Message, StringComparison.Ordinal);
        Assert.Contains("stream.batch_axis -1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Declared_without_a_batch_axis_the_window_is_one_step()
    {
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "window.onnx");
        File.WriteAllBytes(path, HalfWindow());
        using var model = SequenceModel.Load(
            new SequenceModelOptions { Id = "window", Path = path, StreamInput = "x", ResultOutput = "reconstruction", StreamBatchAxis = -1, ResultBatchAxis = 0, ValuesPerStep = Frames * Features },
            NullLogger.Instance);
        Assert.Equal(Frames * Features, model.ChunkLength);
        Assert.Equal(Frames * Features, model.ResultLength);
        Assert.Equal(1, model.MaxBatch);

        var stream = new ManifestStreamInput { Input = "x", SampleRateHz = 10, Channels = ["f0", "f1", "f2", "f3"], ChunkSamples = Frames, BatchAxis = -1, Layout = "time_feature" };
        var processor = new SequenceStreamProcessor("s", model, new object(), stream, [], output: new SequenceOutputSpec(ModelTask.SequenceReconstruction, null));
        var window = Enumerable.Range(0, Frames * Features).Select(i => (float)i).ToArray();
        processor.Step(window);

        // [frames, features] is how samples arrive: the reconstruction is half of each, in the same order.
        Assert.Equal(window.Select(v => v / 2), processor.Result.ToArray());
        Assert.Equal(window.Average(v => (double)(v / 2) * (v / 2)), processor.Score, 3);
    }

    [Fact]
    public async Task Inspect_names_the_fixed_dimension_and_accepts_the_declared_window()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var (_, undeclared) = await TestManifests.WriteModelAsync(temp.Path, "window", HalfWindow(), Body(null), ct);
        var (code, text) = InspectCommand.Run(undeclared);
        Assert.Equal(InspectCommand.ModelError, code);
        Assert.Contains("stream input 'x' [6,4] has dimension 0 fixed at 6", text, StringComparison.Ordinal);

        var (_, declared) = await TestManifests.WriteModelAsync(temp.Path, "window-declared", HalfWindow(), Body(-1), ct);
        (code, text) = InspectCommand.Run(declared);
        Assert.Equal(0, code);
        Assert.Contains("stream: input 'x' takes 24 values per step", text, StringComparison.Ordinal);
        Assert.Contains("no batch axis (one stream per run)", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_daemon_refuses_the_undeclared_window_at_startup_and_runs_the_declared_one()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var csv = Path.Combine(temp.Path, "frames.csv");
        await File.WriteAllLinesAsync(csv, ["f0,f1,f2,f3", .. Enumerable.Range(0, Frames * 2).Select(i => $"{i},{i + 1},{i + 2},{i + 3}")], ct);
        var (_, undeclared) = await TestManifests.WriteModelAsync(temp.Path, "window", HalfWindow(), Body(null), ct);
        var (_, declared) = await TestManifests.WriteModelAsync(temp.Path, "window-declared", HalfWindow(), Body(-1), ct);

        await using var scenario = await DaemonScenario.StartAsync("window", ct);
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject
                {
                    ["undeclared"] = new JsonObject { ["Manifest"] = undeclared },
                    ["declared"] = new JsonObject { ["Manifest"] = declared },
                },
                ["Sensors"] = new JsonObject
                {
                    ["a"] = new JsonObject { ["Model"] = "undeclared", ["Source"] = TestConfig.CsvReplay(csv, 10, "f0", "f1", "f2", "f3") },
                    ["b"] = new JsonObject { ["Model"] = "declared", ["Source"] = TestConfig.CsvReplay(csv, 10, "f0", "f1", "f2", "f3") },
                },
            },
            ct);

        // The undeclared one fails before any step, saying why; the declared one reconstructs both windows.
        var failed = await probe.WaitForAsync(m => m.Topic.EndsWith("sensors/a/state", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
        Assert.Contains("\"failed\"", failed.Payload, StringComparison.Ordinal);
        Assert.Contains("has dimension 0 fixed at 6", failed.Payload, StringComparison.Ordinal);
        await probe.WaitForAsync(m => m.Topic.EndsWith("sensors/b/state", StringComparison.Ordinal) && m.Payload.Contains("\"ended\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
        await host.StopAsync(ct);

        Assert.DoesNotContain(probe.Seen, m => m.Topic.EndsWith("sensors/a/result", StringComparison.Ordinal));
        var results = probe.Seen.Where(m => m.Topic.EndsWith("sensors/b/result", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, results.Count);
        Assert.All(results, r => Assert.Equal(Frames, System.Text.Json.JsonDocument.Parse(r.Payload).RootElement.GetProperty("window").GetProperty("samples").GetInt32()));
    }
}

/// <summary>
/// Camera models with a fixed batch above 1 (a CIFAR-10 classifier exported as <c>[16, 3, 32, 32]</c>): the
/// batch is padded, each frame in the first slot, and the first slot's output is what the decoders read.
/// The model (per-channel means of each image) is written by the test.
/// </summary>
public sealed class FixedBatchCameraModelTests
{
    private const int Batch = 16;
    private const byte Red = 200;
    private const byte Green = 100;
    private const byte Blue = 51;

    private static string WriteMeansModel(string folder)
    {
        var path = Path.Combine(folder, "batch16.onnx");
        File.WriteAllBytes(path, OnnxProto.WriteModel(
            8,
            [(string.Empty, 18)],
            [new OnnxNode("ReduceMean", string.Empty, ["images", "axes"], ["means"], [OnnxProto.IntAttribute("keepdims", 0)])],
            [new OnnxTensor("axes", OnnxTensor.Int64, [2], [], [2, 3])],
            [("images", OnnxTensor.Float, [Batch, 3, 32, 32])],
            [("means", OnnxTensor.Float, [Batch, 3])]));
        return path;
    }

    [Fact]
    public void A_fixed_batch_of_16_is_padded_the_frame_in_the_first_slot_and_its_output_read()
    {
        using var temp = new TempFolder();
        var spec = new EdgeRunner.Models.Preprocessing.ImagePreprocessingSpec { Width = 32, Height = 32, Mean = [0f, 0f, 0f], Std = [1f, 1f, 1f] };
        using var session = ModelSession.Load(
            new ModelSessionOptions { Id = "batch16", Path = WriteMeansModel(temp.Path), ExpectedInputShape = spec.TensorShape(), ExecutionProviders = ["cpu"] },
            NullLogger.Instance);

        Assert.Equal(Batch, session.FixedBatch);
        Assert.Equal([Batch, 3, 32, 32], session.InputShape);
        Assert.Equal(3 * 32 * 32, session.Input.Length);
        Assert.Equal([1, 3], session.OutputShape(0));

        var pool = new EdgeRunner.Hardware.Imaging.FramePool();
        using var frame = pool.Rent(64, 48, EdgeRunner.Hardware.Imaging.FramePixelFormat.Bgr24);
        for (var i = 0; i < 64 * 48; i++)
        {
            var row = frame.Pixels.Slice((i / 64) * frame.Stride, 64 * 3);
            row[(i % 64) * 3] = Blue;
            row[((i % 64) * 3) + 1] = Green;
            row[((i % 64) * 3) + 2] = Red;
        }

        var head = new MeansHead();
        using var processor = new EdgeRunner.Service.Vision.VisionFrameProcessor(session, new EdgeRunner.Models.Preprocessing.ImagePreprocessor(spec), head);
        processor.Process(frame);

        // RGB means of the first slot: the frame's colour; the padding's outputs are not part of it.
        Assert.Equal([Red / 255f, Green / 255f, Blue / 255f], head.Means.Select(m => MathF.Round(m, 4)), new ToleranceComparer(1e-3f));
        AllocationAssert.SteadyStateIsZero(() => processor.Process(frame));
    }

    [Fact]
    public void A_fixed_batch_model_of_another_image_size_is_still_refused_naming_the_shape()
    {
        using var temp = new TempFolder();
        var error = Assert.Throws<ModelLoadException>(() => ModelSession.Load(
            new ModelSessionOptions { Id = "batch16", Path = WriteMeansModel(temp.Path), ExpectedInputShape = [1, 3, 64, 64], ExecutionProviders = ["cpu"] },
            NullLogger.Instance));
        Assert.Contains("has shape [16,3,32,32] but", error.Message, StringComparison.Ordinal);
    }

    private sealed class ToleranceComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(float obj) => 0;
    }

    /// <summary>Copies the model's output so the test can read what the processor decoded.</summary>
    private sealed class MeansHead : EdgeRunner.Service.Vision.IVisionHead
    {
        public float[] Means { get; } = new float[3];

        public System.Text.Json.JsonEncodedText Task { get; } = System.Text.Json.JsonEncodedText.Encode("means");

        public int Count => 3;

        public (string Label, float Score) Top => ("red", Means[0]);

        public void Decode(ModelSession session, in EdgeRunner.Models.Preprocessing.SourceMapping mapping, int frameWidth, int frameHeight) => session.Output(0).CopyTo(Means);

        public void Write(System.Text.Json.Utf8JsonWriter writer)
        {
        }
    }
}
