using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// <c>edgerunner bench-pipeline</c> as a real process: a few seconds of a synthetic camera and a simulated machine
/// against a real mosquitto (and, in soak mode, the embedded broker it starts on a free port) print JSON whose figures
/// are all there and sane: frames and steps per second, CPU, allocations, RSS, GC, stage percentiles, the bare ONNX
/// Runtime loop, soak samples and slopes, and PNG plots.
/// </summary>
public sealed class BenchPipelineTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task A_short_run_against_mosquitto_prints_json_with_sane_figures_for_pipeline_and_bare_loop()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("bench-pipeline", ct);
        var config = scenario.WriteConfig(Sections());
        await using var bench = DaemonProcess.Start(["bench-pipeline", "--config", config, "--seconds", "3", "--warmup", "1", "--json"]);

        Assert.True(await bench.WaitForExitAsync(Within, ct) == 0, bench.Stderr);
        var root = JsonDocument.Parse(bench.Stdout).RootElement;
        Assert.Equal($"127.0.0.1:{scenario.Port}", root.GetProperty("broker").GetString());
        Assert.InRange(root.GetProperty("seconds").GetDouble(), 2.9, 60);
        Assert.True(root.GetProperty("ready_ms").GetDouble() > 0);

        var process = root.GetProperty("process");
        Assert.True(process.GetProperty("cpu_percent").GetDouble() > 0);
        Assert.True(process.GetProperty("cpu_ms_per_frame").GetDouble() > 0);
        Assert.True(process.GetProperty("cpu_ms_per_result").GetDouble() > 0);
        Assert.True(process.GetProperty("allocated_bytes").GetInt64() > 0);
        Assert.True(process.GetProperty("rss_bytes").GetInt64() > 0);
        Assert.True(process.GetProperty("peak_rss_bytes").GetInt64() >= process.GetProperty("rss_bytes").GetInt64());
        Assert.Equal(3, process.GetProperty("gc_collections").GetArrayLength());
        Assert.True(root.GetProperty("mqtt").GetProperty("published_per_s").GetDouble() > 0);

        var camera = Assert.Single(root.GetProperty("cameras").EnumerateArray());
        Assert.Equal("yard", camera.GetProperty("camera").GetString());
        Assert.True(camera.GetProperty("capture_fps").GetDouble() > 0);
        Assert.True(camera.GetProperty("inference_fps").GetDouble() > 0);
        // publish→PUBACK is there when the publisher records it (edgerunner.publish.ack.duration), and then last.
        var stageNames = camera.GetProperty("stages").EnumerateArray().Select(s => s.GetProperty("stage").GetString()).ToList();
        Assert.Equal(["preprocess+infer", "capture→result"], stageNames.Take(2));
        Assert.True(stageNames.Count == 2 || stageNames is [_, _, "publish→PUBACK"], string.Join(", ", stageNames));
        Assert.All(camera.GetProperty("stages").EnumerateArray(), stage =>
        {
            Assert.True(stage.GetProperty("count").GetInt64() > 0);
            Assert.True(stage.GetProperty("p50_ms").GetDouble() > 0);
            Assert.True(stage.GetProperty("p99_ms").GetDouble() >= stage.GetProperty("p50_ms").GetDouble());
        });

        var stream = Assert.Single(root.GetProperty("streams").EnumerateArray());
        Assert.True(stream.GetProperty("steps_per_s").GetDouble() > 0);
        Assert.True(stream.GetProperty("step").GetProperty("p50_ms").GetDouble() > 0);

        // The bare loop of each model, with the model's intra-op threads.
        var bare = root.GetProperty("bare").EnumerateArray().ToList();
        Assert.Equal(["detector", "lstm"], bare.Select(b => b.GetProperty("model").GetString()));
        Assert.All(bare, b =>
        {
            Assert.Equal(JsonValueKind.Null, b.GetProperty("error").ValueKind);
            Assert.True(b.GetProperty("runs_per_s").GetDouble() > 0);
            Assert.True(b.GetProperty("cpu_ms_per_run").GetDouble() > 0);
        });
        Assert.Equal(1, bare[0].GetProperty("threads").GetInt32());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("soak").ValueKind);

        // The camera's stages alone against the pipeline: the yardstick of its CPU per frame.
        var alone = camera.GetProperty("alone");
        Assert.Equal(JsonValueKind.Null, alone.GetProperty("error").ValueKind);
        Assert.True(alone.GetProperty("capture_fps").GetDouble() > 0);
        Assert.True(alone.GetProperty("preprocess_cpu_ms_per_frame").GetDouble() > 0);
        Assert.True(alone.GetProperty("preprocess_ms_per_frame").GetDouble() > 0);
        Assert.Equal(bare[0].GetProperty("cpu_ms_per_run").GetDouble(), alone.GetProperty("bare_1_thread_cpu_ms_per_run").GetDouble());
        var bound = alone.GetProperty("bound_cpu_ms_per_frame").GetDouble();
        Assert.Equal(alone.GetProperty("preprocess_cpu_ms_per_frame").GetDouble() + alone.GetProperty("bare_1_thread_cpu_ms_per_run").GetDouble(), bound, 0.002);
        Assert.Equal(process.GetProperty("cpu_ms_per_frame").GetDouble() / bound, alone.GetProperty("cpu_ratio").GetDouble(), 0.01);
        Assert.True(alone.GetProperty("full_speed_bound_fps").GetDouble() > 0);
        Assert.Equal(JsonValueKind.Null, alone.GetProperty("full_speed_ratio").ValueKind);
    }

    [Fact]
    public async Task Full_speed_reads_a_video_file_unpaced_and_compares_frames_per_second_with_the_stages_alone()
    {
        var ct = TestContext.Current.CancellationToken;
        using var folder = new TempFolder();
        var video = Path.Combine(folder.Path, "camera.avi");
        await FfmpegMedia.RunFfmpegAsync(ct, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "2", "-c:v", "mjpeg", "-q:v", "5", video);
        var sections = new JsonObject
        {
            ["Device"] = new JsonObject { ["Id"] = $"bench-full-{Guid.NewGuid().ToString("N")[..8]}" },
            ["Models"] = new JsonObject { ["detector"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("shapes-detector"), ["IntraOpThreads"] = 2 } },
            ["Cameras"] = new JsonObject
            {
                ["clip"] = new JsonObject { ["Model"] = "detector", ["Fps"] = 30, ["Source"] = new JsonObject { ["Kind"] = "File", ["Path"] = video, ["Width"] = 320, ["Height"] = 240 } },
            },
        };
        var config = TestConfig.Write(sections);
        await using var bench = DaemonProcess.Start(["bench-pipeline", "--config", config, "--seconds", "3", "--warmup", "1", "--full-speed", "--json"]);

        Assert.True(await bench.WaitForExitAsync(Within, ct) == 0, bench.Stderr);
        var root = JsonDocument.Parse(bench.Stdout).RootElement;
        var camera = Assert.Single(root.GetProperty("cameras").EnumerateArray());
        var alone = camera.GetProperty("alone");
        Assert.Equal(JsonValueKind.Null, alone.GetProperty("error").ValueKind);

        // The model's threads, then 1 thread for the camera's yardstick.
        Assert.Equal([2, 1], root.GetProperty("bare").EnumerateArray().Select(b => b.GetProperty("threads").GetInt32()));

        // ffmpeg decodes the file in a child process: its CPU is counted apart, per frame.
        Assert.True(alone.GetProperty("capture_child_cpu_ms_per_frame").GetDouble() > 0);
        Assert.Contains(root.GetProperty("process").GetProperty("children").EnumerateArray(), c => c.GetProperty("name").GetString() == "ffmpeg");
        var boundFps = alone.GetProperty("full_speed_bound_fps").GetDouble();
        Assert.True(boundFps > 0);
        Assert.True(boundFps <= alone.GetProperty("capture_fps").GetDouble());
        Assert.Equal(camera.GetProperty("inference_fps").GetDouble() / boundFps, alone.GetProperty("full_speed_ratio").GetDouble(), 0.01);

        // Unpaced, the capture waits for the queue instead of decoding frames to drop.
        Assert.Equal(0, camera.GetProperty("frames_dropped").GetInt64());
    }

    [Fact]
    public async Task Soak_mode_on_its_own_embedded_broker_samples_and_reports_slopes_and_plots()
    {
        var ct = TestContext.Current.CancellationToken;
        using var folder = new TempFolder();
        var sections = Sections();
        sections["Device"] = new JsonObject { ["Id"] = $"bench-soak-{Guid.NewGuid().ToString("N")[..8]}" };
        var config = TestConfig.Write(sections);
        var plots = Path.Combine(folder.Path, "plots");
        await using var bench = DaemonProcess.Start(["bench-pipeline", "--config", config, "--seconds", "4", "--warmup", "1", "--soak", "--sample-seconds", "1", "--no-bare", "--plots", plots, "--json"]);

        Assert.True(await bench.WaitForExitAsync(Within, ct) == 0, bench.Stderr);
        var root = JsonDocument.Parse(bench.Stdout).RootElement;
        Assert.StartsWith("embedded 127.0.0.1:", root.GetProperty("broker").GetString(), StringComparison.Ordinal);
        Assert.Empty(root.GetProperty("bare").EnumerateArray());
        var soak = root.GetProperty("soak");
        var samples = soak.GetProperty("samples").EnumerateArray().ToList();
        Assert.True(samples.Count >= 3, $"{samples.Count} samples");
        Assert.True(samples.Zip(samples.Skip(1)).All(p => p.Second.GetProperty("t_s").GetDouble() > p.First.GetProperty("t_s").GetDouble()));
        Assert.All(samples, s => Assert.True(s.GetProperty("rss_bytes").GetInt64() > 0));
        Assert.True(soak.GetProperty("cpu_percent_mean").GetDouble() > 0);
        Assert.Equal(JsonValueKind.Number, soak.GetProperty("rss_slope_mib_per_h").ValueKind);
        Assert.Equal(JsonValueKind.Number, soak.GetProperty("rss_slope_second_half_mib_per_h").ValueKind);

        // PNG files: the camera's and the stream's latency distributions, RSS and CPU over the soak.
        var written = root.GetProperty("plots").EnumerateArray().Select(p => Path.GetFileName(p.GetString()!)).Order().ToList();
        Assert.Equal(["latency-camera-yard.png", "latency-stream-pump.png", "soak-cpu.png", "soak-rss.png"], written);
        Assert.All(written, name =>
        {
            var bytes = File.ReadAllBytes(Path.Combine(plots, name));
            Assert.True(bytes.Length > 1000);
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
        });
    }

    private static JsonObject Sections() => new()
    {
        ["Models"] = new JsonObject
        {
            ["detector"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("shapes-detector"), ["IntraOpThreads"] = 1 },
            ["lstm"] = TestConfig.BundledModel("vibration-lstm"),
        },
        ["Cameras"] = new JsonObject
        {
            ["yard"] = new JsonObject { ["Model"] = "detector", ["Fps"] = 10, ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 320, ["Height"] = 240, ["Seed"] = 3 } },
        },
        ["Sensors"] = new JsonObject { ["pump"] = TestConfig.SimulatedVibration(5) },
    };
}
