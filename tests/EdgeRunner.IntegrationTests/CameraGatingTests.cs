using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.IntegrationTests.Infrastructure;
using SkiaSharp;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Detection rate limit, motion gating and snapshots inside the daemon, with the bundled detector and a
/// real mosquitto. Rates are checked with wide bounds on counts and frame sequence gaps, never tight timings.
/// </summary>
public sealed class CameraGatingTests
{
    private static JsonObject Sections(JsonObject camera) => new()
    {
        ["Models"] = new JsonObject { ["detector"] = TestConfig.BundledModel("shapes-detector") },
        ["Cameras"] = new JsonObject { ["cam"] = camera },
    };

    /// <summary>
    /// Collects <paramref name="count"/> results of the camera. Rates are judged from the daemon's own
    /// frame sequence numbers and skip counters, never from how long the test waited: a loaded CI
    /// machine changes the wall clock, not the frames between two results.
    /// </summary>
    private static async Task<List<JsonElement>> CollectResultsAsync(MqttProbe probe, int count, CancellationToken ct)
    {
        var results = new List<JsonElement>();
        while (results.Count < count)
        {
            var message = await probe.WaitForAsync(m => m.Topic.EndsWith("/cam/result", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
            results.Add(JsonDocument.Parse(message.Payload).RootElement.Clone());
        }

        return results;
    }

    [Fact]
    public async Task Detect_fps_limits_the_result_rate_and_a_new_label_publishes_an_annotated_snapshot()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("gate", ct);
        var config = scenario.WriteConfig(Sections(new JsonObject
        {
            ["Model"] = "detector",
            ["Fps"] = 10,
            ["DetectFps"] = 2,
            ["Snapshots"] = new JsonObject { ["Enabled"] = true, ["MaxWidth"] = 320, ["Quality"] = 75, ["Retain"] = true },
            ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 640, ["Height"] = 480, ["Seed"] = 7 },
        }));
        var probe = await scenario.ProbeAsync("vision/#", ct);
        var snapshots = await scenario.ProbeAsync("vision/cam/snapshot", ct);
        var host = await scenario.StartHostAsync(config, ct);

        var results = await CollectResultsAsync(probe, 12, ct);

        // Sequence numbers count captured frames (10 fps, stamped by the source): DetectFps 2 lets about
        // one frame in 5 through, never every frame.
        var seqs = results.Select(r => r.GetProperty("seq").GetInt64()).ToList();
        var gaps = seqs.Zip(seqs.Skip(1), (a, b) => b - a).ToList();
        // A single gap may be 1: the limit holds DetectFps on average, so a frame late behind a slow inference
        // lets the next one through at once (the schedule is not pushed back).
        Assert.All(gaps, g => Assert.InRange(g, 1, 20));
        Assert.InRange(gaps.Average(), 3.5, 8);

        var skippedRate = results.Select(r => r.GetProperty("frames_skipped_rate").GetInt64()).ToList();
        Assert.True(skippedRate[^1] > skippedRate[0] + 20, $"frames_skipped_rate {skippedRate[0]} → {skippedRate[^1]}");
        Assert.All(results, r => Assert.Equal(0, r.GetProperty("frames_skipped_motion").GetInt64()));
        Assert.Contains(results, r => r.GetProperty("detections").GetArrayLength() > 0);

        // The first inferred frame with detections is a change from "nothing": its snapshot is published.
        var snapshot = await snapshots.WaitForAsync(_ => true, TimeSpan.FromSeconds(30), ct);
        var jpeg = snapshot.PayloadBytes;
        Assert.True(snapshot.Retain);
        Assert.Equal([0xFF, 0xD8], jpeg[..2]);
        if (Environment.GetEnvironmentVariable("EDGERUNNER_SNAPSHOT_OUT") is { Length: > 0 } folder)
        {
            await File.WriteAllBytesAsync(Path.Combine(folder, "daemon-snapshot.jpg"), jpeg, ct);
        }

        using (var decoded = SKBitmap.Decode(jpeg))
        {
            Assert.NotNull(decoded);
            Assert.Equal(320, decoded.Width);
            Assert.Equal(240, decoded.Height);
        }

        var state = probe.Seen.Last(m => m.Topic.EndsWith("/cam/state", StringComparison.Ordinal));
        var stateRoot = JsonDocument.Parse(state.Payload).RootElement;
        // The retained state carries the same counters as the results, as of when it was published.
        Assert.InRange(stateRoot.GetProperty("frames_skipped_rate").GetInt64(), 0, skippedRate[^1]);
        Assert.Equal(0, stateRoot.GetProperty("frames_skipped_motion").GetInt64());
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task With_motion_gating_a_still_image_is_inferred_only_at_the_forced_interval()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("still", ct);
        var work = scenario.Folder;

        // One frame of the synthetic scene as a PNG: shapes the detector knows, never moving.
        var scene = new SyntheticScene(320, 240, seed: 3);
        var rgb = new byte[320 * 240 * 3];
        scene.Render(0, rgb);
        using (var bitmap = new SKBitmap(new SKImageInfo(320, 240, SKColorType.Rgba8888, SKAlphaType.Opaque)))
        {
            for (var i = 0; i < 320 * 240; i++)
            {
                bitmap.SetPixel(i % 320, i / 320, new SKColor(rgb[i * 3], rgb[(i * 3) + 1], rgb[(i * 3) + 2]));
            }

            using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            await File.WriteAllBytesAsync(Path.Combine(work, "still.png"), png.ToArray(), ct);
        }

        var config = scenario.WriteConfig(Sections(new JsonObject
        {
            ["Model"] = "detector",
            ["Fps"] = 5,
            ["Motion"] = new JsonObject { ["Enabled"] = true, ["ForcedIntervalSeconds"] = 2 },
            ["Source"] = new JsonObject { ["Kind"] = "Images", ["Path"] = Path.Combine(work, "still.png"), ["Loop"] = true },
        }));
        var probe = await scenario.ProbeAsync("vision/#", ct);
        var host = await scenario.StartHostAsync(config, ct);

        // The first frame (nothing to compare with) and then one forced inference every 2 s of frames.
        var results = await CollectResultsAsync(probe, 4, ct);

        // About 10 frames (2 s at 5 fps) between forced inferences, all skipped for lack of motion.
        var seqs = results.Select(r => r.GetProperty("seq").GetInt64()).ToList();
        Assert.All(seqs.Zip(seqs.Skip(1), (a, b) => b - a), g => Assert.InRange(g, 6, 20));
        var skippedMotion = results.Select(r => r.GetProperty("frames_skipped_motion").GetInt64()).ToList();
        Assert.Equal(0, skippedMotion[0]);
        Assert.True(skippedMotion[^1] >= 15, $"frames_skipped_motion {string.Join(", ", skippedMotion)}");
        Assert.All(results, r => Assert.Equal(0, r.GetProperty("frames_skipped_rate").GetInt64()));

        // Nothing was lost to the queue: every captured frame up to the last result was inferred or counted
        // as skipped/dropped. At least, not exactly: while the last frame is inferred, newer frames may already
        // be counted (more of them the slower inference runs on a loaded machine).
        var last = results[^1];
        var accounted = results.Count + skippedMotion[^1] + last.GetProperty("frames_dropped").GetInt64() + last.GetProperty("frames_failed").GetInt64();
        Assert.True(accounted >= last.GetProperty("seq").GetInt64() + 1, $"{last.GetProperty("seq").GetInt64() + 1} frames captured, {accounted} accounted for");
        Assert.Equal(0, last.GetProperty("frames_failed").GetInt64());
        Assert.All(results, r => Assert.NotEqual(0, r.GetProperty("detections").GetArrayLength()));
        await host.StopAsync(ct);
    }
}
