using System.Diagnostics;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>
/// A TLS listener of <see cref="MosquittoBroker"/>: its certificate and key, the CA(s) it checks client certificates
/// against, whether it requires one (mutual TLS), and its port (a free one when null).
/// </summary>
/// <remarks>With <see cref="PasswordFile"/> (a <c>mosquitto_passwd</c> file) the TLS listener refuses anonymous clients; the plain one still takes them.</remarks>
internal sealed record MosquittoTls(string CaFile, string CertFile, string KeyFile, bool RequireCertificate = false, int? Port = null, string? PasswordFile = null);

/// <summary>
/// Authentication and authorization of <see cref="MosquittoBroker"/>'s plain listener: a <c>mosquitto_passwd</c> file
/// (anonymous clients are refused) and a mosquitto ACL file (<c>user …</c> / <c>topic read|write|readwrite …</c>).
/// </summary>
internal sealed record MosquittoAuth(string PasswordFile, string AclFile);

/// <summary>A real mosquitto broker on a free loopback port, started for a test and killed after it.</summary>
internal sealed class MosquittoBroker : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _log = new();
    private readonly string _directory;
    private readonly bool _ownsDirectory;
    private bool _disposed;

    private MosquittoBroker(Process process, string directory, bool ownsDirectory, int port, int? tlsPort)
    {
        _process = process;
        _directory = directory;
        _ownsDirectory = ownsDirectory;
        Port = port;
        TlsPort = tlsPort;
    }

    public int Port { get; }

    /// <summary>What mosquitto logged so far (connections, refusals and why), for failure messages.</summary>
    public string Log => string.Join("\n", _log);

    /// <summary>The TLS listener's port (on 127.0.0.1); null without one.</summary>
    public int? TlsPort { get; }

    /// <summary>
    /// Starts a broker. With <paramref name="persistenceDirectory"/> it keeps sessions and queued
    /// messages across a graceful restart (as a production broker would); pass the same port and
    /// folder to restart it. With <paramref name="tls"/> it listens with TLS on a second port as well (plain
    /// <see cref="Port"/> stays, for probes).
    /// </summary>
    /// <remarks>With <paramref name="auth"/> (not with <paramref name="tls"/>) the plain listener takes only the users of its password file, each limited by its ACL.</remarks>
    public static async Task<MosquittoBroker> StartAsync(CancellationToken cancellationToken, int? port = null, string? persistenceDirectory = null, MosquittoTls? tls = null, MosquittoAuth? auth = null)
    {
        if (auth is not null && tls is not null)
        {
            throw new ArgumentException("MosquittoAuth applies to a broker without a TLS listener.", nameof(auth));
        }

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
        var tlsPort = tls is null ? (int?)null : tls.Port ?? FreePort.Next();
        var tlsListener = tls is null ? string.Empty : TlsListener(tls, tlsPort!.Value, directory);
        // With a password file each listener has its own rules: the plain one stays anonymous, for probes.
        var text = tls?.PasswordFile is null
            ? $"listener {listenPort} 127.0.0.1\n{tlsListener}allow_anonymous true\n{persistence}"
            : $"per_listener_settings true\nlistener {listenPort} 127.0.0.1\nallow_anonymous true\n{tlsListener}allow_anonymous false\npassword_file {CopyInto(directory, tls.PasswordFile)}\n{persistence}";
        if (auth is not null)
        {
            text = $"listener {listenPort} 127.0.0.1\nallow_anonymous false\npassword_file {CopyInto(directory, auth.PasswordFile)}\nacl_file {CopyInto(directory, auth.AclFile)}\n{persistence}";
        }

        await File.WriteAllTextAsync(config, text, cancellationToken);
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

        var broker = new MosquittoBroker(process, directory, persistenceDirectory is null, listenPort, tlsPort);
        process.OutputDataReceived += (_, e) => broker.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => broker.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await FreePort.WaitUntilListeningAsync(listenPort, TimeSpan.FromSeconds(10), cancellationToken);
            if (tlsPort is { } listening)
            {
                await FreePort.WaitUntilListeningAsync(listening, TimeSpan.FromSeconds(10), cancellationToken);
            }
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

    private void Keep(string? line)
    {
        if (line is not null && _log.Count < 10_000)
        {
            _log.Enqueue(line);
        }
    }

    // mosquitto started as root reads its files as the 'mosquitto' user: copies in its own (world-readable) folder,
    // named per start so a restart with other files (rotation) never reads the old ones.
    private static string TlsListener(MosquittoTls tls, int port, string directory) =>
        $"listener {port} 127.0.0.1\ncafile {CopyInto(directory, tls.CaFile)}\ncertfile {CopyInto(directory, tls.CertFile)}\nkeyfile {CopyInto(directory, tls.KeyFile)}\n"
        + $"require_certificate {(tls.RequireCertificate ? "true" : "false")}\n";

    private static string CopyInto(string directory, string file)
    {
        var copy = Path.Combine(directory, $"{Guid.NewGuid().ToString("N")[..8]}-{Path.GetFileName(file)}");
        File.Copy(file, copy, overwrite: true);
        File.SetUnixFileMode(copy, (UnixFileMode)0x1A4); // 0644: a test key, in a folder deleted with the broker
        return copy;
    }

    private static void DeleteOwned(string directory, bool owned)
    {
        if (owned && System.IO.Directory.Exists(directory))
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }
    }
}
