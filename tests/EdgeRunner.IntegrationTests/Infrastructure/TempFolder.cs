namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>A fresh folder under /tmp, deleted with its contents on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("edgerunner-test-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A file still open by a process being torn down; /tmp is cleaned eventually.
        }
    }
}
