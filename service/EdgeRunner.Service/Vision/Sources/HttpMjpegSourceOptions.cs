using EdgeRunner.Hardware.Cameras.Ffmpeg;

namespace EdgeRunner.Service.Vision.Sources;

/// <summary><c>Cameras:{id}:Source</c> with Kind <c>HttpMjpeg</c>: an HTTP MJPEG stream, through ffmpeg.</summary>
public sealed class HttpMjpegSourceOptions : NetworkCameraSourceOptions
{
    /// <inheritdoc />
    public override string Kind => "HttpMjpeg";

    private protected override FfmpegInputKind InputKind => FfmpegInputKind.HttpMjpeg;

    private protected override string[] Schemes => ["http://", "https://"];
}
