using EdgeRunner.Hardware.Cameras.Ffmpeg;

namespace EdgeRunner.Service.Vision.Sources;

/// <summary><c>Cameras:{id}:Source</c> with Kind <c>Rtsp</c>: an RTSP/RTSPS IP camera or NVR stream, through ffmpeg (TCP transport).</summary>
public sealed class RtspSourceOptions : NetworkCameraSourceOptions
{
    /// <inheritdoc />
    public override string Kind => "Rtsp";

    private protected override FfmpegInputKind InputKind => FfmpegInputKind.Rtsp;

    private protected override string[] Schemes => ["rtsp://", "rtsps://"];
}
