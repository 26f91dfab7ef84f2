using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>ffmpeg-decoded cameras inside the daemon: a video of the synthetic scene is detected; a missing device only affects its own camera.</summary>
public sealed class CameraSourcesThroughDaemonTests
{
    private static async Task RunAsync(string file, IEnumerable<string> arguments, CancellationToken ct)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.StandardOutput.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', arguments)} failed: {await stderr}");
    }

    [Fact]
    public async Task A_video_file_is_detected_and_a_missing_device_reconnects_without_stopping_it()
    {
        var ct = TestContext.Current.CancellationToken;
        Requirement.Program("/usr/bin/ffmpeg", "ffmpeg");
        var work = Directory.CreateTempSubdirectory("edgerunner-video-").FullName;
        try
        {
            // 40 frames of the synthetic scene, rendered by the daemon's own dump verb, encoded as H.264.
            await RunAsync("dotnet", [TestPaths.DaemonDll, "dump", "vision", "--out", work, "--frames", "40", "--frames-per-scene", "40", "--stride", "1", "--seed", "4242"], ct);
            var video = Path.Combine(work, "scene.mp4");
            await RunAsync("/usr/bin/ffmpeg", ["-hide_banner", "-loglevel", "error", "-framerate", "10", "-i", Path.Combine(work, "images", "%06d.png"), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", video], ct);

            await using var scenario = await DaemonScenario.StartAsync("video", ct);
            var config = scenario.WriteConfig(new JsonObject
            {
                ["Models"] = new JsonObject { ["detector"] = TestConfig.BundledModel("shapes-detector") },
                ["Cameras"] = new JsonObject
                {
                    ["video"] = new JsonObject
                    {
                        ["Model"] = "detector",
                        ["Fps"] = 10,
                        ["Source"] = new JsonObject { ["Kind"] = "File", ["Path"] = video, ["Loop"] = true },
                    },
                    ["missing"] = new JsonObject
                    {
                        ["Model"] = "detector",
                        ["Fps"] = 5,
                        ["ReconnectMinDelaySeconds"] = 0.2,
                        ["ReconnectMaxDelaySeconds"] = 1,
                        ["Source"] = new JsonObject { ["Kind"] = "V4l2", ["Path"] = "/dev/video9" },
                    },
                },
            });
            var probe = await scenario.ProbeAsync("vision/#", ct);
            var host = await scenario.StartHostAsync(config, ct);

            var missing = await probe.WaitForAsync(m => m.Topic.EndsWith("/missing/state", StringComparison.Ordinal) && m.Payload.Contains("reconnecting", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
            Assert.True(missing.Retain);
            Assert.Contains("/dev/video9", JsonDocument.Parse(missing.Payload).RootElement.GetProperty("reason").GetString(), StringComparison.Ordinal);

            var labels = new HashSet<string>();
            for (var i = 0; i < 10; i++)
            {
                var result = await probe.WaitForAsync(m => m.Topic.EndsWith("/video/result", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
                var root = JsonDocument.Parse(result.Payload).RootElement;
                Assert.Equal(640, root.GetProperty("frame").GetProperty("width").GetInt32());
                foreach (var d in root.GetProperty("detections").EnumerateArray())
                {
                    labels.Add(d.GetProperty("label").GetString()!);
                }
            }

            Assert.NotEmpty(labels);
            Assert.Subset(new HashSet<string> { "circle", "square", "triangle" }, labels);
            Assert.Contains(probe.Seen, m => m.Topic.EndsWith("/video/state", StringComparison.Ordinal) && m.Payload.Contains("streaming", StringComparison.Ordinal));
            await host.StopAsync(ct);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
