using System.Text.Json;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Preprocessing;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// A model whose image input is uint8 NHWC (Fixtures/uint8-mean.onnx, made by Fixtures/make_uint8_mean.py):
/// it casts the pixels to float, scales by 1/255 and outputs the per-channel means, shape [1,3].
/// </summary>
public sealed class Uint8InputModelTests
{
    private const byte Red = 200;
    private const byte Green = 100;
    private const byte Blue = 51;

    // ReduceMean sums 50,176 values in float32, which drifts by a few 1e-4; one pixel level is 1/255 ≈ 0.0039.
    private const float MeanTolerance = 1.5e-3f;

    private static readonly string ModelPath = Path.Combine(AppContext.BaseDirectory, "Fixtures", "uint8-mean.onnx");

    private static ModelSessionOptions Options() => new()
    {
        Id = "uint8-mean",
        Path = ModelPath,
        ExpectedInputShape = [1, 224, 224, 3],
        ExecutionProviders = ["cpu"],
    };

    private static ImagePreprocessingSpec Spec(ChannelOrder order = ChannelOrder.Rgb) => new()
    {
        Width = 224,
        Height = 224,
        Layout = TensorLayout.Nhwc,
        ChannelOrder = order,
        // Ignored for integer inputs: the model does its own scaling.
        Mean = [0.485f, 0.456f, 0.406f],
        Std = [0.229f, 0.224f, 0.225f],
    };

    private static Frame SolidFrame(FramePool pool, int width, int height)
    {
        var frame = pool.Rent(width, height, FramePixelFormat.Bgr24);
        var pixels = frame.Pixels;
        for (var y = 0; y < height; y++)
        {
            var row = pixels.Slice(y * frame.Stride, width * 3);
            for (var x = 0; x < width; x++)
            {
                row[x * 3] = Blue;
                row[(x * 3) + 1] = Green;
                row[(x * 3) + 2] = Red;
            }
        }

        return frame;
    }

    [Fact]
    public void Loads_with_a_uint8_input_and_refuses_the_float_span()
    {
        using var session = ModelSession.Load(Options(), NullLogger.Instance);

        Assert.Equal(InputElementType.UInt8, session.InputElementType);
        Assert.Equal([1, 224, 224, 3], session.InputShape);
        Assert.Equal(224 * 224 * 3, session.InputBytes.Length);
        Assert.Equal([1, 3], session.OutputShape(0));
        var ex = Assert.Throws<InvalidOperationException>(() => session.Input.Length);
        Assert.Contains("Model 'uint8-mean'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("uint8-mean.onnx", ex.Message, StringComparison.Ordinal);
        Assert.Contains("input 'images'", ex.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => session.InputSBytes.Length);
    }

    [Fact]
    public void A_mismatched_shape_still_names_model_file_and_input()
    {
        var ex = Assert.Throws<ModelLoadException>(() => ModelSession.Load(Options() with { ExpectedInputShape = [1, 3, 224, 224] }, NullLogger.Instance));

        Assert.Contains("Model 'uint8-mean'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("uint8-mean.onnx", ex.Message, StringComparison.Ordinal);
        Assert.Contains("input 'images'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(ChannelOrder.Rgb, Red, Green, Blue)]
    [InlineData(ChannelOrder.Bgr, Blue, Green, Red)]
    public void Preprocessed_solid_frame_gives_its_colour_as_channel_means(ChannelOrder order, byte c0, byte c1, byte c2)
    {
        using var session = ModelSession.Load(Options(), NullLogger.Instance);
        var pre = new ImagePreprocessor(Spec(order));
        var pool = new FramePool();
        using var frame = SolidFrame(pool, 640, 480);

        pre.Run(new ImageView(frame.Pixels, frame.Width, frame.Height, frame.Stride, ImagePixelFormat.Bgr24), session.InputBytes);
        Assert.Equal([c0, c1, c2], session.InputBytes[..3].ToArray());
        Assert.Equal(Red, session.InputBytes.ToArray().Max());
        Assert.Equal(Blue, session.InputBytes.ToArray().Min());
        session.Run();

        var means = session.Output(0);
        Assert.Equal(c0 / 255f, means[0], MeanTolerance);
        Assert.Equal(c1 / 255f, means[1], MeanTolerance);
        Assert.Equal(c2 / 255f, means[2], MeanTolerance);
    }

    [Fact]
    public void Frame_processor_feeds_the_uint8_input_without_allocating()
    {
        var head = new MeansHead();
        using var processor = new VisionFrameProcessor(ModelSession.Load(Options(), NullLogger.Instance), new ImagePreprocessor(Spec()), head);
        var pool = new FramePool();
        using var frame = SolidFrame(pool, 320, 240);

        processor.Process(frame);

        Assert.Equal(Red / 255f, head.Means[0], MeanTolerance);
        Assert.Equal(Green / 255f, head.Means[1], MeanTolerance);
        Assert.Equal(Blue / 255f, head.Means[2], MeanTolerance);
        AllocationAssert.SteadyStateIsZero(() => processor.Process(frame));
    }

    /// <summary>Copies the model's output so the test can read what the processor decoded.</summary>
    private sealed class MeansHead : IVisionHead
    {
        public float[] Means { get; } = new float[3];

        public JsonEncodedText Task { get; } = JsonEncodedText.Encode("means");

        public int Count => 3;

        public (string Label, float Score) Top => ("red", Means[0]);

        public void Decode(ModelSession session, in SourceMapping mapping, int frameWidth, int frameHeight) => session.Output(0).CopyTo(Means);

        public void Write(Utf8JsonWriter writer)
        {
        }
    }
}
