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
