using System.Reflection;

namespace EdgeRunner.Benchmarks;

internal static class Paths
{
    /// <summary>The repository root: from the build (assembly metadata), else found upwards from the working directory.</summary>
    public static string RepositoryRoot { get; } = Find();

    public static string Bundled(string model, string file) => Path.Combine(RepositoryRoot, "models", "bundled", model, file);

    private static string Find()
    {
        var fromBuild = typeof(Paths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "RepositoryRoot")?.Value;
        if (fromBuild is not null && File.Exists(Path.Combine(fromBuild, "EdgeRunner.sln")))
        {
            return fromBuild;
        }

        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeRunner.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Cannot find the EdgeRunner repository (EdgeRunner.sln) to load models/bundled from.");
    }
}
