using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Preprocessing;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests;

/// <summary>The detection rate limit, motion gating and forced inference, driven by a fake clock.</summary>
public sealed class InferenceGateTests
{
    private const int W = 64;
    private const int H = 48;
    private static readonly byte[] Still = Pattern(0);
    private static readonly byte[] Moved = Pattern(16);

    private static byte[] Pattern(int offset)
    {
        // A bright 16 px square on black at a given x offset: moving it is plenty of motion.
        var pixels = new byte[W * H * 3];
        for (var y = 8; y < 24; y++)
        {
            for (var x = 8 + offset; x < 24 + offset; x++)
            {
                pixels.AsSpan(((y * W) + x) * 3, 3).Fill(250);
            }
        }

        return pixels;
    }

    private static ImageView View(byte[] pixels) => new(pixels, W, H, W * 3, ImagePixelFormat.Rgb24);

    /// <summary>Feeds frames at <paramref name="period"/> (plus optional jitter) for <paramref name="duration"/> and counts decisions.</summary>
    private static Dictionary<GateDecision, int> Run(InferenceGate gate, FakeTimeProvider time, TimeSpan period, TimeSpan duration, Func<int, byte[]>? frames = null, int jitterMs = 0)
    {
        var counts = new Dictionary<GateDecision, int> { [GateDecision.Infer] = 0, [GateDecision.SkipRate] = 0, [GateDecision.SkipMotion] = 0 };
        var random = new Random(3);
        var start = time.GetUtcNow();
        for (var i = 0; period * i < duration; i++)
        {
            // Jitter around the nominal arrival, never before the previous frame.
            var jitter = TimeSpan.FromMilliseconds(jitterMs == 0 ? 0 : random.Next(-jitterMs, jitterMs + 1));
            var target = start + (period * i) + jitter;
            if (target > time.GetUtcNow())
            {
                time.SetUtcNow(target);
            }

            counts[gate.Evaluate(time.GetTimestamp(), View(frames?.Invoke(i) ?? Still))]++;
        }

        return counts;
    }

    [Fact]
    public void Zero_detect_fps_infers_every_frame()
    {
        var time = new FakeTimeProvider();
        var gate = new InferenceGate(0, null, TimeSpan.Zero, time.TimestampFrequency);

        var counts = Run(gate, time, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5));

