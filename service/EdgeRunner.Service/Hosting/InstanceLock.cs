using System.Globalization;
using System.Text;

namespace EdgeRunner.Service;

/// <summary>
/// Refuses a second daemon for the same MQTT identity on this device before it touches the broker:
/// an exclusive <c>flock</c> (what <see cref="FileShare.None"/> takes on Linux) on a lock file named by
/// the client id and broker endpoint, in <see cref="ResolveDirectory"/>. A second daemon with the same
/// client id on the same broker would take over the first one's MQTT session; daemons with another
/// device id, client id or broker (tests running several at once, or several simulated devices) lock
/// other files and run side by side. The kernel drops the lock when the process dies, however it dies;
/// the holder writes its PID to a <c>.pid</c> file beside it (the locked file itself cannot be read by
/// another .NET process, which would need a shared lock) and removes both on a clean exit.
/// </summary>
internal sealed class InstanceLock : IDisposable
{
    private readonly FileStream _stream;
    private readonly string _pidPath;

    private InstanceLock(FileStream stream, string path, string pidPath)
    {
        _stream = stream;
        Path = path;
        _pidPath = pidPath;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>
    /// Where lock files go: <c>$RUNTIME_DIRECTORY</c> (systemd's <c>RuntimeDirectory=</c>, /run/edgerunner
    /// for the packaged unit); else /run/edgerunner when it exists, so a daemon started by hand on a
    /// device where the packaged service runs finds the service's lock; else <c>$XDG_RUNTIME_DIR</c>
    /// (/run/user/UID); else the temporary folder.
    /// </summary>
    public static string ResolveDirectory()
    {
        var runtime = Environment.GetEnvironmentVariable("RUNTIME_DIRECTORY");
        if (!string.IsNullOrEmpty(runtime))
        {
            // Several RuntimeDirectory= entries arrive colon-separated; the first is ours.
            return runtime.Split(':')[0];
        }

        if (Directory.Exists(PackagedRuntimeDirectory))
        {
            return PackagedRuntimeDirectory;
        }

        var xdg = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        return !string.IsNullOrEmpty(xdg) && Directory.Exists(xdg) ? xdg : System.IO.Path.GetTempPath();
    }

    /// <summary>The packaged unit's runtime directory (created by its tmpfiles.d entry, kept across restarts).</summary>
    public const string PackagedRuntimeDirectory = "/run/edgerunner";

    /// <summary>The lock file name for one MQTT identity: <c>edgerunner-{clientId}@{host}_{port}.lock</c>, filename-safe.</summary>
    public static string FileNameFor(string clientId, string host, int port)
    {
        var name = new StringBuilder("edgerunner-");
        foreach (var c in $"{clientId}@{host}_{port.ToString(CultureInfo.InvariantCulture)}")
        {
            name.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '@' ? c : '_');
        }

        return name.Append(".lock").ToString();
    }

    /// <summary>Takes the lock or throws <see cref="StartupException"/> (exit 69) naming the running daemon's PID.</summary>
    public static InstanceLock Acquire(string directory, string fileName)
    {
        var path = System.IO.Path.Combine(directory, fileName);
        var pidPath = System.IO.Path.ChangeExtension(path, ".pid");
        // A holder that exits removes the file while it still holds the lock; a file opened just before
        // that is then locked but unlinked, so retry on the new one (the /proc check below).
        for (var attempt = 0; ; attempt++)
        {
            FileStream stream;
            try
            {
                // Read access is enough for flock; 0644 lets a daemon of another user (root by hand, the
                // service user) lock a file the other one left after a crash.
                stream = new FileStream(path, new FileStreamOptions
                {
                    Mode = FileMode.OpenOrCreate,
                    Access = FileAccess.Read,
                    Share = FileShare.None,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                });
            }
            catch (UnauthorizedAccessException ex)
            {
                throw new StartupException($"cannot open the instance lock {path}: {ex.Message}", StartupException.ServiceUnavailable, ex);
            }
            catch (DirectoryNotFoundException ex)
            {
                throw new StartupException($"cannot open the instance lock {path}: {ex.Message}", StartupException.ServiceUnavailable, ex);
            }
            catch (IOException ex)
            {
                // EWOULDBLOCK from flock: another process holds it.
                var pid = ReadPid(pidPath);
                throw new StartupException(
                    $"another EdgeRunner daemon{(pid is null ? string.Empty : $" (PID {pid})")} already runs with this MQTT client id on this broker (lock {path}); " +
                    "stop it first (systemctl stop edgerunner), or give this one its own Device:Id or Mqtt:ClientId",
                    StartupException.ServiceUnavailable,
                    ex);
            }

            if (IsUnlinked(stream) && attempt < 5)
            {
                stream.Dispose();
                continue;
            }

            try
            {
                File.WriteAllText(pidPath, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The PID is only for the message a second daemon prints; the lock holds without it.
            }

            return new InstanceLock(stream, path, pidPath);
        }
    }

    /// <summary>Removes the files (still holding the lock, so nobody takes a file about to vanish) and releases it.</summary>
    public void Dispose()
    {
        try
        {
            File.Delete(_pidPath);
            File.Delete(Path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left behind: harmless, the next daemon locks and reuses it.
        }

        _stream.Dispose();
    }

    private static string? ReadPid(string pidPath)
    {
        try
        {
            var text = File.ReadAllText(pidPath).Trim();
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out _) ? text : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static bool IsUnlinked(FileStream stream)
    {
        // Linux names an fd whose file was unlinked "/path (deleted)".
        var link = new FileInfo($"/proc/self/fd/{stream.SafeFileHandle.DangerousGetHandle().ToInt64().ToString(CultureInfo.InvariantCulture)}").LinkTarget;
        return link?.EndsWith(" (deleted)", StringComparison.Ordinal) == true;
    }
}
