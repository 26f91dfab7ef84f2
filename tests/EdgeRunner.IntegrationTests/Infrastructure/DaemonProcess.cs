using System.Diagnostics;
using System.Text;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>The real daemon as a child process (dotnet edgerunner.dll), with its output captured.</summary>
internal sealed class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    // The daemon's instance lock goes to $RUNTIME_DIRECTORY: one folder per process, removed on dispose,
    // so a killed daemon leaves no lock file behind (a test may pass its own).
    private readonly TempFolder _runtimeDirectory = new();

    // The built-in appsettings.json keeps state (checkpoints, the spool) in ./state, i.e. in the repository: a daemon
    // started on it gets a folder of its own instead, removed on dispose (a test may pass its own State__Directory).
    private readonly TempFolder _stateDirectory = new();
    private bool _disposed;

    private DaemonProcess(Process process) => _process = process;

    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public int Id => _process.Id;

    public static DaemonProcess Start(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory ?? TestPaths.RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(TestPaths.DaemonDll);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // Keep the child's configuration to what the test says: no inherited EDGERUNNER__ overrides.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("EDGERUNNER__", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(key);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start };
        var daemon = new DaemonProcess(process);
        if (environment?.ContainsKey("RUNTIME_DIRECTORY") != true)
        {
            start.Environment["RUNTIME_DIRECTORY"] = daemon._runtimeDirectory.Path;
        }

        if (!start.ArgumentList.Contains("--config") && environment?.ContainsKey("EDGERUNNER__State__Directory") != true)
        {
            start.Environment["EDGERUNNER__State__Directory"] = daemon._stateDirectory.Path;
        }

        process.OutputDataReceived += (_, e) =>
        {
            lock (daemon._stdout)
            {
                daemon._stdout.AppendLine(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            lock (daemon._stderr)
            {
                daemon._stderr.AppendLine(e.Data);
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return daemon;
    }

    /// <summary>Sends SIGTERM, as systemd does on stop.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"Daemon did not exit within {timeout}.\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        }

        // Let the asynchronous readers flush the last lines.
        _process.WaitForExit();
        return _process.ExitCode;
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
        _runtimeDirectory.Dispose();
        _stateDirectory.Dispose();
    }
}
