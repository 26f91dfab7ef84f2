using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.UnitTests;

public sealed class ImagePreprocessorTests
{
    private static byte[] Gradient(int width, int height, int bytesPerPixel)
    {
        var pixels = new byte[width * height * bytesPerPixel];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var o = ((y * width) + x) * bytesPerPixel;
                pixels[o] = (byte)(x * 10);      // R
                pixels[o + 1] = (byte)(y * 10);  // G
                pixels[o + 2] = (byte)(100 + x + y); // B
                if (bytesPerPixel == 4)
                {
                    pixels[o + 3] = 255;
                }
            }
        }

        return pixels;
    }

    [Fact]
    public void Same_size_stretch_copies_pixels_and_applies_mean_and_std_in_NCHW()
    {
        var pixels = Gradient(4, 3, 3);
        var spec = new ImagePreprocessingSpec { Width = 4, Height = 3, Scale = 1f, Mean = [1f, 2f, 3f], Std = [2f, 4f, 8f] };
        var output = new float[4 * 3 * 3];

        new ImagePreprocessor(spec).Run(new ImageView(pixels, 4, 3, 12, ImagePixelFormat.Rgb24), output);

        const int plane = 12;
        for (var y = 0; y < 3; y++)
        {
            for (var x = 0; x < 4; x++)
            {
                var i = (y * 4) + x;
                Assert.Equal(((x * 10) - 1f) / 2f, output[i], 4);
                Assert.Equal(((y * 10) - 2f) / 4f, output[plane + i], 4);
                Assert.Equal((100 + x + y - 3f) / 8f, output[(2 * plane) + i], 4);
            }
        }
    }

    [Fact]
    public void Bgr_output_and_NHWC_layout_reorder_channels_from_an_RGBA_source()
    {
        var pixels = Gradient(2, 2, 4);
        var spec = new ImagePreprocessingSpec { Width = 2, Height = 2, Scale = 1f, ChannelOrder = ChannelOrder.Bgr, Layout = TensorLayout.Nhwc };
        var output = new float[12];

        new ImagePreprocessor(spec).Run(new ImageView(pixels, 2, 2, 8, ImagePixelFormat.Rgba32), output);

        // Pixel (x=1, y=1): R=10, G=10, B=102 → tensor B, G, R.
        Assert.Equal([102f, 10f, 10f], output[9..12]);
        // Pixel (x=1, y=0): R=10, G=0, B=101.
        Assert.Equal([101f, 0f, 10f], output[3..6]);
    }

    [Fact]
    public void Bgr_source_is_read_as_bgr()
    {
        byte[] pixels = [30, 20, 10]; // B=30, G=20, R=10
        var spec = new ImagePreprocessingSpec { Width = 1, Height = 1, Scale = 1f };
        var output = new float[3];

        new ImagePreprocessor(spec).Run(new ImageView(pixels, 1, 1, 3, ImagePixelFormat.Bgr24), output);

        Assert.Equal([10f, 20f, 30f], output);
    }

    [Fact]
    public void Downscaling_averages_instead_of_aliasing()
    {
        // A 1-pixel checkerboard of 0 and 200 must become flat 100 when shrunk 8x, not a sampled 0 or 200.
        const int size = 64;
        var pixels = new byte[size * size * 3];
        for (var y = 0; y < size; y++)
        {
            for (var x = 0; x < size; x++)
            {
                var v = (byte)(((x + y) & 1) == 0 ? 0 : 200);
                pixels.AsSpan(((y * size) + x) * 3, 3).Fill(v);
            }
        }

        var spec = new ImagePreprocessingSpec { Width = 8, Height = 8, Scale = 1f };
        var output = new float[8 * 8 * 3];
        new ImagePreprocessor(spec).Run(new ImageView(pixels, size, size, size * 3, ImagePixelFormat.Rgb24), output);

        Assert.All(output, v => Assert.InRange(v, 95f, 105f));
    }

    [Fact]
    public void Letterbox_pads_with_the_pad_value_and_maps_model_points_back_to_source_pixels()
    {
        // 200x100 into 100x100: scale 0.5, image occupies rows 25..74, padding above and below.
        var pixels = new byte[200 * 100 * 3];
        Array.Fill(pixels, (byte)50);
        var spec = new ImagePreprocessingSpec { Width = 100, Height = 100, Resize = ResizeMode.Letterbox, PadValue = 114, Scale = 1f };
        var output = new float[100 * 100 * 3];

        var mapping = new ImagePreprocessor(spec).Run(new ImageView(pixels, 200, 100, 600, ImagePixelFormat.Rgb24), output);

        Assert.Equal(114f, output[(10 * 100) + 50], 3); // row 10: padding
        Assert.Equal(50f, output[(50 * 100) + 50], 3);  // row 50: image
        Assert.Equal(114f, output[(90 * 100) + 50], 3); // row 90: padding
        // Model (0,25) is source (0,0); model (100,75) is source (200,100).
        Assert.Equal(0f, mapping.ToSourceX(0), 3);
        Assert.Equal(0f, mapping.ToSourceY(25), 3);
        Assert.Equal(200f, mapping.ToSourceX(100), 3);
        Assert.Equal(100f, mapping.ToSourceY(75), 3);
    }

    [Fact]
    public void Center_crop_resizes_the_shorter_side_then_takes_the_middle()
    {
        // 512x256 source, shorter side → 128 (scale 0.5), resized 256x128, crop 128x128 from x=64.
        var pixels = new byte[512 * 256 * 3];
        for (var y = 0; y < 256; y++)
        {
            for (var x = 0; x < 512; x++)
            {
                pixels[((y * 512) + x) * 3] = (byte)(x < 128 || x >= 384 ? 255 : 0); // red only outside the middle half
            }
        }

        var spec = new ImagePreprocessingSpec { Width = 128, Height = 128, Resize = ResizeMode.CenterCrop, ResizeShorterSide = 128, Scale = 1f };
        var output = new float[128 * 128 * 3];

        var mapping = new ImagePreprocessor(spec).Run(new ImageView(pixels, 512, 256, 512 * 3, ImagePixelFormat.Rgb24), output);

        // Red plane: the red stripes lie outside the crop; only the two edge columns see them through the filter's support.
        for (var y = 0; y < 128; y++)
        {
            for (var x = 2; x < 126; x++)
            {
                Assert.Equal(0f, output[(y * 128) + x], 3);
            }
        }

        Assert.Equal(128f, mapping.ToSourceX(0), 3);
        Assert.Equal(384f, mapping.ToSourceX(128), 3);
        Assert.Equal(0f, mapping.ToSourceY(0), 3);
    }

    [Fact]
    public void Repeated_runs_with_a_steady_frame_size_allocate_nothing()
    {
        var pixels = Gradient(64, 48, 3);
        var spec = new ImagePreprocessingSpec { Width = 32, Height = 32, Resize = ResizeMode.Letterbox };
        var pre = new ImagePreprocessor(spec);
        var output = new float[32 * 32 * 3];
        pre.Run(new ImageView(pixels, 64, 48, 192, ImagePixelFormat.Rgb24), output);

        AllocationAssert.SteadyStateIsZero(() => pre.Run(new ImageView(pixels, 64, 48, 192, ImagePixelFormat.Rgb24), output), callsPerRound: 10);
    }

    [Fact]
    public void Too_small_destination_is_rejected()
    {
        var pixels = Gradient(4, 4, 3);
        var pre = new ImagePreprocessor(new ImagePreprocessingSpec { Width = 4, Height = 4 });
        Assert.Throws<ArgumentException>(() => pre.Run(new ImageView(pixels, 4, 4, 12, ImagePixelFormat.Rgb24), new float[10]));
    }

    public static TheoryData<ResizeMode, TensorLayout, ChannelOrder> IntegerOutputCases => new()
    {
        { ResizeMode.Stretch, TensorLayout.Nchw, ChannelOrder.Rgb },
        { ResizeMode.Stretch, TensorLayout.Nhwc, ChannelOrder.Bgr },
        { ResizeMode.CenterCrop, TensorLayout.Nchw, ChannelOrder.Rgb },
        { ResizeMode.CenterCrop, TensorLayout.Nhwc, ChannelOrder.Bgr },
        { ResizeMode.Letterbox, TensorLayout.Nchw, ChannelOrder.Rgb },
        { ResizeMode.Letterbox, TensorLayout.Nhwc, ChannelOrder.Bgr },
    };

    private static ImageView IntegerOutputView(byte[] pixels) => new(pixels, 50, 30, 200, ImagePixelFormat.Rgba32);

    private static (ImagePreprocessingSpec Spec, byte[] Pixels) IntegerOutputSetup(ResizeMode resize, TensorLayout layout, ChannelOrder order)
    {
        // 50x30 RGBA gradient into a 23x19 input: non-integer factors on both axes, so values are fractional before rounding.
        var pixels = Gradient(50, 30, 4);
        var spec = new ImagePreprocessingSpec
        {
            Width = 23,
            Height = 19,
            Resize = resize,
            ResizeShorterSide = 21,
            PadValue = 114.5f,
            Layout = layout,
            ChannelOrder = order,
        };
        return (spec, pixels);
    }

    private static float[] FloatPixels(ImagePreprocessingSpec spec, ImageView view, out SourceMapping mapping)
    {
        // Scale 1, mean 0, std 1: the float output is the resampled pixel value itself.
        var output = new float[spec.Width * spec.Height * 3];
        mapping = new ImagePreprocessor(spec with { Scale = 1f, Mean = [0f, 0f, 0f], Std = [1f, 1f, 1f] }).Run(view, output);
        return output;
    }

    [Theory]
    [MemberData(nameof(IntegerOutputCases))]
    public void Byte_output_is_the_rounded_unnormalised_float_output(ResizeMode resize, TensorLayout layout, ChannelOrder order)
    {
        var (spec, pixels) = IntegerOutputSetup(resize, layout, order);
        var view = IntegerOutputView(pixels);
        var expected = FloatPixels(spec, view, out var expectedMapping);
        var output = new byte[expected.Length];

        // The spec's own normalisation (ImageNet mean/std, 1/255) must not affect byte output.
        var mapping = new ImagePreprocessor(spec with { Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] }).Run(view, output);

        Assert.Equal(expectedMapping, mapping);
        Assert.Contains(expected, v => v != MathF.Round(v)); // the comparison exercises rounding
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal((byte)MathF.Round(expected[i], MidpointRounding.AwayFromZero), output[i]);
        }
    }

    [Theory]
    [MemberData(nameof(IntegerOutputCases))]
    public void SByte_output_is_the_byte_output_minus_128(ResizeMode resize, TensorLayout layout, ChannelOrder order)
    {
        var (spec, pixels) = IntegerOutputSetup(resize, layout, order);
        var view = IntegerOutputView(pixels);
        var pre = new ImagePreprocessor(spec);
        var bytes = new byte[pre.TensorLength];
        var sbytes = new sbyte[pre.TensorLength];

        pre.Run(view, bytes);
        pre.Run(view, sbytes);

        for (var i = 0; i < bytes.Length; i++)
        {
            Assert.Equal(bytes[i] - 128, sbytes[i]);
        }
    }

    [Fact]
    public void Byte_output_of_a_same_size_BGR_NHWC_image_is_the_pixels_reordered()
    {
        var pixels = Gradient(2, 2, 4);
        var spec = new ImagePreprocessingSpec { Width = 2, Height = 2, ChannelOrder = ChannelOrder.Bgr, Layout = TensorLayout.Nhwc };
        var output = new byte[12];

        new ImagePreprocessor(spec).Run(new ImageView(pixels, 2, 2, 8, ImagePixelFormat.Rgba32), output);

        // Pixel (x=1, y=0): R=10, G=0, B=101; pixel (x=1, y=1): R=10, G=10, B=102 → tensor B, G, R.
        Assert.Equal([101, 0, 10], output[3..6]);
        Assert.Equal([102, 10, 10], output[9..12]);
    }

    [Fact]
    public void Byte_and_sbyte_letterbox_padding_is_the_pad_value()
    {
        var pixels = new byte[200 * 100 * 3];
        Array.Fill(pixels, (byte)50);
        var pre = new ImagePreprocessor(new ImagePreprocessingSpec { Width = 100, Height = 100, Resize = ResizeMode.Letterbox, PadValue = 114 });
        var view = new ImageView(pixels, 200, 100, 600, ImagePixelFormat.Rgb24);
        var bytes = new byte[pre.TensorLength];
        var sbytes = new sbyte[pre.TensorLength];

        pre.Run(view, bytes);
        pre.Run(view, sbytes);

        Assert.Equal(114, bytes[(10 * 100) + 50]);
        Assert.Equal(50, bytes[(50 * 100) + 50]);
        Assert.Equal(114 - 128, sbytes[(90 * 100) + 50]);
        Assert.Equal(50 - 128, sbytes[(50 * 100) + 50]);
    }

    [Fact]
    public void Repeated_byte_and_sbyte_runs_with_a_steady_frame_size_allocate_nothing()
    {
        var pixels = Gradient(64, 48, 3);
        var spec = new ImagePreprocessingSpec { Width = 32, Height = 32, Resize = ResizeMode.Letterbox, Layout = TensorLayout.Nhwc };
        var pre = new ImagePreprocessor(spec);
        var bytes = new byte[32 * 32 * 3];
        var sbytes = new sbyte[32 * 32 * 3];
        pre.Run(new ImageView(pixels, 64, 48, 192, ImagePixelFormat.Rgb24), bytes);
        pre.Run(new ImageView(pixels, 64, 48, 192, ImagePixelFormat.Rgb24), sbytes);

        AllocationAssert.SteadyStateIsZero(() => pre.Run(new ImageView(pixels, 64, 48, 192, ImagePixelFormat.Rgb24), bytes), callsPerRound: 10);
        AllocationAssert.SteadyStateIsZero(() => pre.Run(new ImageView(pixels, 64, 48, 192, ImagePixelFormat.Rgb24), sbytes), callsPerRound: 10);
    }

    [Fact]
    public void Too_small_byte_or_sbyte_destination_is_rejected()
    {
        var pixels = Gradient(4, 4, 3);
        var pre = new ImagePreprocessor(new ImagePreprocessingSpec { Width = 4, Height = 4 });
        Assert.Throws<ArgumentException>("destination", () => pre.Run(new ImageView(pixels, 4, 4, 12, ImagePixelFormat.Rgb24), new byte[47]));
        Assert.Throws<ArgumentException>("destination", () => pre.Run(new ImageView(pixels, 4, 4, 12, ImagePixelFormat.Rgb24), new sbyte[47]));
    }
}

