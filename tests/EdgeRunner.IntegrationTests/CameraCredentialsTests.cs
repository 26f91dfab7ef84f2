using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Camera passwords stay off every command line: the real daemon (a child process) pulls a real RTSP server
/// (GStreamer, Basic authentication) with the password in a credentials file and in a URL; while it runs,
/// every process's /proc/*/cmdline is read and the password is never there. ffmpeg gets the URL from a
/// private ffconcat script that is gone once streaming starts, and nothing is left when the daemon stops.
/// </summary>
public sealed class CameraCredentialsTests
{
    private const string Python = "/usr/bin/python3";

    [Fact]
    public async Task The_password_never_appears_on_any_command_line_while_cameras_with_credentials_stream()
    {
        Requirement.Program("/usr/bin/ffmpeg", "ffmpeg");
        Requirement.Program(Python, "python3");
        var ct = TestContext.Current.CancellationToken;

        // Unique per run, so that no other process on the machine can hold it by chance.
        var password = "Cam#" + Guid.NewGuid().ToString("N")[..12];
        var encoded = Uri.EscapeDataString(password);
        using var work = new TempFolder();
        var run = Directory.CreateDirectory(Path.Combine(work.Path, "run"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute).FullName;
        var credentials = Path.Combine(work.Path, "camera.credentials");
        await File.WriteAllTextAsync(credentials, $"viewer:{password}\n", ct);
        var port = FreePort.Next();
        using var server = await StartServerAsync(port, credentials, ct);
        try
        {
            await using var broker = await MosquittoBroker.StartAsync(ct);
            var deviceId = "creds-" + Guid.NewGuid().ToString("N")[..8];
            JsonObject Camera(JsonObject source) => new()
            {
                ["Model"] = "detector",
                ["Fps"] = 5,
                ["ReconnectMinDelaySeconds"] = 0.5,
                ["ReconnectMaxDelaySeconds"] = 2,
                ["Source"] = source,
            };
            var config = Path.Combine(work.Path, "config.json");
            await File.WriteAllTextAsync(
                config,
                new JsonObject
                {
                    ["Device"] = new JsonObject { ["Id"] = deviceId },
                    ["Mqtt"] = new JsonObject { ["Host"] = "127.0.0.1", ["Port"] = broker.Port },
                    ["Models"] = new JsonObject { ["detector"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("shapes-detector") } },
                    ["Cameras"] = new JsonObject
                    {
                        ["fromfile"] = Camera(new JsonObject { ["Kind"] = "Rtsp", ["Path"] = $"rtsp://127.0.0.1:{port}/test", ["CredentialsFile"] = credentials, ["Width"] = 320, ["Height"] = 240 }),
                        ["inurl"] = Camera(new JsonObject { ["Kind"] = "Rtsp", ["Path"] = $"rtsp://viewer:{encoded}@127.0.0.1:{port}/test", ["Width"] = 320, ["Height"] = 240 }),
                    },
                }.ToJsonString(),
                ct);
            await using var probe = await MqttProbe.ConnectAsync(broker.Port, $"edgerunner/{deviceId}/vision/+/result", TimeSpan.FromSeconds(5), ct);
            await using var daemon = DaemonProcess.Start(["--config", config], new Dictionary<string, string> { ["RUNTIME_DIRECTORY"] = run });

            // Read every command line over and over from the daemon's start until both cameras have published.
            var scripted = new HashSet<int>();
            var leaks = new List<string>();
            using var scanning = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var scan = Task.Run(
                async () =>
                {
                    while (!scanning.IsCancellationRequested)
                    {
                        foreach (var (pid, cmdline) in CommandLines())
                        {
                            if (cmdline.Contains(password, StringComparison.Ordinal) || cmdline.Contains(encoded, StringComparison.Ordinal))
                            {
                                leaks.Add($"{pid}: {cmdline}");
                            }

                            if (cmdline.Contains("ffmpeg", StringComparison.Ordinal) && cmdline.Contains("-f concat", StringComparison.Ordinal) && cmdline.Contains(run, StringComparison.Ordinal))
                            {
                                scripted.Add(pid);
                            }
                        }

                        await Task.Delay(50, CancellationToken.None);
                    }
                },
                CancellationToken.None);

            foreach (var camera in new[] { "fromfile", "inurl" })
            {
                var result = await probe.WaitForAsync(m => m.Topic.EndsWith($"/{camera}/result", StringComparison.Ordinal), TimeSpan.FromSeconds(90), ct);
                Assert.Equal(320, JsonDocument.Parse(result.Payload).RootElement.GetProperty("frame").GetProperty("width").GetInt32());
            }

            await scanning.CancelAsync();
            await scan;

            Assert.Empty(leaks);
            Assert.True(scripted.Count >= 2, $"ffmpeg processes seen reading a private script: {scripted.Count}");

            // Both streams run: ffmpeg read their scripts while opening, and they were removed at the first frame.
            // (The daemon's instance lock lives in the same runtime directory: files, never a script folder.)
            Assert.Empty(PrivateInputs(run));

            daemon.Terminate();
            Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));
            Assert.DoesNotContain(password, daemon.Stdout + daemon.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain(probe.Seen, m => m.Payload.Contains(password, StringComparison.Ordinal) || m.Payload.Contains(encoded, StringComparison.Ordinal));
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }

            await server.WaitForExitAsync(CancellationToken.None);
        }

