using EdgeRunner.Hardware.Cameras.Ffmpeg;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Vision.Sources;

/// <summary>
/// <c>Cameras:{id}:Source</c> with Kind <c>V4l2</c>: a V4L2 camera (<c>/dev/videoN</c>: USB, CSI through
/// libcamera's V4L2 compatibility), through ffmpeg.
/// </summary>
public sealed class V4l2SourceOptions : FfmpegCameraSourceOptions
{
    /// <inheritdoc />
    public override string Kind => "V4l2";

    /// <summary>Format asked of the camera: Auto, Mjpeg or Yuyv422.</summary>
    public string InputFormat { get; set; } = "Auto";

    /// <summary>Capture width asked of the camera (0 = driver default).</summary>
    public int CaptureWidth { get; set; }

    /// <summary>Capture height asked of the camera (0 = driver default).</summary>
    public int CaptureHeight { get; set; }

    /// <summary>Capture rate asked of the camera (0 = driver default).</summary>
    public double CaptureFps { get; set; }

    private protected override FfmpegInputKind InputKind => FfmpegInputKind.V4l2;

    private protected override string PathDescription => "device such as /dev/video0";

    private protected override void ValidateKind(string sourceKey, ValidationErrors errors)
    {
        if (!Enum.TryParse<V4l2InputFormat>(InputFormat, ignoreCase: true, out _))
        {
            errors.Add($"{sourceKey}:InputFormat", $"must be Auto, Mjpeg or Yuyv422 (got '{InputFormat}')");
        }
    }

    private protected override FfmpegSourceOptions Configure(FfmpegSourceOptions options) => options with
    {
        V4l2InputFormat = Enum.Parse<V4l2InputFormat>(InputFormat, ignoreCase: true),
        CaptureWidth = CaptureWidth > 0 ? CaptureWidth : null,
        CaptureHeight = CaptureHeight > 0 ? CaptureHeight : null,
        CaptureFps = CaptureFps > 0 ? CaptureFps : null,
    };
}
