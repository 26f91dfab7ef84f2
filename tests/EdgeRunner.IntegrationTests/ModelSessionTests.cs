using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Preprocessing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.IntegrationTests;

/// <summary>ModelSession against real ONNX files: loading, shape checks, provider fallback, and results.</summary>
public sealed class ModelSessionTests
{
    private static ModelSessionOptions MobileNet(IReadOnlyList<long>? shape = null, IReadOnlyList<string>? providers = null, bool allowFallback = true) => new()
    {
        Id = "mobilenet",
        Path = TestPaths.SharedFile("models/mobilenetv2-12-int8/model.onnx"),
        ExpectedInputShape = shape ?? [1, 3, 224, 224],
        ExecutionProviders = providers ?? ["cpu"],
        AllowFallback = allowFallback,
    };

    [Fact]
    public void Mismatched_input_shape_names_model_input_and_both_shapes()
    {
        var ex = Assert.Throws<ModelLoadException>(() => ModelSession.Load(MobileNet([1, 3, 300, 300]) with { ExpectedInputDescription = "preprocessing 300x300" }, NullLogger.Instance));

        Assert.Contains("Model 'mobilenet'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("mobilenetv2-12-int8/model.onnx", ex.Message, StringComparison.Ordinal);
        Assert.Contains("input 'input'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(",3,224,224]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("preprocessing 300x300 produces [1,3,300,300]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_that_is_not_a_model_is_refused_with_its_path()
    {
        var path = Path.Combine(Path.GetTempPath(), $"not-a-model-{Guid.NewGuid():N}.onnx");
        File.WriteAllText(path, "this is not protobuf");
        try
        {
            var ex = Assert.Throws<ModelLoadException>(() => ModelSession.Load(new ModelSessionOptions { Id = "broken", Path = path }, NullLogger.Instance));
            Assert.Contains(path, ex.Message, StringComparison.Ordinal);
            Assert.Contains("Model 'broken'", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void An_unavailable_GPU_provider_falls_back_to_CPU_visibly()
    {
        Assert.SkipWhen(ExecutionProviders.Available.Contains("CUDAExecutionProvider"), "CUDA is available here; nothing to fall back from.");

        using var session = ModelSession.Load(MobileNet(providers: ["cuda", "cpu"]), NullLogger.Instance);

        Assert.Equal("CPUExecutionProvider", session.ExecutionProvider);
        Assert.Contains("CUDAExecutionProvider is not in this ONNX Runtime build", session.FallbackReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Fallback_can_be_forbidden()
    {
        Assert.SkipWhen(ExecutionProviders.Available.Contains("CUDAExecutionProvider"), "CUDA is available here; nothing to fall back from.");

        var ex = Assert.Throws<ModelLoadException>(() => ModelSession.Load(MobileNet(providers: ["cuda"], allowFallback: false), NullLogger.Instance));

        Assert.Contains("fallback is disabled", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("goldfish.jpg", 1)]
    [InlineData("kimono.jpg", 614)]
    [InlineData("cat.jpg", 281)]
    public void Reference_images_give_the_recorded_top1(string image, int classId)
    {
        using var session = ModelSession.Load(MobileNet(), NullLogger.Instance);
        var labels = LabelSet.Load(TestPaths.SharedFile("models/mobilenetv2-12-int8/synset.txt"));
        var pre = new ImagePreprocessor(new ImagePreprocessingSpec
        {
            Width = 224,
            Height = 224,
            Resize = ResizeMode.CenterCrop,
            ResizeShorterSide = 256,
            Mean = [0.485f, 0.456f, 0.406f],
            Std = [0.229f, 0.224f, 0.225f],
        });
        using var frame = ImageFileFrameSource.Decode(TestPaths.SharedFile("images/" + image), new FramePool());

        pre.Run(new ImageView(frame.Pixels, frame.Width, frame.Height, frame.Stride, ImagePixelFormat.Rgba32), session.Input);
        session.Run();
        var top = new Classification[1];
        new ClassificationDecoder(labels, 1, applySoftmax: true).Decode(session.Output(0), top);

        Assert.Equal(classId, top[0].ClassId);
        Assert.Equal([1, 1000], session.OutputShape(0));
        Assert.Equal(FramePixelFormat.Rgba32, frame.PixelFormat);
    }

    [Fact]
    public void Steady_state_runs_allocate_nothing_managed()
    {
        using var session = ModelSession.Load(MobileNet(), NullLogger.Instance);
        session.Run();

        AllocationAssert.SteadyStateIsZero(session.Run);
    }
}