public sealed class ImagePreprocessorVectorisedTests
{
    public static TheoryData<ResizeMode, int, int, int, int> Geometries => new()
    {
        // resize, source width, source height, output width, output height
        { ResizeMode.Letterbox, 64, 48, 64, 64 },   // 1:1 letterbox: identity width (byte-shuffle path), identity height + pad rows
        { ResizeMode.Letterbox, 48, 64, 64, 64 },   // identity height, width padded left/right
        { ResizeMode.Letterbox, 67, 41, 33, 33 },   // odd sizes: vector tails
        { ResizeMode.Letterbox, 64, 48, 40, 40 },   // downscale
        { ResizeMode.Letterbox, 20, 15, 50, 50 },   // upscale
        { ResizeMode.Stretch, 37, 29, 37, 17 },     // identity width of 37 (16-pixel groups + tail), resampled height
        { ResizeMode.Stretch, 37, 29, 19, 29 },     // identity height only
        { ResizeMode.Stretch, 40, 30, 40, 30 },     // both identity, no padding
        { ResizeMode.Stretch, 53, 47, 26, 61 },
        { ResizeMode.CenterCrop, 64, 48, 28, 28 },  // ResizeShorterSide 32
        { ResizeMode.CenterCrop, 45, 70, 21, 21 },
    };

