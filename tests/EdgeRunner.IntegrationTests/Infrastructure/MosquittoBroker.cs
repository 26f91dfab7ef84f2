using System.Diagnostics;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>A real mosquitto broker on a free loopback port, started for a test and killed after it.</summary>
internal sealed class MosquittoBroker : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly bool _ownsDirectory;
    private bool _disposed;

    private MosquittoBroker(Process process, string directory, bool ownsDirectory, int port)
    {
        _process = process;
        _directory = directory;
        _ownsDirectory = ownsDirectory;
        Port = port;
    }

    public int Port { get; }

    /// <summary>
    /// Starts a broker. With <paramref name="persistenceDirectory"/> it keeps sessions and queued
    /// messages across a graceful restart (as a production broker would); pass the same port and
    /// folder to restart it.
    /// </summary>
    public static async Task<MosquittoBroker> StartAsync(CancellationToken cancellationToken, int? port = null, string? persistenceDirectory = null)
    {
        var executable = new[] { "/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto" }.FirstOrDefault(File.Exists);
        Requirement.That(executable is not null, "mosquitto is not installed (tests/run.sh installs the Debian package 'mosquitto').");
        var listenPort = port ?? FreePort.Next();
        var directory = persistenceDirectory ?? System.IO.Directory.CreateTempSubdirectory("edgerunner-mosquitto-").FullName;
        // mosquitto started as root drops to the 'mosquitto' user: it must be able to write its database here.
        File.SetUnixFileMode(directory, (UnixFileMode)0x1FF); // 0777
        var config = Path.Combine(directory, "mosquitto.conf");
        var persistence = persistenceDirectory is null
            ? "persistence false\n"
            : $"persistence true\npersistence_location {directory}/\nautosave_interval 0\n";
        await File.WriteAllTextAsync(config, $"listener {listenPort} 127.0.0.1\nallow_anonymous true\n{persistence}", cancellationToken);
        var start = new ProcessStartInfo(executable!, ["-c", config])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("mosquitto did not start.");
        }
        catch
        {
            DeleteOwned(directory, persistenceDirectory is null);
            throw;
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var broker = new MosquittoBroker(process, directory, persistenceDirectory is null, listenPort);
        try
        {
            await FreePort.WaitUntilListeningAsync(listenPort, TimeSpan.FromSeconds(10), cancellationToken);
        }
        catch
        {
            // Never leave a broker process or its folder behind when the start-up wait fails.
            await broker.DisposeAsync();
            throw;
        }

        return broker;
    }

    /// <summary>Stops the broker with SIGTERM (it saves its database when persistence is on).</summary>
    public async Task StopGracefullyAsync(CancellationToken cancellationToken)
    {
        if (_process.HasExited)
        {
            return;
        }

        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(cancellationToken);
        }

        await _process.WaitForExitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        DeleteOwned(_directory, _ownsDirectory);
    }

    private static void DeleteOwned(string directory, bool owned)
    {
        if (owned && System.IO.Directory.Exists(directory))
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }
    }
}
