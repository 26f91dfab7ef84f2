using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Vision.Sources;

/// <summary><c>Cameras:{id}:Source</c> with Kind <c>Synthetic</c>: rendered moving shapes, deterministic from a seed.</summary>
public sealed class SyntheticSourceOptions : CameraSourceOptions
{
    /// <inheritdoc />
    public override string Kind => "Synthetic";

    /// <summary>Frame width delivered to the pipeline.</summary>
    public int Width { get; set; } = 640;

    /// <summary>Frame height delivered to the pipeline.</summary>
    public int Height { get; set; } = 480;

    /// <summary>Scene seed.</summary>
    public int Seed { get; set; } = 1;

    internal override void Validate(string cameraKey, CameraOptions camera, ValidationErrors errors)
    {
        errors.Range($"{cameraKey}:Source:Width", Width, 32, 8192);
        errors.Range($"{cameraKey}:Source:Height", Height, 32, 8192);
    }

    internal override IFrameSource Create(CameraSourceContext context) =>
        new SyntheticFrameSource(Width, Height, Seed, context.Camera.Fps, context.Pool, context.TimeProvider);
}