    private static IEnumerable<(ImagePixelFormat Format, TensorLayout Layout, ChannelOrder Order)> Variants()
    {
        foreach (var format in new[] { ImagePixelFormat.Rgb24, ImagePixelFormat.Bgr24, ImagePixelFormat.Rgba32, ImagePixelFormat.Bgra32 })
        {
            foreach (var layout in new[] { TensorLayout.Nchw, TensorLayout.Nhwc })
            {
                foreach (var order in new[] { ChannelOrder.Rgb, ChannelOrder.Bgr })
                {
                    yield return (format, layout, order);
                }
            }
        }
    }

    private static (byte[] Pixels, int Stride) RandomImage(Random random, int width, int height, int bpp)
    {
        var stride = (width * bpp) + 5; // padded rows
        var pixels = new byte[stride * height];
        random.NextBytes(pixels);
        return (pixels, stride);
    }

    private static ImagePreprocessingSpec Spec(ResizeMode resize, int w, int h, TensorLayout layout, ChannelOrder order) => new()
    {
        Width = w,
        Height = h,
        Resize = resize,
        ResizeShorterSide = resize == ResizeMode.CenterCrop ? w + 4 : 0,
        Layout = layout,
        ChannelOrder = order,
        PadValue = 114,
        Mean = [0.485f, 0.456f, 0.406f],
        Std = [0.229f, 0.224f, 0.225f],
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Float_output_matches_the_scalar_reference(ResizeMode resize, int srcW, int srcH, int w, int h)
    {
        var random = new Random(srcW * 1000 + srcH + w);
        foreach (var (format, layout, order) in Variants())
        {
            var bpp = format is ImagePixelFormat.Rgba32 or ImagePixelFormat.Bgra32 ? 4 : 3;
            var (pixels, stride) = RandomImage(random, srcW, srcH, bpp);
            var spec = Spec(resize, w, h, layout, order);
            var expected = new float[w * h * 3];
            var actual = new float[w * h * 3];
            var expectedMapping = new ReferenceImagePreprocessor(spec).Run(new ImageView(pixels, srcW, srcH, stride, format), expected);
            float[]? firstPath = null;
            foreach (var simd in SupportedSimdPaths)
            {
                var pre = new ImagePreprocessor(spec, simd);
                for (var run = 0; run < 2; run++) // second run: cached tables and buffers
                {
                    var mapping = pre.Run(new ImageView(pixels, srcW, srcH, stride, format), actual);
                    Assert.Equal(expectedMapping, mapping);
                    // 1e-4 on the 0-255 scale is 1e-4 * multiplier (1/(255*0.224) at most ~0.0175) here.
                    for (var i = 0; i < expected.Length; i++)
                    {
                        Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4f * 0.02f + 1e-6f, $"{simd} {format} {layout} {order} [{i}]: {expected[i]} vs {actual[i]}");
                    }
                }

                // Every path (scalar, 128-bit vectors as on ARM, AVX2) gives the very same bits.
                firstPath ??= (float[])actual.Clone();
                Assert.True(firstPath.AsSpan().SequenceEqual(actual), $"{simd} {format} {layout} {order}: not bit-identical to {SupportedSimdPaths[0]}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Byte_and_sbyte_output_match_the_scalar_reference(ResizeMode resize, int srcW, int srcH, int w, int h)
    {
        var random = new Random(srcW * 1000 + srcH + w + 1);
        foreach (var (format, layout, order) in Variants())
        {
            var bpp = format is ImagePixelFormat.Rgba32 or ImagePixelFormat.Bgra32 ? 4 : 3;
            var (pixels, stride) = RandomImage(random, srcW, srcH, bpp);
            var spec = Spec(resize, w, h, layout, order);
            var reference = new ReferenceImagePreprocessor(spec);
            var view = new ImageView(pixels, srcW, srcH, stride, format);
            var expectedBytes = new byte[w * h * 3];
            var expectedSBytes = new sbyte[w * h * 3];
            reference.Run(view, expectedBytes);
            reference.Run(view, expectedSBytes);
            foreach (var simd in SupportedSimdPaths)
            {
                var pre = new ImagePreprocessor(spec, simd);
                var actualBytes = new byte[w * h * 3];
                var actualSBytes = new sbyte[w * h * 3];
                pre.Run(view, actualBytes);
                pre.Run(view, actualSBytes);
                Assert.Equal(expectedBytes, actualBytes);
                Assert.Equal(expectedSBytes, actualSBytes);
            }
        }
    }

    [Fact]
    public void Byte_rounding_of_exact_halves_is_away_from_zero()
    {
        // 2 -> 1 stretch of [0, 1] averages to 0.5, [2, 3] to 2.5 (exact in float): both round up.
        byte[] pixels = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3];
        var spec = new ImagePreprocessingSpec { Width = 1, Height = 1 };
        var output = new byte[3];
        new ImagePreprocessor(spec).Run(new ImageView(pixels, 2, 1, 6, ImagePixelFormat.Rgb24), output);
        Assert.Equal([1, 1, 1], output);
        new ImagePreprocessor(spec).Run(new ImageView(pixels.AsSpan(6).ToArray(), 2, 1, 6, ImagePixelFormat.Rgb24), output);
        Assert.Equal([3, 3, 3], output);
    }

    /// <summary>Every vector path this CPU runs (scalar and the portable 128-bit path everywhere; AVX2 where present).</summary>
    public static readonly SimdPath[] SupportedSimdPaths = Enum.GetValues<SimdPath>().Where(SimdPaths.IsSupported).ToArray();

    public static TheoryData<SimdPath> SimdPathData() => new(SupportedSimdPaths);

    [Fact]
    public void The_default_path_is_the_fastest_this_cpu_runs()
    {
        var expected = System.Runtime.Intrinsics.X86.Avx2.IsSupported ? SimdPath.Avx2
            : System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated ? SimdPath.Vector128
            : SimdPath.Scalar;
        Assert.Equal(expected, SimdPaths.Best);
        Assert.Equal(expected, new ImagePreprocessor(Spec(ResizeMode.Stretch, 8, 8, TensorLayout.Nchw, ChannelOrder.Rgb)).Simd);
        Assert.Contains(SimdPath.Vector128, SupportedSimdPaths); // the ARM path is always exercised
    }

    [Theory]
    [MemberData(nameof(SimdPathData))]
    public void Vectorised_paths_allocate_nothing_per_frame(SimdPath simd)
    {
        var random = new Random(7);
        var (pixels, stride) = RandomImage(random, 64, 48, 4);
        var nchw = new ImagePreprocessor(Spec(ResizeMode.Letterbox, 64, 64, TensorLayout.Nchw, ChannelOrder.Rgb), simd);
        var nhwc = new ImagePreprocessor(Spec(ResizeMode.Stretch, 40, 30, TensorLayout.Nhwc, ChannelOrder.Bgr), simd);
        var floats = new float[64 * 64 * 3];
        var bytes = new byte[64 * 64 * 3];
        ImageView view() => new(pixels, 64, 48, stride, ImagePixelFormat.Bgra32);
        nchw.Run(view(), floats);
        nhwc.Run(view(), bytes);

        AllocationAssert.SteadyStateIsZero(
            () =>
            {
                nchw.Run(view(), floats);
                nchw.Run(view(), bytes);
                nhwc.Run(view(), floats);
                nhwc.Run(view(), bytes);
            },
            callsPerRound: 10);
    }
}

/// <summary>The scalar implementation before vectorisation (per-pixel tap loops), kept as the reference.</summary>
file sealed class ReferenceImagePreprocessor
{
    private readonly ImagePreprocessingSpec _spec;
    private readonly float[] _multiplier = new float[3];
    private readonly float[] _offset = new float[3];
    private int _cachedWidth = -1;
    private int _cachedHeight = -1;
    private AxisFilter _horizontal;
    private AxisFilter _vertical;
    private SourceMapping _mapping;
    private int _firstRow;
    private int _rowCount;
    private float[] _rows = [];

    /// <summary>Creates a preprocessor for <paramref name="spec"/>.</summary>
    public ReferenceImagePreprocessor(ImagePreprocessingSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.Width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.Height, 1);
        if (spec.Mean.Count != 3 || spec.Std.Count != 3)
        {
            throw new ArgumentException("Mean and Std need exactly 3 values.", nameof(spec));
        }

        _spec = spec;
        for (var c = 0; c < 3; c++)
        {
            if (spec.Std[c] == 0)
            {
                throw new ArgumentException("Std values must not be zero.", nameof(spec));
            }

            // (v * scale - mean) / std == v * (scale / std) + (-mean / std)
            _multiplier[c] = spec.Scale / spec.Std[c];
            _offset[c] = -spec.Mean[c] / spec.Std[c];
        }
    }

    /// <summary>The spec this instance applies.</summary>
    public ImagePreprocessingSpec Spec => _spec;

    /// <summary>Number of elements (floats, bytes or sbytes) written by any <c>Run</c> overload.</summary>
    public int TensorLength => _spec.Width * _spec.Height * 3;

    /// <summary>Fills <paramref name="destination"/> from <paramref name="image"/> and returns how to map model coordinates back to it.</summary>
    public SourceMapping Run(ImageView image, Span<float> destination)
    {
        CheckDestination(destination.Length, nameof(destination));
        var sink = new FloatSink(destination, _multiplier, _offset);
        return Run(image, ref sink);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with the resized/cropped/letterboxed pixels for a uint8-input model:
    /// the same resampling, layout and channel order as the float overload, each value rounded to the nearest
    /// integer in 0–255. <see cref="ImagePreprocessingSpec.Scale"/>, <see cref="ImagePreprocessingSpec.Mean"/> and
    /// <see cref="ImagePreprocessingSpec.Std"/> are ignored (the model normalises itself).
    /// </summary>
    public SourceMapping Run(ImageView image, Span<byte> destination)
    {
        CheckDestination(destination.Length, nameof(destination));
        var sink = new ByteSink(destination);
        return Run(image, ref sink);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> for an int8-input model: as the <see cref="byte"/> overload, minus 128
    /// (pixel 0 → −128, pixel 255 → 127). <see cref="ImagePreprocessingSpec.Scale"/>, <see cref="ImagePreprocessingSpec.Mean"/>
    /// and <see cref="ImagePreprocessingSpec.Std"/> are ignored.
    /// </summary>
    public SourceMapping Run(ImageView image, Span<sbyte> destination)
    {
        CheckDestination(destination.Length, nameof(destination));
        var sink = new SByteSink(destination);
        return Run(image, ref sink);
    }

    private void CheckDestination(int length, string paramName)
    {
        if (length < TensorLength)
        {
            throw new ArgumentException($"Destination holds {length} elements; {TensorLength} needed.", paramName);
        }
    }

    private SourceMapping Run<TSink>(ImageView image, ref TSink sink)
        where TSink : IPixelSink, allows ref struct
    {
        if (image.Width != _cachedWidth || image.Height != _cachedHeight)
        {
            Prepare(image.Width, image.Height);
        }

        HorizontalPass(image);
        VerticalPass(ref sink);
        return _mapping;
    }

    private void Prepare(int sourceWidth, int sourceHeight)
    {
        int outW = _spec.Width, outH = _spec.Height;
        double resizedW, resizedH, cropX = 0, cropY = 0;
        switch (_spec.Resize)
        {
            case ResizeMode.Stretch:
                resizedW = outW;
                resizedH = outH;
                break;
            case ResizeMode.CenterCrop:
                {
                    var shorter = _spec.ResizeShorterSide > 0 ? _spec.ResizeShorterSide : Math.Max(outW, outH);
                    var s = (double)shorter / Math.Min(sourceWidth, sourceHeight);
                    // torchvision: the longer side is truncated to an integer after scaling.
                    resizedW = sourceWidth <= sourceHeight ? shorter : Math.Floor(sourceWidth * s);
                    resizedH = sourceHeight < sourceWidth ? shorter : Math.Floor(sourceHeight * s);
                    resizedW = Math.Max(resizedW, outW);
                    resizedH = Math.Max(resizedH, outH);
                    cropX = Math.Round((resizedW - outW) / 2.0);
                    cropY = Math.Round((resizedH - outH) / 2.0);
                    break;
                }

            case ResizeMode.Letterbox:
                {
                    var s = Math.Min((double)outW / sourceWidth, (double)outH / sourceHeight);
                    resizedW = Math.Round(sourceWidth * s);
                    resizedH = Math.Round(sourceHeight * s);
                    // Negative crop = padding before the image.
                    cropX = -Math.Floor((outW - resizedW) / 2.0);
                    cropY = -Math.Floor((outH - resizedH) / 2.0);
                    break;
                }

            default:
                throw new InvalidOperationException($"Unknown resize mode {_spec.Resize}.");
        }

        _horizontal = AxisFilter.Create(sourceWidth, resizedW, cropX, outW);
        _vertical = AxisFilter.Create(sourceHeight, resizedH, cropY, outH);
        var scaleX = (float)(sourceWidth / resizedW);
        var scaleY = (float)(sourceHeight / resizedH);
        _mapping = new SourceMapping(scaleX, (float)(cropX * scaleX), scaleY, (float)(cropY * scaleY));

        // Only source rows that some output row reads are filtered horizontally.
        (_firstRow, var lastRow) = _vertical.SourceRange();
        _rowCount = Math.Max(0, lastRow - _firstRow);
        var needed = _rowCount * outW * 3;
        if (_rows.Length < needed)
        {
            _rows = new float[needed];
        }

        _cachedWidth = sourceWidth;
        _cachedHeight = sourceHeight;
    }

    private void HorizontalPass(ImageView image)
    {
        var (r, g, b) = image.ChannelOffsets;
        // Tensor channel c reads source byte offset channel[c].
        int c0 = _spec.ChannelOrder == ChannelOrder.Rgb ? r : b, c1 = g, c2 = _spec.ChannelOrder == ChannelOrder.Rgb ? b : r;
        var bpp = image.BytesPerPixel;
        var outW = _spec.Width;
        var filter = _horizontal;
        var pixels = image.Pixels;
        var rows = _rows.AsSpan();
        for (var row = 0; row < _rowCount; row++)
        {
            var src = pixels.Slice((_firstRow + row) * image.Stride);
            var dst = rows.Slice(row * outW * 3, outW * 3);
            for (var x = 0; x < outW; x++)
            {
                var start = filter.Start[x];
                var count = filter.Count[x];
                var weights = filter.Weights.AsSpan(x * filter.MaxTaps, count);
                float s0 = 0, s1 = 0, s2 = 0;
                var p = start * bpp;
                for (var k = 0; k < weights.Length; k++, p += bpp)
                {
                    var w = weights[k];
                    s0 += src[p + c0] * w;
                    s1 += src[p + c1] * w;
                    s2 += src[p + c2] * w;
                }

                if (count == 0)
                {
                    s0 = s1 = s2 = _spec.PadValue;
                }

                dst[x * 3] = s0;
                dst[(x * 3) + 1] = s1;
                dst[(x * 3) + 2] = s2;
            }
        }
    }

    private void VerticalPass<TSink>(ref TSink sink)
        where TSink : IPixelSink, allows ref struct
    {
        int outW = _spec.Width, outH = _spec.Height;
        var plane = outW * outH;
        var nchw = _spec.Layout == TensorLayout.Nchw;
        // Tensor indices of channels 0, 1, 2 of pixel i are i * step + channelStride * c.
        var step = nchw ? 1 : 3;
        var channelStride = nchw ? plane : 1;
        var filter = _vertical;
        ReadOnlySpan<float> rows = _rows;
        var pad = _spec.PadValue;
        for (var y = 0; y < outH; y++)
        {
            var count = filter.Count[y];
            var weights = filter.Weights.AsSpan(y * filter.MaxTaps, count);
            var firstRow = filter.Start[y] - _firstRow;
            for (var x = 0; x < outW; x++)
            {
                float s0 = 0, s1 = 0, s2 = 0;
                var p = ((firstRow * outW) + x) * 3;
                for (var k = 0; k < weights.Length; k++, p += outW * 3)
                {
                    var w = weights[k];
                    s0 += rows[p] * w;
                    s1 += rows[p + 1] * w;
                    s2 += rows[p + 2] * w;
                }

                if (count == 0)
                {
                    s0 = s1 = s2 = pad;
                }

                // Clamp like an 8-bit resize would, so ringing-free values stay in the pixel range.
                s0 = Math.Clamp(s0, 0f, 255f);
                s1 = Math.Clamp(s1, 0f, 255f);
                s2 = Math.Clamp(s2, 0f, 255f);
                var i = ((y * outW) + x) * step;
                sink.Write(i, i + channelStride, i + (2 * channelStride), s0, s1, s2);
            }
        }
    }

    /// <summary>The final write of one output pixel (channel values already clamped to 0–255) into a typed tensor.</summary>
    private interface IPixelSink
    {
        void Write(int i0, int i1, int i2, float s0, float s1, float s2);
    }

    /// <summary>float32 tensor: <c>(v * Scale - Mean) / Std</c>.</summary>
    private readonly ref struct FloatSink(Span<float> destination, float[] multiplier, float[] offset) : IPixelSink
    {
        private readonly Span<float> _destination = destination;
        private readonly float _m0 = multiplier[0], _m1 = multiplier[1], _m2 = multiplier[2];
        private readonly float _o0 = offset[0], _o1 = offset[1], _o2 = offset[2];

        public void Write(int i0, int i1, int i2, float s0, float s1, float s2)
        {
            _destination[i0] = (s0 * _m0) + _o0;
            _destination[i1] = (s1 * _m1) + _o1;
            _destination[i2] = (s2 * _m2) + _o2;
        }
    }

    /// <summary>uint8 tensor: the pixel value rounded.</summary>
    private readonly ref struct ByteSink(Span<byte> destination) : IPixelSink
    {
        private readonly Span<byte> _destination = destination;

        public void Write(int i0, int i1, int i2, float s0, float s1, float s2)
        {
            _destination[i0] = ToByte(s0);
            _destination[i1] = ToByte(s1);
            _destination[i2] = ToByte(s2);
        }
    }

    /// <summary>int8 tensor: the pixel value rounded, minus 128.</summary>
    private readonly ref struct SByteSink(Span<sbyte> destination) : IPixelSink
    {
        private readonly Span<sbyte> _destination = destination;

        public void Write(int i0, int i1, int i2, float s0, float s1, float s2)
        {
            _destination[i0] = (sbyte)(ToByte(s0) - 128);
            _destination[i1] = (sbyte)(ToByte(s1) - 128);
            _destination[i2] = (sbyte)(ToByte(s2) - 128);
        }
    }

    /// <summary>Rounds a value already clamped to 0–255 to the nearest pixel value (halves away from zero).</summary>
    private static byte ToByte(float value) => (byte)MathF.Round(value, MidpointRounding.AwayFromZero);

    /// <summary>Per-output-pixel taps along one axis: which source pixels and with which weights.</summary>
    private readonly struct AxisFilter
    {
        public int[] Start { get; init; }

        public int[] Count { get; init; }

        public float[] Weights { get; init; }

        public int MaxTaps { get; init; }

        /// <summary>
        /// Output i covers resized coordinate (i + crop); the resized axis of length
        /// <paramref name="resized"/> spans the whole source axis. Outputs outside the resized image get no taps (padding).
        /// </summary>
        public static AxisFilter Create(int sourceLength, double resized, double crop, int outputLength)
        {
            var scale = sourceLength / resized;
            var support = Math.Max(scale, 1.0);
            var maxTaps = (int)Math.Ceiling(support) * 2 + 1;
            var start = new int[outputLength];
            var count = new int[outputLength];
            var weights = new float[outputLength * maxTaps];
            for (var i = 0; i < outputLength; i++)
            {
                var resizedPos = i + crop;
                if (resizedPos < 0 || resizedPos >= resized)
                {
                    continue; // padding
                }

                var center = (resizedPos + 0.5) * scale;
                var first = Math.Max(0, (int)Math.Floor(center - support));
                var last = Math.Min(sourceLength, (int)Math.Ceiling(center + support));
                double total = 0;
                var n = 0;
                for (var j = first; j < last && n < maxTaps; j++)
                {
                    var w = 1.0 - Math.Abs((j + 0.5 - center) / support);
                    if (w <= 0)
                    {
                        if (n == 0)
                        {
                            first = j + 1;
                        }

                        continue;
                    }

                    weights[(i * maxTaps) + n] = (float)w;
                    total += w;
                    n++;
                }

                if (n == 0)
                {
                    // Degenerate (should not happen): take the nearest pixel.
                    first = Math.Clamp((int)center, 0, sourceLength - 1);
                    weights[i * maxTaps] = 1;
                    n = 1;
                    total = 1;
                }

                for (var k = 0; k < n; k++)
                {
                    weights[(i * maxTaps) + k] = (float)(weights[(i * maxTaps) + k] / total);
                }

                start[i] = first;
                count[i] = n;
            }

            return new AxisFilter { Start = start, Count = count, Weights = weights, MaxTaps = maxTaps };
        }

        /// <summary>The half-open range of source indices any output reads.</summary>
        public (int First, int Last) SourceRange()
        {
            int first = int.MaxValue, last = 0;
            for (var i = 0; i < Start.Length; i++)
            {
                if (Count[i] == 0)
                {
                    continue;
                }

                first = Math.Min(first, Start[i]);
                last = Math.Max(last, Start[i] + Count[i]);
            }

            return first == int.MaxValue ? (0, 0) : (first, last);
        }
    }
}
