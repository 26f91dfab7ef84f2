using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Vision.Sources;

/// <summary><c>Cameras:{id}:Source</c> with Kind <c>Images</c>: an image file or a folder of images, in name order.</summary>
public sealed class ImagesSourceOptions : CameraSourceOptions
{
    /// <inheritdoc />
    public override string Kind => "Images";

    /// <summary>The image file or folder.</summary>
    public string Path { get; set; } = string.Empty;

    /// <summary>Start again after the last image; false ends the camera.</summary>
    public bool Loop { get; set; } = true;

    /// <summary>
    /// Largest image decoded, in pixels (width × height; default 8K, 7680×4320), judged from the file's header
    /// before any memory is taken. A larger image is skipped with a warning.
    /// </summary>
    public long MaxPixels { get; set; } = ImageFileFrameSource.DefaultMaxPixels;

    internal override void Validate(string cameraKey, CameraOptions camera, ValidationErrors errors)
    {
        if (string.IsNullOrWhiteSpace(Path))
        {
            errors.Add($"{cameraKey}:Source:Path", "is required for Kind Images");
        }
        else if (!File.Exists(Path) && !Directory.Exists(Path))
        {
            errors.Add($"{cameraKey}:Source:Path", $"'{Path}' is neither a file nor a folder");
        }

        // Decoded as RGBA: four bytes a pixel must fit in one array.
        errors.Range($"{cameraKey}:Source:MaxPixels", MaxPixels, 1, Array.MaxLength / 4);
    }

    internal override IFrameSource Create(CameraSourceContext context) =>
        new ImageFileFrameSource(Path, Loop, context.Camera.Fps, context.Pool, context.TimeProvider, context.LoggerFactory.CreateLogger<ImageFileFrameSource>(), MaxPixels);

    internal override void ResolvePaths() => Path = PathResolver.Resolve(Path);
}
