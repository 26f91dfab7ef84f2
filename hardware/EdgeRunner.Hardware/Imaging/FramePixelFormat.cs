namespace EdgeRunner.Hardware.Imaging;

/// <summary>Byte layout of one pixel in a <see cref="Frame"/>, 8 bits per channel.</summary>
public enum FramePixelFormat
{
    /// <summary>Red, green, blue; 3 bytes per pixel.</summary>
    Rgb24,

    /// <summary>Blue, green, red; 3 bytes per pixel (OpenCV and most V4L2 BGR sources).</summary>
    Bgr24,

    /// <summary>Red, green, blue, alpha; 4 bytes per pixel (what Skia decodes into).</summary>
    Rgba32,

    /// <summary>Blue, green, red, alpha; 4 bytes per pixel.</summary>
    Bgra32,
}

/// <summary>Helpers for <see cref="FramePixelFormat"/>.</summary>
public static class FramePixelFormatExtensions
{
    /// <summary>Bytes one pixel occupies.</summary>
    public static int BytesPerPixel(this FramePixelFormat format) => format switch
    {
        FramePixelFormat.Rgb24 or FramePixelFormat.Bgr24 => 3,
        FramePixelFormat.Rgba32 or FramePixelFormat.Bgra32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown pixel format."),
    };
}
