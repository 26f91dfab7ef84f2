using EdgeRunner.Hardware.Cameras.Ffmpeg;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Vision.Sources;

/// <summary><c>Cameras:{id}:Source</c> with Kind <c>File</c>: a video file, decoded by ffmpeg.</summary>
public sealed class FileSourceOptions : FfmpegCameraSourceOptions
{
    /// <inheritdoc />
    public override string Kind => "File";

    /// <summary>Start again after the end; false ends the camera.</summary>
    public bool Loop { get; set; } = true;

    /// <summary>Read at the video's own rate, like a camera (false: as fast as inference takes frames).</summary>
    public bool RealTime { get; set; } = true;

    private protected override FfmpegInputKind InputKind => FfmpegInputKind.File;

    private protected override string PathDescription => "video file";

    private protected override bool Finite => !Loop;

    private protected override FfmpegSourceOptions Configure(FfmpegSourceOptions options) => options with { Loop = Loop, RealTime = RealTime };

    internal override void ResolvePaths() => Path = PathResolver.Resolve(Path);
}
