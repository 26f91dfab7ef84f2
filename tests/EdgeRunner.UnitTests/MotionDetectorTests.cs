using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.UnitTests;

public sealed class MotionDetectorTests
{
    private const int Width = 320;
    private const int Height = 240;

    /// <summary>A synthetic frame: flat grey background, optional square, optional noise, padded rows with junk in the padding.</summary>
    private sealed class TestImage
    {
        private readonly ImagePixelFormat _format;

        public TestImage(ImagePixelFormat format, int width = Width, int height = Height, int padding = 13)
        {
            _format = format;
            BytesPerPixel = format is ImagePixelFormat.Rgb24 or ImagePixelFormat.Bgr24 ? 3 : 4;
            W = width;
            H = height;
            Stride = (width * BytesPerPixel) + padding;
            Pixels = new byte[Stride * height];
        }

        public byte[] Pixels { get; }

        public int Stride { get; }

        public int BytesPerPixel { get; }

        public int W { get; }

        public int H { get; }

        public ImageView View => new(Pixels, W, H, Stride, _format);

        public TestImage Draw(int squareX, int squareY, int squareSize, int noise = 0, int seed = 0, byte padding = 0)
        {
            var random = new Random(seed);
            var (ro, go, bo) = _format is ImagePixelFormat.Rgb24 or ImagePixelFormat.Rgba32 ? (0, 1, 2) : (2, 1, 0);
            Array.Fill(Pixels, padding);
            for (var y = 0; y < H; y++)
            {
                for (var x = 0; x < W; x++)
                {
                    var inSquare = x >= squareX && x < squareX + squareSize && y >= squareY && y < squareY + squareSize;
                    var (r, g, b) = inSquare ? (230, 200, 40) : (90, 100, 110);
                    var n = noise == 0 ? 0 : random.Next(-noise, noise + 1);
                    var i = (y * Stride) + (x * BytesPerPixel);
                    Pixels[i + ro] = (byte)Math.Clamp(r + n, 0, 255);
                    Pixels[i + go] = (byte)Math.Clamp(g + n, 0, 255);
                    Pixels[i + bo] = (byte)Math.Clamp(b + n, 0, 255);
                    if (BytesPerPixel == 4)
                    {
                        // Alpha is not colour: changing it must not read as motion.
                        Pixels[i + 3] = (byte)random.Next(256);
                    }
                }
            }

            return this;
        }
    }

    public static TheoryData<ImagePixelFormat> Formats => [ImagePixelFormat.Rgb24, ImagePixelFormat.Bgr24, ImagePixelFormat.Rgba32, ImagePixelFormat.Bgra32];

    private static MotionDetector Detector() => new(downscaleWidth: 160, threshold: 25, minAreaPercent: 0.5);

    [Theory]
    [MemberData(nameof(Formats))]
    public void The_first_frame_counts_as_motion_and_identical_frames_do_not(ImagePixelFormat format)
    {
        var detector = Detector();
        var image = new TestImage(format).Draw(100, 80, 40);

        Assert.True(detector.Detect(image.View));
        Assert.Equal(160, detector.DownscaledWidth);
        Assert.Equal(120, detector.DownscaledHeight);

        for (var i = 0; i < 3; i++)
        {
            // Only the row padding (and alpha) changes between these frames: neither is picture.
            image.Draw(100, 80, 40, padding: (byte)(i * 97));
            Assert.False(detector.Detect(image.View));
            Assert.Equal(0, detector.LastChangedPercent);
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void A_moving_square_above_the_minimum_area_is_motion(ImagePixelFormat format)
    {
        var detector = Detector();
        var image = new TestImage(format);
        detector.Detect(image.Draw(100, 80, 40).View);

        // 40 px square moved 20 px: about 2 × 20 × 40 source pixels changed, ~2 % of the frame.
        Assert.True(detector.Detect(image.Draw(120, 80, 40).View));
        Assert.InRange(detector.LastChangedPercent, 1.0, 4.0);

        // Standing still again is not motion.
        Assert.False(detector.Detect(image.Draw(120, 80, 40).View));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Noise_below_the_threshold_is_not_motion(ImagePixelFormat format)
    {
        var detector = Detector();
        var image = new TestImage(format);
        detector.Detect(image.Draw(100, 80, 40, noise: 20, seed: 1).View);

        // ±20 grey levels per source pixel, fresh every frame: under the threshold of 25 even before averaging.
        for (var seed = 2; seed < 6; seed++)
        {
            Assert.False(detector.Detect(image.Draw(100, 80, 40, noise: 20, seed: seed).View));
        }
    }

    [Fact]
    public void A_change_smaller_than_the_minimum_area_is_not_motion()
    {
        var detector = Detector();
        var image = new TestImage(ImagePixelFormat.Rgb24);
        detector.Detect(image.Draw(100, 80, 6).View);

        // A 6 px square jumping elsewhere changes ~18 of 19 200 small pixels (0.1 %), under 0.5 %.
        Assert.False(detector.Detect(image.Draw(200, 150, 6).View));
        Assert.InRange(detector.LastChangedPercent, 0.01, 0.5);

        var sensitive = new MotionDetector(160, 25, minAreaPercent: 0.05);
        sensitive.Detect(image.Draw(100, 80, 6).View);
        Assert.True(sensitive.Detect(image.Draw(200, 150, 6).View));
    }

    [Fact]
    public void A_size_change_or_reset_counts_as_motion_and_small_frames_are_not_upscaled()
    {
        var detector = Detector();
        var small = new TestImage(ImagePixelFormat.Bgr24, width: 100, height: 50, padding: 0).Draw(10, 10, 10);
        Assert.True(detector.Detect(small.View));
        Assert.Equal(100, detector.DownscaledWidth);
        Assert.Equal(50, detector.DownscaledHeight);
        Assert.False(detector.Detect(small.View));

        detector.Reset();
        Assert.True(detector.Detect(small.View));

        var large = new TestImage(ImagePixelFormat.Bgr24, width: 641, height: 361).Draw(10, 10, 10);
        Assert.True(detector.Detect(large.View));
        Assert.Equal(160, detector.DownscaledWidth);
        Assert.Equal(90, detector.DownscaledHeight);
        Assert.False(detector.Detect(large.View));
    }

    [Fact]
    public void Detecting_allocates_nothing_in_steady_state()
    {
        var detector = Detector();
        var a = new TestImage(ImagePixelFormat.Bgra32).Draw(100, 80, 40);
        var b = new TestImage(ImagePixelFormat.Bgra32).Draw(140, 80, 40);
        detector.Detect(a.View);
        detector.Detect(b.View);

        // Rounds, not one measurement: the runtime itself can allocate once on this thread (tiering up a
        // hot method); steady state means a round that allocates nothing, and one comes quickly.
        var motion = 0;
        var allocated = new List<long>();
        for (var round = 0; round < 5 && (allocated.Count == 0 || allocated[^1] != 0); round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            motion = 0;
            for (var i = 0; i < 50; i++)
            {
                motion += detector.Detect((i % 2 == 0 ? a : b).View) ? 1 : 0;
            }

            allocated.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.True(allocated[^1] == 0, $"bytes allocated per round: {string.Join(", ", allocated)}");
        Assert.Equal(50, motion);
    }
}
