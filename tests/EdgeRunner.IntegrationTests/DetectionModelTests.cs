using System.Globalization;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Models.Preprocessing;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Detection decoders on the real reference detectors, through the daemon's own path:
/// decoded image → <see cref="ImagePreprocessor"/> → <see cref="ModelSession"/> → <see cref="IDetectionDecoder"/>.
/// </summary>
public sealed class DetectionModelTests
{
    // UltraFace: RGB, (x - 127) / 128 = x * (1/128) - 127/128, stretched to 320x240.
    private static readonly ImagePreprocessingSpec UltraFaceSpec = new()
    {
        Width = 320,
        Height = 240,
        Resize = ResizeMode.Stretch,
        Scale = 1f / 128f,
        Mean = [127f / 128f, 127f / 128f, 127f / 128f],
        Std = [1f, 1f, 1f],
    };

    // FastestDet: BGR, /255, stretched to 352x352.
    private static readonly ImagePreprocessingSpec FastestDetSpec = new()
    {
        Width = 352,
        Height = 352,
        Resize = ResizeMode.Stretch,
        ChannelOrder = ChannelOrder.Bgr,
    };

    private static (Detection[] Detections, int Width, int Height, DetectionKindInference Inferred) Detect(
        string model, ImagePreprocessingSpec spec, string kind, DetectionDecoderOptions options, string image)
    {
        using var session = ModelSession.Load(
            new ModelSessionOptions { Id = model, Path = TestPaths.SharedFile($"models/{model}/model.onnx"), ExpectedInputShape = spec.TensorShape() },
            NullLogger.Instance);
        var inferred = DetectionDecoders.InferKind(session);
        var decoder = DetectionDecoders.Create(kind, options, spec.Width, spec.Height, session);
        var pre = new ImagePreprocessor(spec);
        using var frame = ImageFileFrameSource.Decode(TestPaths.SharedFile("images/" + image), new FramePool());

        var mapping = pre.Run(new ImageView(frame.Pixels, frame.Width, frame.Height, frame.Stride, ImagePixelFormat.Rgba32), session.Input);
        session.Run();
        var buffer = new Detection[options.MaxDetections];
        var count = decoder.Decode(session, mapping, frame.Width, frame.Height, buffer);

        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine($"{model} on {image} ({frame.Width}x{frame.Height}): {inferred.Explanation}");
        foreach (var d in buffer.AsSpan(0, count))
        {
            output?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  class {d.ClassId} score {d.Score:F4} box ({d.X1:F1},{d.Y1:F1})-({d.X2:F1},{d.Y2:F1}) {d.Width:F1}x{d.Height:F1}"));
        }

        return (buffer[..count], frame.Width, frame.Height, inferred);
    }

    private static void AssertInside(Detection d, int width, int height)
    {
        Assert.InRange(d.X1, 0f, width);
        Assert.InRange(d.X2, 0f, width);
        Assert.InRange(d.Y1, 0f, height);
        Assert.InRange(d.Y2, 0f, height);
        Assert.True(d.X2 > d.X1 && d.Y2 > d.Y1, $"Degenerate box {d}.");
    }

    private static void AssertNear(Detection d, float cx, float cy, float w, float h, float tolerance)
    {
        Assert.InRange((d.X1 + d.X2) / 2, cx - tolerance, cx + tolerance);
        Assert.InRange((d.Y1 + d.Y2) / 2, cy - tolerance, cy + tolerance);
        Assert.InRange(d.Width, w - tolerance, w + tolerance);
        Assert.InRange(d.Height, h - tolerance, h + tolerance);
    }

    // Upstream UltraFace thresholds (score 0.7, IoU 0.3).
    private static readonly DetectionDecoderOptions UltraFaceOptions = new() { ScoreThreshold = 0.7f, IouThreshold = 0.3f, MaxDetections = 200 };

    [Fact]
    public void UltraFace_finds_the_two_faces_of_face_13_where_they_are()
    {
        var (faces, width, height, inferred) = Detect("ultraface-rfb-320", UltraFaceSpec, "ssd", UltraFaceOptions, "face_13.jpg");

        Assert.Equal("ssd", inferred.Kind);
        // 450x344 photo of two men shaking hands: the left man's face spans about x 90-155, y 15-105
        // (forehead to chin), the right man's about x 300-362, y 84-170. Nothing else in the picture is a face.
        Assert.Equal(2, faces.Length);
        Assert.All(faces, f => Assert.True(f.Score > 0.999f, $"Face score {f.Score}."));
        Assert.All(faces, f => AssertInside(f, width, height));
        var left = faces[0].X1 < faces[1].X1 ? faces[0] : faces[1];
        var right = faces[0].X1 < faces[1].X1 ? faces[1] : faces[0];
        AssertNear(left, cx: 123, cy: 60, w: 63, h: 85, tolerance: 12);
        AssertNear(right, cx: 331, cy: 127, w: 62, h: 86, tolerance: 12);
    }

