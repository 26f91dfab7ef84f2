using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Vision.Sources;

/// <summary>
/// <c>Cameras:{id}:Source</c>: where a camera's frames come from. One sealed subclass per <see cref="Kind"/>, each
/// in its own file next to this one, holds only that kind's keys, validates them (bounds, required keys) and
/// builds the source; <see cref="CameraSourceKinds"/> picks the subclass by the <c>Kind</c> key, binds the
/// section to it and refuses keys the kind does not read. A new camera kind is one such file plus its line in
/// <see cref="CameraSourceKinds"/>.
/// </summary>
public abstract class CameraSourceOptions
{
    /// <summary>The kind's name, as written in <c>Source:Kind</c> (matched without regard to case).</summary>
    public abstract string Kind { get; }

    /// <summary>Appends the problems of this kind's keys; <paramref name="cameraKey"/> is <c>Cameras:{id}</c>.</summary>
    internal abstract void Validate(string cameraKey, CameraOptions camera, ValidationErrors errors);

    /// <summary>Builds the source (at start and on every capture restart). Throws <see cref="FrameSourceException"/> when it cannot.</summary>
    internal abstract IFrameSource Create(CameraSourceContext context);

    /// <summary>Resolves this kind's file paths (<see cref="PathResolver.Resolve"/>); devices and URLs are not paths.</summary>
    internal virtual void ResolvePaths()
    {
    }
}

/// <summary>What a camera source kind needs to build its source.</summary>
/// <param name="CameraId">The camera's id (key of <c>Cameras</c>).</param>
/// <param name="Camera">The camera's options (rate, queue, stall and reconnect settings).</param>
/// <param name="Pool">The pool the source rents its frames from.</param>
/// <param name="TimeProvider">The clock every pause and timeout goes through.</param>
/// <param name="LoggerFactory">For the source's own logger.</param>
internal sealed record CameraSourceContext(string CameraId, CameraOptions Camera, FramePool Pool, TimeProvider TimeProvider, ILoggerFactory LoggerFactory)
{
    /// <summary>The camera's logger (<c>EdgeRunner.Camera.{id}</c>), which its pipeline logs to as well.</summary>
    public ILogger CameraLogger => LoggerFactory.CreateLogger($"EdgeRunner.Camera.{CameraId}");
}
