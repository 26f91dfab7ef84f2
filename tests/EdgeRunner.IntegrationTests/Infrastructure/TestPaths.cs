namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>Where the repository, the built daemon and the shared reference material are.</summary>
internal static class TestPaths
{
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>../shared beside the repository (or EDGERUNNER_SHARED), null when absent.</summary>
    public static string? Shared { get; } = FindShared();

    /// <summary>The daemon's entry assembly, copied next to the tests by the project reference.</summary>
    public static string DaemonDll { get; } = Path.Combine(AppContext.BaseDirectory, "edgerunner.dll");

    /// <summary>
    /// A reference file in ../shared. Without ../shared the test skips on a developer's machine (and
    /// fails under CI); with ../shared present, a missing file is always a failure: it was renamed or
    /// deleted, and a skip would hide that.
    /// </summary>
    public static string SharedFile(string relative)
    {
        Requirement.That(Shared is not null, "../shared is not present beside the repository: reference models and images are unavailable.");
        var path = Path.Combine(Shared!, relative);
        Assert.True(File.Exists(path) || Directory.Exists(path), $"../shared/{relative} is missing although ../shared exists at {Shared}.");
        return path;
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeRunner.sln")))
            {
                return dir.FullName;
            }
        }

        var built = typeof(TestPaths).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .Cast<System.Reflection.AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "RepositoryRoot")?.Value;
        if (built is not null && File.Exists(Path.Combine(built, "EdgeRunner.sln")))
        {
            return built;
        }

        throw new InvalidOperationException($"EdgeRunner.sln not found above {AppContext.BaseDirectory} nor at {built}.");
    }

    private static string? FindShared()
    {
        var configured = Environment.GetEnvironmentVariable("EDGERUNNER_SHARED");
        var path = string.IsNullOrEmpty(configured) ? Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared")) : configured;
        return Directory.Exists(Path.Combine(path, "models")) ? path : null;
    }
}
