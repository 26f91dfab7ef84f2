using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Manifests;

namespace EdgeRunner.IntegrationTests;

/// <summary>Every committed model matches its manifest.</summary>
public sealed class BundledModelTests
{
    public static TheoryData<string> Manifests()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.EnumerateDirectories(BundledModels.Folder).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(dir));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Manifests))]
    public void Model_file_matches_its_manifest_sha256_and_size_limit(string name)
    {
        var manifest = BundledModels.Load(name);

        Assert.Equal(manifest.Sha256, manifest.VerifySha256());
        Assert.InRange(new FileInfo(manifest.ModelPath).Length, 1, 2 * 1024 * 1024);
        Assert.Equal(name, manifest.Id);
        Assert.NotEmpty(manifest.Labels);
    }

    [Fact]
    public void A_tampered_model_is_refused_naming_file_and_manifest()
    {
        var manifest = BundledModels.Load("shapes-detector");
        var dir = Directory.CreateTempSubdirectory("edgerunner-tamper-").FullName;
        try
        {
            File.Copy(manifest.ManifestPath, Path.Combine(dir, "model.json"));
            var bytes = File.ReadAllBytes(manifest.ModelPath);
            bytes[^1] ^= 0xFF;
            File.WriteAllBytes(Path.Combine(dir, manifest.File), bytes);

            var copy = ModelManifest.Load(Path.Combine(dir, "model.json"));
            var ex = Assert.Throws<ManifestException>(() => copy.VerifySha256());
            Assert.Contains(copy.ModelPath, ex.Message, StringComparison.Ordinal);
            Assert.Contains("model.json", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
