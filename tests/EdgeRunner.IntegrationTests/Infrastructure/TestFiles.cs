[assembly: AssemblyFixture(typeof(EdgeRunner.IntegrationTests.Infrastructure.TestFiles))]

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>
/// One folder for the small files tests write and hand to daemons by path (configurations, broken
/// model files): created on first use, deleted with the test assembly, so a run leaves nothing in /tmp
/// even when a test fails half-way.
/// </summary>
public sealed class TestFiles : IDisposable
{
    private static readonly Lazy<string> Root = new(() => Directory.CreateTempSubdirectory("edgerunner-test-files-").FullName);

    /// <summary>A fresh path (not created) in the folder, ending in <paramref name="suffix"/>.</summary>
    public static string NewPath(string prefix, string suffix) => Path.Combine(Root.Value, $"{prefix}-{Guid.NewGuid():N}{suffix}");

    /// <inheritdoc />
    public void Dispose()
    {
        if (Root.IsValueCreated && Directory.Exists(Root.Value))
        {
            Directory.Delete(Root.Value, recursive: true);
        }
    }
}
