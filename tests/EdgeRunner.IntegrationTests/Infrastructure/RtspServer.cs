using System.Diagnostics;
using System.Globalization;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>
/// A real RTSP server for a test (GStreamer's gst-rtsp-server via python3-gi, Rtsp/rtsp_server.py): a live
/// test pattern at <see cref="Url"/> behind Basic authentication (user <c>viewer</c>). Started and
/// waited for until it serves; can be stopped and started again on the same port (an outage); disposing
/// it always stops the server and deletes its folder (the credentials files).
/// </summary>
internal sealed class RtspServer : IAsyncDisposable
{
    private const string Python = "/usr/bin/python3";
    private static readonly TimeSpan StartWithin = TimeSpan.FromSeconds(15);

    private readonly TempFolder _folder;
    private readonly string _password;
    private readonly bool _passwordOnCommandLine;
    private Process? _process;

    private RtspServer(TempFolder folder, string password, bool passwordOnCommandLine)
    {
        _folder = folder;
        _password = password;
        _passwordOnCommandLine = passwordOnCommandLine;
        Port = FreePort.Next();
        CredentialsFile = Path.Combine(folder.Path, "camera.credentials");
    }

    public int Port { get; }

    /// <summary>The stream's URL, without credentials.</summary>
    public string Url => $"rtsp://127.0.0.1:{Port}/test";

    /// <summary>A camera credentials file (<c>viewer:password</c>) for the daemon's <c>CredentialsFile</c>.</summary>
    public string CredentialsFile { get; }

    /// <summary>
    /// Starts the server. Unless <paramref name="passwordOnCommandLine"/>, the server reads its password from a
    /// file, so that it is on no command line at all (for tests that scan every process's command line).
    /// </summary>
    public static async Task<RtspServer> StartAsync(string password, CancellationToken cancellationToken, bool passwordOnCommandLine = true)
    {
        Requirement.Program(Python, "python3");
        var folder = new TempFolder();
        var server = new RtspServer(folder, password, passwordOnCommandLine);
        try
        {
            await File.WriteAllTextAsync(server.CredentialsFile, $"viewer:{password}\n", cancellationToken);
            await server.StartAgainAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the (stopped) server again on the same port and waits until it serves.</summary>
    public async Task StartAgainAsync(CancellationToken cancellationToken)
    {
        var script = Path.Combine(TestPaths.RepositoryRoot, "tests", "EdgeRunner.IntegrationTests", "Rtsp", "rtsp_server.py");
        List<string> arguments = [script, Port.ToString(CultureInfo.InvariantCulture), "--user", "viewer"];
        if (_passwordOnCommandLine)
        {
            arguments.AddRange(["--password", _password]);
        }
        else
        {
            var passwordFile = Path.Combine(_folder.Path, "server.password");
            await File.WriteAllTextAsync(passwordFile, _password, cancellationToken);
            arguments.AddRange(["--password-file", passwordFile]);
        }

        var process = Process.Start(new ProcessStartInfo(Python, arguments)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        _process = process;

        // The script prints its ready line once it listens.
        var ready = process.StandardOutput.ReadLineAsync(cancellationToken).AsTask();
        if (await Task.WhenAny(ready, Task.Delay(StartWithin, cancellationToken)) != ready || ready.Result is null)
        {
            var stderr = process.HasExited ? await process.StandardError.ReadToEndAsync(cancellationToken) : $"(no answer in {StartWithin.TotalSeconds} s)";
            var exitCode = process.HasExited ? process.ExitCode : -1;
            await StopAsync();
            Requirement.That(
                exitCode != 3,
                $"GStreamer RTSP server unavailable ({stderr.Trim()}); install: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good");
            Assert.Fail($"rtsp_server.py did not start: exit {exitCode}: {stderr}");
        }
    }

    /// <summary>Kills the server (an outage); <see cref="StartAgainAsync"/> brings it back.</summary>
    public async Task StopAsync()
    {
        if (_process is not { } process)
        {
            return;
        }

        _process = null;
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }

        await process.WaitForExitAsync(CancellationToken.None);
        process.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _folder.Dispose();
    }
}
