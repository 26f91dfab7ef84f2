using EdgeRunner.Hardware.Imaging;

namespace EdgeRunner.Hardware.Cameras.Ffmpeg;

/// <summary>What ffmpeg reads from.</summary>
public enum FfmpegInputKind
{
    /// <summary>A video file (any container/codec ffmpeg decodes); finite unless <see cref="FfmpegSourceOptions.Loop"/>.</summary>
    File,

    /// <summary>A V4L2 device such as /dev/video0 (USB/CSI camera).</summary>
    V4l2,

    /// <summary>An RTSP camera or NVR stream (H.264/H.265/MJPEG over RTP).</summary>
    Rtsp,

    /// <summary>An HTTP MJPEG stream (multipart/x-mixed-replace), as served by many IP cameras and ESP32-CAMs.</summary>
    HttpMjpeg,
}

/// <summary>Pixel format a V4L2 camera is asked to deliver (<c>-input_format</c>).</summary>
public enum V4l2InputFormat
{
    /// <summary>Whatever the driver defaults to.</summary>
    Auto,

    /// <summary>Compressed MJPEG: the usual choice for USB cameras above 640x480 (USB 2 bandwidth).</summary>
    Mjpeg,

    /// <summary>Uncompressed YUYV 4:2:2.</summary>
    Yuyv422,
}

/// <summary>
/// Everything an <see cref="FfmpegFrameSource"/> needs. Binds from configuration (all properties have
/// setters through <c>init</c> and sensible defaults); <see cref="Validate"/> reports what is wrong.
/// </summary>
public sealed record FfmpegSourceOptions
{
    /// <summary>What kind of input <see cref="Input"/> is.</summary>
    public FfmpegInputKind Kind { get; init; } = FfmpegInputKind.File;

    /// <summary>
    /// File path, device path (/dev/video0) or URL (rtsp://…, http://…). A URL may carry
    /// <c>user:password@</c>; it is redacted in every log line, description and error.
    /// </summary>
    public string Input { get; init; } = string.Empty;

    /// <summary>Width of the delivered frames; ffmpeg scales to it (the aspect ratio is not preserved).</summary>
    public int Width { get; init; } = 640;

    /// <summary>Height of the delivered frames.</summary>
    public int Height { get; init; } = 480;

    /// <summary>Rate of the delivered frames; ffmpeg's <c>fps</c> filter drops or repeats frames to hold it.</summary>
    public double Fps { get; init; } = 10;

    /// <summary>Layout of the delivered pixels: <see cref="FramePixelFormat.Bgr24"/> (default), Rgb24, Rgba32 or Bgra32.</summary>
    public FramePixelFormat PixelFormat { get; init; } = FramePixelFormat.Bgr24;

    /// <summary>V4L2 only: the format asked of the camera (<c>-input_format</c>).</summary>
    public V4l2InputFormat V4l2InputFormat { get; init; } = V4l2InputFormat.Auto;

    /// <summary>V4L2 only: capture width asked of the camera (<c>-video_size</c>); null leaves the driver's default.</summary>
    public int? CaptureWidth { get; init; }

    /// <summary>V4L2 only: capture height asked of the camera.</summary>
    public int? CaptureHeight { get; init; }

    /// <summary>V4L2 only: capture rate asked of the camera (<c>-framerate</c>); null leaves the driver's default.</summary>
    public double? CaptureFps { get; init; }

    /// <summary>File only: start again at the end (<c>-stream_loop -1</c>).</summary>
    public bool Loop { get; init; }

    /// <summary>File only: read at the file's own rate (<c>-re</c>) like a camera, rather than as fast as possible.</summary>
    public bool RealTime { get; init; } = true;

    /// <summary>RTSP only: interleave RTP in the RTSP TCP connection (<c>-rtsp_transport tcp</c>); no UDP loss or NAT issues.</summary>
    public bool RtspOverTcp { get; init; } = true;

    /// <summary>
    /// RTSP/HTTP only: a file whose first non-empty line is <c>user:password</c>; they are put into the URL
    /// (percent-encoded), replacing any credentials already there. Read on each (re)start, so a rotated
    /// password is picked up by the next reconnect. Never logged.
    /// </summary>
    public string? CredentialsFile { get; init; }

    /// <summary>
    /// Network kinds: how long ffmpeg waits to connect or for data before giving up with an error
    /// (<c>-timeout</c> for RTSP, <c>-rw_timeout</c> for HTTP).
    /// </summary>
    public TimeSpan IoTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long to wait for ffmpeg to exit after its output ended (or after it was killed) before killing it.</summary>
    public TimeSpan ExitTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The ffmpeg executable (the Debian package installs /usr/bin/ffmpeg).</summary>
    public string FfmpegPath { get; init; } = "/usr/bin/ffmpeg";

    /// <summary>ffmpeg's <c>-loglevel</c>: "error" (default) or "warning" for more detail in the captured stderr.</summary>
    public string FfmpegLogLevel { get; init; } = "error";

    /// <summary>How many of ffmpeg's last stderr lines are kept to explain a failure.</summary>
    public int StderrLines { get; init; } = 20;

    /// <summary>Extra arguments placed before <c>-i</c> (e.g. <c>-hwaccel</c>, <c>-f mpjpeg</c>); expert use.</summary>
    public IReadOnlyList<string> ExtraInputArguments { get; init; } = [];

    /// <summary>Whether the input is a live source (anything but a file): for it, ffmpeg ending is a failure, not an end.</summary>
    public bool IsLive => Kind != FfmpegInputKind.File;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Input))
        {
            throw new ArgumentException("Input (file, device or URL) is required.", nameof(Input));
        }

        if (Width < 1 || Height < 1)
        {
            throw new ArgumentException($"Frame size {Width}x{Height} is invalid.", nameof(Width));
        }

        if (!(Fps > 0) || double.IsInfinity(Fps))
        {
            throw new ArgumentException($"Fps {Fps} must be positive.", nameof(Fps));
        }

        if (!Enum.IsDefined(Kind))
        {
            throw new ArgumentException($"Unknown input kind {Kind}.", nameof(Kind));
        }

        if (FramePool.ByteCount(Width, Height, PixelFormat) < 0)
        {
            throw new ArgumentException($"Frame size {Width}x{Height} is too large for one buffer.", nameof(Width));
        }
        if ((CaptureWidth is null) != (CaptureHeight is null) || CaptureWidth < 1 || CaptureHeight < 1)
        {
            throw new ArgumentException("CaptureWidth and CaptureHeight go together and must be positive.", nameof(CaptureWidth));
        }

        if (CaptureFps is { } captureFps && !(captureFps > 0))
        {
            throw new ArgumentException($"CaptureFps {captureFps} must be positive.", nameof(CaptureFps));
        }

        if (IoTimeout <= TimeSpan.Zero || ExitTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("IoTimeout and ExitTimeout must be positive.", nameof(IoTimeout));
        }

        if (StderrLines < 1)
        {
            throw new ArgumentException("StderrLines must be at least 1.", nameof(StderrLines));
        }

        if (Kind is FfmpegInputKind.Rtsp or FfmpegInputKind.HttpMjpeg && !Input.Contains("://", StringComparison.Ordinal))
        {
            throw new ArgumentException($"{Kind} input must be a URL (scheme://host/...).", nameof(Input));
        }
    }
}
