using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Cameras.Ffmpeg;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Vision.Sources;

/// <summary>
/// The keys and the supervised capture every ffmpeg kind shares (<c>File</c>, <c>V4l2</c>, <c>Rtsp</c>,
/// <c>HttpMjpeg</c>): ffmpeg decodes <see cref="Path"/> and scales to <see cref="Width"/> × <see cref="Height"/>,
/// and a <see cref="SupervisedFrameSource"/> restarts it when it fails or stalls
/// (<c>Cameras:{id}:StallTimeoutSeconds</c>, <c>ReconnectMinDelaySeconds</c>, <c>ReconnectMaxDelaySeconds</c>).
/// Each kind adds its own keys in its own file.
/// </summary>
public abstract class FfmpegCameraSourceOptions : CameraSourceOptions
{
    /// <summary>What ffmpeg opens: a video file, a V4L2 device or a URL (credentials in a URL are never logged).</summary>
    public string Path { get; set; } = string.Empty;

    /// <summary>Frame width delivered to the pipeline (ffmpeg scales to it).</summary>
    public int Width { get; set; } = 640;

    /// <summary>Frame height delivered to the pipeline (ffmpeg scales to it).</summary>
    public int Height { get; set; } = 480;

    /// <summary>ffmpeg's input kind for this camera kind.</summary>
    private protected abstract FfmpegInputKind InputKind { get; }

    /// <summary>What <see cref="Path"/> is, for the "is required" message ("video file", "URL").</summary>
    private protected abstract string PathDescription { get; }

    /// <summary>True for a source that ends for good (a video file played once): its end is not a failure.</summary>
    private protected virtual bool Finite => false;

    internal sealed override void Validate(string cameraKey, CameraOptions camera, ValidationErrors errors)
    {
        // Devices, streams and videos may appear later (USB hotplug, camera booting): a missing one is
        // reported by the camera's state and retried, not a startup error. Only the shape is checked.
        if (string.IsNullOrWhiteSpace(Path))
        {
            errors.Add($"{cameraKey}:Source:Path", $"is required for Kind {Kind} (a {PathDescription})");
        }
        else
        {
            ValidatePath($"{cameraKey}:Source:Path", errors);
        }

        errors.Range($"{cameraKey}:Source:Width", Width, 16, 8192);
        errors.Range($"{cameraKey}:Source:Height", Height, 16, 8192);
        ValidateKind($"{cameraKey}:Source", errors);
        errors.Positive($"{cameraKey}:StallTimeoutSeconds", camera.StallTimeoutSeconds);
    }

    internal sealed override IFrameSource Create(CameraSourceContext context)
    {
        var camera = context.Camera;
        var options = Configure(new FfmpegSourceOptions
        {
            Kind = InputKind,
            Input = Path,
            Width = Width,
            Height = Height,
            Fps = camera.Fps,
            PixelFormat = FramePixelFormat.Bgr24,
            Loop = true,
            RealTime = true,
        });
        var supervision = new SupervisionOptions
        {
            Name = context.CameraId,
            StallTimeout = TimeSpan.FromSeconds(camera.StallTimeoutSeconds),
            InitialBackoff = TimeSpan.FromSeconds(camera.ReconnectMinDelaySeconds),
            MaxBackoff = TimeSpan.FromSeconds(camera.ReconnectMaxDelaySeconds),
            // A live camera that ends has failed and comes back; a finite video file that ends is done,
            // and one that cannot be decoded will not get better by retrying for ever.
            RestartWhenEnded = !Finite,
            MaxConsecutiveFailures = Finite ? 3 : null,
        };
        var logger = context.CameraLogger;
        return new SupervisedFrameSource(() => new FfmpegFrameSource(options, context.Pool, context.TimeProvider, logger), supervision, context.TimeProvider, logger);
    }

    /// <summary>Checks a non-empty <see cref="Path"/> (a URL's scheme); <paramref name="key"/> is its full key.</summary>
    private protected virtual void ValidatePath(string key, ValidationErrors errors)
    {
    }

    /// <summary>Checks the kind's own keys; <paramref name="sourceKey"/> is <c>Cameras:{id}:Source</c>.</summary>
    private protected virtual void ValidateKind(string sourceKey, ValidationErrors errors)
    {
    }

    /// <summary>Adds the kind's own settings to ffmpeg's options.</summary>
    private protected virtual FfmpegSourceOptions Configure(FfmpegSourceOptions options) => options;
}