        Assert.Equal(50, counts[GateDecision.Infer]);
        Assert.Equal(0, counts[GateDecision.SkipRate]);
    }

    [Fact]
    public void Detect_fps_2_on_a_10_fps_camera_infers_every_fifth_frame()
    {
        var time = new FakeTimeProvider();
        var gate = new InferenceGate(2, null, TimeSpan.Zero, time.TimestampFrequency);

        var counts = Run(gate, time, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10));

        Assert.Equal(20, counts[GateDecision.Infer]);
        Assert.Equal(80, counts[GateDecision.SkipRate]);
    }

    [Fact]
    public void Arrival_jitter_does_not_lower_the_rate()
    {
        // ±30 ms on a 100 ms period: a frame due at 500 ms turning up at 480 ms must still be taken,
        // otherwise the camera would infer every 600 ms (1.67 fps) instead of 2 fps.
        var time = new FakeTimeProvider();
        var gate = new InferenceGate(2, null, TimeSpan.Zero, time.TimestampFrequency);

        var counts = Run(gate, time, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(20), jitterMs: 30);

        Assert.InRange(counts[GateDecision.Infer], 39, 41);
    }

    [Fact]
    public void A_ratio_that_is_not_a_whole_number_averages_to_the_limit()
    {
        // 30 fps camera, 7 fps detection: 1/7 s is 4.3 frame periods, so gaps of 4 and 5 frames alternate
        // and the average is 7 fps, not 7.5 (every 4th) or 6 (every 5th).
        var time = new FakeTimeProvider();
        var gate = new InferenceGate(7, null, TimeSpan.Zero, time.TimestampFrequency);

        var counts = Run(gate, time, TimeSpan.FromSeconds(1.0 / 30), TimeSpan.FromSeconds(10));

        Assert.InRange(counts[GateDecision.Infer], 69, 71);
    }

    [Fact]
    public void A_source_slower_than_the_limit_is_inferred_every_frame_and_an_idle_gap_does_not_cause_a_burst()
    {
        var time = new FakeTimeProvider();
        var gate = new InferenceGate(2, null, TimeSpan.Zero, time.TimestampFrequency);
        var slow = Run(gate, time, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));
        Assert.Equal(5, slow[GateDecision.Infer]);

        // 10 s without frames, then 10 fps again: 2 fps from the first frame on, no catching up.
        time.Advance(TimeSpan.FromSeconds(10));
        var resumed = Run(gate, time, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1));
        Assert.Equal(2, resumed[GateDecision.Infer]);
    }

    [Fact]
    public void A_still_scene_is_inferred_only_at_the_forced_interval()
    {
        // Fps 5 for 10 s on a still image, forced every 2 s: the first frame plus one every 2 s.
        var time = new FakeTimeProvider();
        var gate = new InferenceGate(0, new MotionDetector(32, 25, 0.5), TimeSpan.FromSeconds(2), time.TimestampFrequency);

        var counts = Run(gate, time, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10));

        Assert.Equal(5, counts[GateDecision.Infer]);
        Assert.Equal(45, counts[GateDecision.SkipMotion]);
        Assert.Equal(0, counts[GateDecision.SkipRate]);
    }

    [Fact]
    public void Motion_is_inferred_at_once_and_rate_limited_frames_never_reach_the_motion_test()
    {
        var time = new FakeTimeProvider();
        var gate = new InferenceGate(2, new MotionDetector(32, 25, 0.5), TimeSpan.Zero, time.TimestampFrequency);

        // Still for 3 s (only the first frame inferred; no forced inference), then moving every frame for 3 s.
        var counts = Run(gate, time, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(6), i => i < 30 ? Still : (i % 2 == 0 ? Still : Moved));

        // Still phase: frame 0 is inferred (nothing to compare with); from frame 5 on every frame passes the
        // rate limit (nothing was inferred since) and fails the motion test: 25 motion skips, plus frame 30.
        // Moving phase: frame 31 is inferred the moment it moves, then every 5th frame (2 fps): 31, 36, … 56.
        Assert.Equal(1 + 6, counts[GateDecision.Infer]);
        Assert.Equal(26, counts[GateDecision.SkipMotion]);
        Assert.Equal(27, counts[GateDecision.SkipRate]);
        Assert.Equal(60, counts.Values.Sum());
    }

    [Fact]
    public void Gating_allocates_nothing_in_steady_state()
    {
        var time = new FakeTimeProvider();
        var gate = new InferenceGate(5, new MotionDetector(32, 25, 0.5), TimeSpan.FromSeconds(1), time.TimestampFrequency);
        Run(gate, time, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1), i => i % 2 == 0 ? Still : Moved);

        // Rounds, not one measurement: the runtime itself can allocate once on this thread (tiering up a
        // hot method); steady state means a round that allocates nothing, and one comes quickly.
        var inferred = 0;
        var allocated = new List<long>();
        for (var round = 0; round < 5 && (allocated.Count == 0 || allocated[^1] != 0); round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            inferred = 0;
            for (var i = 0; i < 100; i++)
            {
                time.Advance(TimeSpan.FromMilliseconds(100));
                inferred += gate.Evaluate(time.GetTimestamp(), View(i % 3 == 0 ? Moved : Still)) == GateDecision.Infer ? 1 : 0;
            }

            allocated.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.True(allocated[^1] == 0, $"bytes allocated per round: {string.Join(", ", allocated)}");
        Assert.InRange(inferred, 20, 50);
    }

    [Fact]
    public void Invalid_gating_and_snapshot_settings_name_their_keys()
    {
        var cameras = new CamerasOptions
        {
            ["front"] = new CameraOptions
            {
                Model = "m",
                DetectFps = -1,
                Motion = new CameraMotionOptions { Threshold = 300, MinAreaPercent = 120, DownscaleWidth = 2, ForcedIntervalSeconds = -1 },
                Snapshots = new CameraSnapshotOptions { Enabled = true, MinIntervalSeconds = -2, Quality = 0, MaxWidth = 0 },
            },
        };
        var models = new ModelsOptions { ["m"] = new ModelOptions() };

        var result = new CamerasOptionsValidator(Microsoft.Extensions.Options.Options.Create(models)).Validate(null, cameras);

        Assert.True(result.Failed);
        string[] keys =
        [
            "DetectFps", "Motion:Threshold", "Motion:MinAreaPercent", "Motion:DownscaleWidth", "Motion:ForcedIntervalSeconds",
            "Snapshots:MinIntervalSeconds", "Snapshots:Quality", "Snapshots:MaxWidth",
        ];
        foreach (var key in keys)
        {
            Assert.Contains(result.Failures!, f => f.StartsWith($"Cameras:front:{key}: must be between", StringComparison.Ordinal));
        }

        var defaults = new CamerasOptions { ["front"] = new CameraOptions { Model = "m" } };
        Assert.True(new CamerasOptionsValidator(Microsoft.Extensions.Options.Options.Create(models)).Validate(null, defaults).Succeeded);
    }
}
