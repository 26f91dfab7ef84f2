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
    [Fact]
    public async Task The_password_never_appears_on_any_command_line_while_cameras_with_credentials_stream()
    {
        Requirement.Program("/usr/bin/ffmpeg", "ffmpeg");
        var ct = TestContext.Current.CancellationToken;

        // Unique per run, so that no other process on the machine can hold it by chance.
        var password = "Cam#" + Guid.NewGuid().ToString("N")[..12];
        var encoded = Uri.EscapeDataString(password);
        using var work = new TempFolder();
        var run = Directory.CreateDirectory(Path.Combine(work.Path, "run"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute).FullName;
        await using (var server = await RtspServer.StartAsync(password, ct, passwordOnCommandLine: false))
        await using (var scenario = await DaemonScenario.StartAsync("creds", ct))
        {
            JsonObject Camera(JsonObject source) => new()
            {
                ["Model"] = "detector",
                ["Fps"] = 5,
                ["ReconnectMinDelaySeconds"] = 0.5,
                ["ReconnectMaxDelaySeconds"] = 2,
                ["Source"] = source,
            };
            var config = scenario.WriteConfig(new JsonObject
            {
                ["Models"] = new JsonObject { ["detector"] = TestConfig.BundledModel("shapes-detector") },
                ["Cameras"] = new JsonObject
                {
                    ["fromfile"] = Camera(new JsonObject { ["Kind"] = "Rtsp", ["Path"] = server.Url, ["CredentialsFile"] = server.CredentialsFile, ["Width"] = 320, ["Height"] = 240 }),
                    ["inurl"] = Camera(new JsonObject { ["Kind"] = "Rtsp", ["Path"] = $"rtsp://viewer:{encoded}@127.0.0.1:{server.Port}/test", ["Width"] = 320, ["Height"] = 240 }),
                },
            });
            var probe = await scenario.ProbeAsync("vision/+/result", ct);
            var daemon = scenario.StartProcess(["--config", config], new Dictionary<string, string> { ["RUNTIME_DIRECTORY"] = run });

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
}
