namespace EdgeRunner.Models.Imaging;

/// <summary>Byte layout of the pixels an <see cref="ImageView"/> points at, 8 bits per channel.</summary>
public enum ImagePixelFormat
{
    /// <summary>R, G, B.</summary>
    Rgb24,

    /// <summary>B, G, R.</summary>
    Bgr24,

    /// <summary>R, G, B, A.</summary>
    Rgba32,

    /// <summary>B, G, R, A.</summary>
    Bgra32,
}

/// <summary>A read-only view of interleaved 8-bit pixels owned by someone else (a camera frame).</summary>
public readonly ref struct ImageView
{
    /// <summary>Creates a view; throws when the span is too small for the given geometry.</summary>
    public ImageView(ReadOnlySpan<byte> pixels, int width, int height, int stride, ImagePixelFormat format)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        var bytesPerPixel = format is ImagePixelFormat.Rgb24 or ImagePixelFormat.Bgr24 ? 3 : 4;
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, width * bytesPerPixel);
        if (pixels.Length < ((height - 1) * stride) + (width * bytesPerPixel))
        {
            throw new ArgumentException($"Pixel span of {pixels.Length} bytes is too small for {width}x{height} stride {stride}.", nameof(pixels));
        }

        Pixels = pixels;
        Width = width;
        Height = height;
        Stride = stride;
        Format = format;
        BytesPerPixel = bytesPerPixel;
    }

    /// <summary>The pixel bytes.</summary>
    public ReadOnlySpan<byte> Pixels { get; }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Bytes per row.</summary>
    public int Stride { get; }

    /// <summary>Pixel layout.</summary>
    public ImagePixelFormat Format { get; }

    /// <summary>3 or 4.</summary>
    public int BytesPerPixel { get; }

    /// <summary>Byte offsets of red, green and blue inside one pixel.</summary>
    public (int Red, int Green, int Blue) ChannelOffsets =>
        Format is ImagePixelFormat.Rgb24 or ImagePixelFormat.Rgba32 ? (0, 1, 2) : (2, 1, 0);
}
