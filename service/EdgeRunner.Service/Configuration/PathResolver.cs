namespace EdgeRunner.Service.Configuration;

/// <summary>
/// Resolves configured file paths: absolute paths as they are; relative paths against the working
/// directory first, then the daemon's own folder (where the bundled models are installed), so the
/// same configuration works from a source checkout and from an installed package.
/// </summary>
internal static class PathResolver
{
    public static string Resolve(string path)
    {
        if (string.IsNullOrWhiteSpace(path) || Path.IsPathRooted(path))
        {
            return path;
        }

        var fromWorkingDirectory = Path.GetFullPath(path);
        if (File.Exists(fromWorkingDirectory) || Directory.Exists(fromWorkingDirectory))
        {
            return fromWorkingDirectory;
        }

        var fromBinary = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, path));
        return File.Exists(fromBinary) || Directory.Exists(fromBinary) ? fromBinary : fromWorkingDirectory;
    }

    public static void ResolveModels(ModelsOptions models)
    {
        foreach (var model in models.Values)
        {
            model.Manifest = Resolve(model.Manifest);
            model.Path = Resolve(model.Path);
            model.Labels = Resolve(model.Labels);
        }
    }

    public static void ResolveSensors(SensorsOptions sensors)
    {
        foreach (var stream in sensors.Values)
        {
            stream.Source.ResolvePaths(Resolve);
        }
    }

    public static void ResolveCameras(CamerasOptions cameras)
    {
        foreach (var camera in cameras.Values)
        {
            // Each kind resolves its own files: device paths are absolute and URLs are not paths.
            camera.Source.ResolvePaths();
        }
    }
}
