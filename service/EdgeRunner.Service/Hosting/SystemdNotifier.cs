using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace EdgeRunner.Service;

/// <summary>
/// The sd_notify protocol, spoken directly: one datagram of newline-separated <c>KEY=value</c>
/// assignments to the unix socket named by <c>NOTIFY_SOCKET</c> (a path, or an abstract name starting
/// with '@'). Used instead of <c>ISystemdNotifier</c> from Microsoft.Extensions.Hosting.Systemd because
/// that one only speaks when the parent process is systemd, so the protocol could not be tested from a
/// test that owns the socket; systemd itself accepts either. Without <c>NOTIFY_SOCKET</c> every call is
/// a no-op. Failures to send are swallowed: notification is best-effort in sd_notify too.
/// </summary>
internal sealed class SystemdNotifier : IDisposable
{
    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _endpoint;
    private readonly Lock _lock = new();

    private SystemdNotifier(string? socketPath, TimeSpan? watchdogInterval)
    {
        WatchdogInterval = watchdogInterval;
        if (string.IsNullOrEmpty(socketPath))
        {
            return;
        }

        // Abstract namespace: '@' in the variable, a leading NUL on the wire.
        _endpoint = new UnixDomainSocketEndPoint(socketPath[0] == '@' ? "\0" + socketPath[1..] : socketPath);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    }

    /// <summary>Whether a service manager listens (<c>NOTIFY_SOCKET</c> is set).</summary>
    public bool IsEnabled => _socket is not null;

    /// <summary>
    /// The service manager's watchdog timeout (<c>WATCHDOG_USEC</c>, for this process when
    /// <c>WATCHDOG_PID</c> names one), or null when no watchdog is asked for.
    /// </summary>
    public TimeSpan? WatchdogInterval { get; }

    /// <summary>Reads <c>NOTIFY_SOCKET</c>, <c>WATCHDOG_USEC</c> and <c>WATCHDOG_PID</c>.</summary>
    public static SystemdNotifier FromEnvironment()
    {
        var socket = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        TimeSpan? watchdog = null;
        if (long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out var usec) && usec > 0)
        {
            // sd_watchdog_enabled: a WATCHDOG_PID for another process (a parent that forked us) means not ours.
            var pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
            if (string.IsNullOrEmpty(pid) || pid == Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
            {
                watchdog = TimeSpan.FromMicroseconds(usec);
            }
        }

        return new SystemdNotifier(socket, watchdog);
    }

    /// <summary>Sends <paramref name="assignments"/> (e.g. "READY=1\nSTATUS=..."); false when not sent.</summary>
    public bool Notify(string assignments)
    {
        if (_socket is null || _endpoint is null)
        {
            return false;
        }

        var bytes = Encoding.UTF8.GetBytes(assignments);
        lock (_lock)
        {
            try
            {
                _socket.SendTo(bytes, _endpoint);
                return true;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return false;
            }
        }
    }

    /// <summary>A <c>STATUS=</c> line: one line, as systemctl shows it.</summary>
    public static string Status(string text) => "STATUS=" + text.ReplaceLineEndings(" ");

    public void Dispose()
    {
        lock (_lock)
        {
            _socket?.Dispose();
        }
    }
}
