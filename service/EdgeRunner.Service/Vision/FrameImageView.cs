using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Models.Imaging;

namespace EdgeRunner.Service.Vision;

/// <summary>
/// The one mapping from a camera <see cref="Frame"/> to the models library's <see cref="ImageView"/>: the hardware
/// and models projects know nothing of each other, so their pixel formats meet here, in the service.
/// </summary>
internal static class FrameImageView
{
    /// <summary>A view of the frame's pixels (no copy, no allocation).</summary>
    public static ImageView AsImageView(this Frame frame) =>
        new(frame.Pixels, frame.Width, frame.Height, frame.Stride, frame.PixelFormat.ToImageFormat());

    /// <summary>The models library's name for a frame's pixel layout.</summary>
    public static ImagePixelFormat ToImageFormat(this FramePixelFormat format) => format switch
    {
        FramePixelFormat.Rgb24 => ImagePixelFormat.Rgb24,
        FramePixelFormat.Bgr24 => ImagePixelFormat.Bgr24,
        FramePixelFormat.Rgba32 => ImagePixelFormat.Rgba32,
        FramePixelFormat.Bgra32 => ImagePixelFormat.Bgra32,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown pixel format."),
    };
}