        // Nothing left: no private directory, no ffmpeg that was reading one, and the instance lock released.
        Assert.Empty(Directory.EnumerateFileSystemEntries(run));
        Assert.DoesNotContain(CommandLines(), p => p.CommandLine.Contains(run, StringComparison.Ordinal));
    }

    /// <summary>What the camera sources leave in the runtime directory: folders and ffconcat scripts, not the daemon's lock files.</summary>
    private static List<string> PrivateInputs(string runtimeDirectory) =>
        Directory.EnumerateFileSystemEntries(runtimeDirectory)
            .Where(e => Directory.Exists(e) || !(e.EndsWith(".lock", StringComparison.Ordinal) || e.EndsWith(".pid", StringComparison.Ordinal)))
            .ToList();

    private static List<(int Pid, string CommandLine)> CommandLines()
    {
        var result = new List<(int, string)>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                result.Add((pid, File.ReadAllText(Path.Combine(directory, "cmdline")).Replace('\0', ' ')));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Exited meanwhile, or not ours to read.
            }
        }

        return result;
    }

    /// <summary>The test RTSP server, given its password through a file so that it is not on its own command line either.</summary>
    private static async Task<Process> StartServerAsync(int port, string credentials, CancellationToken cancellationToken)
    {
        var passwordFile = credentials + ".server";
        await File.WriteAllTextAsync(passwordFile, File.ReadAllText(credentials).Trim()["viewer:".Length..], cancellationToken);
        var script = Path.Combine(TestPaths.RepositoryRoot, "tests", "EdgeRunner.IntegrationTests", "Rtsp", "rtsp_server.py");
        var start = new ProcessStartInfo(Python, [script, port.ToString(CultureInfo.InvariantCulture), "--user", "viewer", "--password-file", passwordFile])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = Process.Start(start)!;
        var ready = process.StandardOutput.ReadLineAsync(cancellationToken).AsTask();
        if (await Task.WhenAny(ready, Task.Delay(TimeSpan.FromSeconds(15), cancellationToken)) != ready || ready.Result is null)
        {
            var stderr = process.HasExited ? await process.StandardError.ReadToEndAsync(cancellationToken) : "(no answer in 15 s)";
            var exitCode = process.HasExited ? process.ExitCode : -1;
            await RtspCaptureTests.StopServerAsync(process);
            process.Dispose();
            Requirement.That(exitCode != 3, $"GStreamer RTSP server unavailable ({stderr.Trim()})");
            Assert.Fail($"rtsp_server.py did not start: exit {exitCode}: {stderr}");
        }

        return process;
    }
}
