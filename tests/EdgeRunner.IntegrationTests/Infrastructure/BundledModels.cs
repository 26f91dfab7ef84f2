using EdgeRunner.Models.Manifests;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>The demo models committed under models/bundled.</summary>
internal static class BundledModels
{
    public static string Folder => Path.Combine(TestPaths.RepositoryRoot, "models", "bundled");

    public static string ManifestPath(string name) => Path.Combine(Folder, name, "model.json");

    public static ModelManifest Load(string name)
    {
        var path = ManifestPath(name);
        Assert.True(File.Exists(path), $"bundled model manifest {path} is missing");
        return ModelManifest.Load(path);
    }
}
