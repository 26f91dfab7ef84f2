using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// A <c>File</c> camera with <c>RealTime</c> false reads its video as fast as inference takes frames (issue 15): the
/// capture waits for room in the queue instead of dropping frames, so ffmpeg decodes no frame that is not inferred.
/// </summary>
public sealed class UnpacedVideoCameraTests
{
    private const int VideoFrames = 60;

    [Fact]
    public async Task An_unpaced_video_file_gets_a_result_for_every_frame_and_drops_none()
    {
        var ct = TestContext.Current.CancellationToken;
        Requirement.Program(FfmpegMedia.Ffmpeg, "ffmpeg");
        using var folder = new TempFolder();
        var video = Path.Combine(folder.Path, "clip.avi");
        await FfmpegMedia.RunFfmpegAsync(ct, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-frames:v", $"{VideoFrames}", "-c:v", "mjpeg", "-q:v", "5", video);

        await using var scenario = await DaemonScenario.StartAsync("unpaced", ct);
        var config = scenario.WriteConfig(new JsonObject
        {
            ["Models"] = new JsonObject { ["detector"] = TestConfig.BundledModel("shapes-detector") },
            ["Cameras"] = new JsonObject
            {
                // Fps equal to the video's: ffmpeg's fps filter keeps every frame. Unpaced, the video is decoded
                // far faster than the detector infers: with the live sources' newest-frame-wins queue most would drop.
                ["clip"] = new JsonObject
                {
                    ["Model"] = "detector",
                    ["Fps"] = 30,
                    ["QueueCapacity"] = 1,
                    ["Source"] = new JsonObject { ["Kind"] = "File", ["Path"] = video, ["Loop"] = false, ["RealTime"] = false },
                },
            },
        });
        var probe = await scenario.ProbeAsync("vision/#", ct);
        var host = await scenario.StartHostAsync(config, ct);

        static bool IsResult(ReceivedMessage m) => m.Topic.EndsWith("/clip/result", StringComparison.Ordinal);
        var ended = await probe.WaitForAsync(m => m.Topic.EndsWith("/clip/state", StringComparison.Ordinal) && m.Payload.Contains("\"ended\"", StringComparison.Ordinal), TimeSpan.FromSeconds(120), ct);
        while (probe.Seen.Count(IsResult) < VideoFrames)
        {
            // The frames still queued when the source ended get their results after the state.
            await probe.WaitForAsync(IsResult, TimeSpan.FromSeconds(30), ct);
        }

        Assert.Equal(0, JsonDocument.Parse(ended.Payload).RootElement.GetProperty("frames_dropped").GetInt64());
        Assert.Equal(VideoFrames, probe.Seen.Count(IsResult));
        await host.StopAsync(ct);
    }
}
