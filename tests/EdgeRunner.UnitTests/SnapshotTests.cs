using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Publishing;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using SkiaSharp;

namespace EdgeRunner.UnitTests;

/// <summary>Annotated JPEG rendering and when the pipeline publishes one.</summary>
public sealed class SnapshotTests
{
    private sealed class RecordingPublisher : IResultPublisher
    {
        public List<(string Topic, byte[] Payload, bool Retain)> Messages { get; } = [];

        public bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain = false)
        {
            lock (Messages)
            {
                Messages.Add((topic, payload.ToArray(), retain));
            }

            return true;
        }
    }

    private static SnapshotBox[] Truth(SyntheticScene scene, long index, LabelSet labels)
    {
        var truth = new SyntheticObject[scene.ObjectCount];
        scene.GetTruth(index, truth);
        return [.. truth.Select(t => new SnapshotBox(t.X1, t.Y1, t.X2, t.Y2, (int)t.Shape, labels[(int)t.Shape], 0.9f))];
    }

    private static void ConvertRgb(ReadOnlySpan<byte> rgb, Span<byte> destination, int width, int height, int stride, FramePixelFormat format)
    {
        var bpp = format.BytesPerPixel();
        var swap = format is FramePixelFormat.Bgr24 or FramePixelFormat.Bgra32;
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var s = ((y * width) + x) * 3;
                var d = (y * stride) + (x * bpp);
                destination[d] = rgb[swap ? s + 2 : s];
                destination[d + 1] = rgb[s + 1];
                destination[d + 2] = rgb[swap ? s : s + 2];
                if (bpp == 4)
                {
                    destination[d + 3] = 0; // transparent alpha must still give an opaque snapshot
                }
            }
        }
    }

    [Theory]
    [InlineData(FramePixelFormat.Rgb24)]
    [InlineData(FramePixelFormat.Bgr24)]
    [InlineData(FramePixelFormat.Rgba32)]
    [InlineData(FramePixelFormat.Bgra32)]
    public void Renders_a_scaled_jpeg_with_boxes_in_class_colours(FramePixelFormat format)
    {
        const int width = 800;
        const int height = 600;
        var scene = new SyntheticScene(width, height, seed: 11, objectCount: 3);
        var rgb = new byte[width * height * 3];
        scene.Render(0, rgb);
        var stride = (width * format.BytesPerPixel()) + 16;
        var pixels = new byte[stride * height];
        ConvertRgb(rgb, pixels, width, height, stride, format);
        var labels = LabelSet.FromNames(Enum.GetNames<SyntheticShape>().Select(n => n.ToLowerInvariant()));
        var boxes = Truth(scene, 0, labels);

        using var renderer = new SnapshotRenderer(maxWidth: 640, quality: 85);
        var jpeg = renderer.Render(new ImageView(pixels, width, height, stride, format.ToImageFormat()), boxes).ToArray();

        Assert.True(jpeg.Length > 1000);
        Assert.Equal(0xFF, jpeg[0]);
        Assert.Equal(0xD8, jpeg[1]);
        if (Environment.GetEnvironmentVariable("EDGERUNNER_SNAPSHOT_OUT") is { Length: > 0 } folder)
        {
            File.WriteAllBytes(Path.Combine(folder, $"snapshot-{format}.jpg"), jpeg);
        }

        using var decoded = SKBitmap.Decode(jpeg);
        Assert.Equal(640, decoded.Width);
        Assert.Equal(480, decoded.Height);

        // The source scene is left intact away from the boxes (colours not swapped): compare a background
        // pixel far from any box with the source's.
        var (bx, by) = (5, height - 5);
        Assert.DoesNotContain(boxes, b => bx >= b.X1 - 20 && bx <= b.X2 + 20 && by >= b.Y1 - 40 && by <= b.Y2 + 20);
        var expected = new SKColor(rgb[((by * width) + bx) * 3], rgb[(((by * width) + bx) * 3) + 1], rgb[(((by * width) + bx) * 3) + 2]);
        var actual = decoded.GetPixel((int)(bx * 0.8f), (int)(by * 0.8f));
        Assert.InRange(Math.Abs(actual.Red - expected.Red) + Math.Abs(actual.Green - expected.Green) + Math.Abs(actual.Blue - expected.Blue), 0, 60);
        Assert.Equal(255, actual.Alpha);

        // The middle of each box's left edge is drawn in a strongly saturated colour (the class colour).
        foreach (var box in boxes)
        {
            var x = (int)Math.Round(Math.Max(box.X1 * 0.8f, 1));
            var y = (int)Math.Round((box.Y1 + box.Y2) / 2 * 0.8f);
            var c = decoded.GetPixel(x, y);
            var spread = Math.Max(c.Red, Math.Max(c.Green, c.Blue)) - Math.Min(c.Red, Math.Min(c.Green, c.Blue));
            Assert.True(spread > 60, $"box {box.Label} edge at ({x},{y}) is {c}");
        }
    }

    [Fact]
    public async Task Snapshots_follow_label_changes_and_the_minimum_interval()
    {
        var time = new FakeTimeProvider();
        var start = time.GetUtcNow();
        var publisher = new RecordingPublisher();
        var labels = LabelSet.FromNames(["circle", "square", "triangle"]);
        var pool = new FramePool();
        using var frame = pool.Rent(320, 240, FramePixelFormat.Bgr24);
        frame.Pixels.Fill(128);
        await using var snapshots = new SnapshotPublisher("cam", "t/cam/snapshot", retain: true, TimeSpan.FromSeconds(5), maxWidth: 160, quality: 70, publisher, time.TimestampFrequency, NullLogger.Instance);
        var circle = new Detection(0, 0.9f, 10, 10, 60, 60);
        var square = new Detection(1, 0.8f, 100, 100, 200, 180);

        async Task<int> Step(double seconds, params Detection[] detections)
        {
            time.SetUtcNow(start.AddSeconds(seconds));
            snapshots.OnInferred(frame, detections, labels, time.GetTimestamp());
            await snapshots.Encoding.WaitAsync(TestContext.Current.CancellationToken);
            return publisher.Messages.Count;
        }

        Assert.Equal(1, await Step(0, circle));             // first detections: a new label
        Assert.Equal(1, await Step(1, circle));             // nothing new
        Assert.Equal(1, await Step(2, circle, square));     // new, but inside the 5 s minimum interval: pending
        Assert.Equal(1, await Step(3));                     // everything gone: nothing left worth a snapshot
        Assert.Equal(2, await Step(6, circle));             // new again (not in the previous frame), interval passed
        Assert.Equal(2, await Step(7, square));             // new, inside the interval: pending
        Assert.Equal(2, await Step(9, square));             // still inside
        Assert.Equal(3, await Step(11.5, square));          // pending change taken once the interval has passed
        Assert.Equal(3, await Step(20, square));            // nothing new
        Assert.Equal(3, snapshots.Published);

        foreach (var (topic, payload, retain) in publisher.Messages)
        {
            Assert.Equal("t/cam/snapshot", topic);
            Assert.True(retain);
            using var decoded = SKBitmap.Decode(payload);
            Assert.Equal(160, decoded.Width);
            Assert.Equal(120, decoded.Height);
        }

    }
}