    [Fact]
    public void UltraFace_finds_the_class_photo_faces_of_face_1()
    {
        var (faces, width, height, _) = Detect("ultraface-rfb-320", UltraFaceSpec, "ssd", UltraFaceOptions, "face_1.jpg");

        // 720x478 class photo, about 55 people in rows on stairs; faces are ~20-25 px wide and all lie in the
        // upper ~55% of the picture (the lowest row's chins are near y 265), the rest is bodies and stairs.
        Assert.InRange(faces.Length, 35, 60);
        Assert.True(faces[0].Score > 0.99f, $"Best face score {faces[0].Score}.");
        Assert.All(faces, f =>
        {
            AssertInside(f, width, height);
            Assert.InRange(f.Width, 14f, 40f);
            Assert.InRange(f.Height / f.Width, 0.9f, 1.7f); // faces are a little taller than wide
            Assert.InRange(f.Y2, 20f, 280f);
        });
    }

    [Fact]
    public void FastestDet_finds_the_four_people_on_street_person()
    {
        var labels = LabelSet.Load(TestPaths.SharedFile("models/fastestdet/coco.names"));
        var (found, width, height, inferred) = Detect(
            "fastestdet", FastestDetSpec, "fastestdet", new DetectionDecoderOptions { ScoreThreshold = 0.65f, IouThreshold = 0.35f }, "street_person.jpg");

        Assert.Equal("fastestdet", inferred.Kind);
        Assert.NotEmpty(found);
        Assert.Equal("person", labels[found[0].ClassId]);
        Assert.True(found[0].Score > 0.85f, $"Best score {found[0].Score}.");
        Assert.All(found, f => AssertInside(f, width, height));
        // 500x335: four young men posing with frisbees on a field. Left to right: standing man in blue
        // (x 40-180, head to feet y 65-295), two crouching in the middle, and one lunging on the right (x 290-490).
        var people = found.Where(f => labels[f.ClassId] == "person").OrderBy(f => f.X1).ToArray();
        Assert.Equal(4, people.Length);
        AssertNear(people[0], cx: 110, cy: 178, w: 137, h: 231, tolerance: 20);
        AssertNear(people[3], cx: 387, cy: 219, w: 195, h: 154, tolerance: 20);
        Assert.InRange((people[1].X1 + people[1].X2) / 2, 180f, 240f);
        Assert.InRange((people[2].X1 + people[2].X2) / 2, 250f, 300f);
    }

    [Fact]
    public void FastestDet_export_already_squashes_objectness_and_class_scores()
    {
        // The decoder applies tanh/sigmoid to the box channels only: objectness and class scores must already be
        // probabilities in this export, or obj^0.6 * cls^0.4 would be meaningless.
        using var session = ModelSession.Load(
            new ModelSessionOptions { Id = "fastestdet", Path = TestPaths.SharedFile("models/fastestdet/model.onnx"), ExpectedInputShape = FastestDetSpec.TensorShape() },
            NullLogger.Instance);
        using var frame = ImageFileFrameSource.Decode(TestPaths.SharedFile("images/street_person.jpg"), new FramePool());
        new ImagePreprocessor(FastestDetSpec).Run(new ImageView(frame.Pixels, frame.Width, frame.Height, frame.Stride, ImagePixelFormat.Rgba32), session.Input);
        session.Run();

        var output = session.Output(0);
        const int plane = 22 * 22;
        Assert.Equal([1, 85, 22, 22], session.OutputShape(0));
        foreach (var v in output[..plane])
        {
            Assert.InRange(v, 0f, 1f);
        }

        foreach (var v in output[(5 * plane)..])
        {
            Assert.InRange(v, 0f, 1f);
        }

        // Box channels are raw (they go negative), which is why the decoder squashes them.
        Assert.True(output.Slice(plane, 4 * plane).IndexOfAnyInRange(float.MinValue, -0.01f) >= 0);
    }
}
