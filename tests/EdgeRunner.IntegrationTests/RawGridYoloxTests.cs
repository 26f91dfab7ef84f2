using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Postprocessing.Detection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// A tiny YOLOX-format head with a raw grid output (64x64 input, strides 8/16/32 → 84 anchors, one class), built
/// here, run through the daemon's host on a synthetic camera to a real mosquitto: raw_grid from the manifest,
/// Detection:RawGrid from the configuration, and inferred when neither says, all give the one correct box; told
/// the grid is decoded, the daemon publishes the empty boxes and warns about them.
/// </summary>
public sealed class RawGridYoloxTests
{
    private const int Anchors = 84;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The head's constant output: every anchor background except stride-16 cell (x=1, y=2), anchor 64 + 2*4 + 1 = 73,
    /// with offsets (0.5, 0.5), log sizes (ln 2, 0), objectness 0.9, class 0.9 → score 0.81, and in the 64x64 input
    /// cx = 1.5*16 = 24, cy = 2.5*16 = 40, w = 32, h = 16: box (8, 32)–(40, 48). A 128x96 frame stretched to 64x64
    /// scales x by 2 and y by 1.5: (16, 48)–(80, 72).
    /// </summary>
    internal static byte[] RawGridHead()
    {
        var head = new float[Anchors * 6];
        for (var a = 0; a < Anchors; a++)
        {
            head[(a * 6) + 4] = 0.01f;
            head[(a * 6) + 5] = 0.01f;
        }

        float[] cell = [0.5f, 0.5f, MathF.Log(2f), 0f, 0.9f, 0.9f];
        cell.CopyTo(head, 73 * 6);

        // output = head + 0 * mean(images): the image flows through the graph (so the input is used) without changing the output.
        return OnnxProto.WriteModel(
            irVersion: 8,
            opsets: [(string.Empty, 13)],
            nodes:
            [
                new OnnxNode("ReduceMean", string.Empty, ["images"], ["mean"], [OnnxProto.IntAttribute("keepdims", 0)]),
                new OnnxNode("Mul", string.Empty, ["mean", "zero"], ["nothing"], []),
                new OnnxNode("Add", string.Empty, ["head", "nothing"], ["output"], []),
            ],
            initializers:
            [
                new OnnxTensor("zero", OnnxTensor.Float, [], [0f], []),
                new OnnxTensor("head", OnnxTensor.Float, [1, Anchors, 6], head, []),
            ],
            inputs: [("images", OnnxTensor.Float, [1, 3, 64, 64])],
            outputs: [("output", OnnxTensor.Float, [1, Anchors, 6])]);
    }

    private static JsonObject Camera() => new()
    {
        ["Model"] = "yolox",
        ["Fps"] = 20,
        ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 128, ["Height"] = 96, ["Seed"] = 3 },
    };

    private static JsonObject ConfiguredModel(string path, bool? rawGrid)
    {
        var detection = new JsonObject { ["Decoder"] = "yolox" };
        if (rawGrid is { } value)
        {
            detection["RawGrid"] = value;
        }

        return new JsonObject
        {
            ["Path"] = path,
            ["Task"] = "Detection",
            ["Preprocess"] = new JsonObject { ["Width"] = 64, ["Height"] = 64, ["ChannelOrder"] = "Bgr", ["Scale"] = 1 },
            ["Detection"] = detection,
        };
    }

    private static async Task<(JsonElement Detection, CapturingLoggerProvider Logs)> FirstDetectionAsync(DaemonScenario scenario, JsonObject model, CancellationToken ct)
    {
        var logs = new CapturingLoggerProvider();
        var probe = await scenario.ProbeAsync("vision/cam/result", ct);
        using var host = await scenario.StartHostAsync(
            new JsonObject { ["Models"] = new JsonObject { ["yolox"] = model }, ["Cameras"] = new JsonObject { ["cam"] = Camera() } },
            ct,
            services => services.AddSingleton<ILoggerProvider>(logs));
        var message = await probe.WaitForAsync(m => Detections(m.Payload).GetArrayLength() > 0, Wait, ct);
        await host.StopAsync(ct);
        return (Assert.Single(Detections(message.Payload).EnumerateArray()), logs);
    }

    private static JsonElement Detections(string payload) => JsonDocument.Parse(payload).RootElement.GetProperty("detections");

    private static void AssertTheBox(JsonElement detection)
    {
        Assert.Equal(0, detection.GetProperty("class_id").GetInt32());
        Assert.Equal(0.81, detection.GetProperty("score").GetDouble(), 3);
        var box = detection.GetProperty("box");
        Assert.Equal(16, box.GetProperty("x1").GetDouble(), 1);
        Assert.Equal(48, box.GetProperty("y1").GetDouble(), 1);
        Assert.Equal(80, box.GetProperty("x2").GetDouble(), 1);
        Assert.Equal(72, box.GetProperty("y2").GetDouble(), 1);
    }

    [Fact]
    public async Task Raw_grid_from_the_manifest_gives_the_box()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("rawgrid", ct);
        var (_, manifest) = await TestManifests.WriteModelAsync(scenario.Folder, "yolox-raw", RawGridHead(), new JsonObject
        {
            ["task"] = "detection",
            ["preprocess"] = new JsonObject { ["width"] = 64, ["height"] = 64, ["color_order"] = "bgr", ["scale"] = 1 },
            ["postprocess"] = new JsonObject { ["kind"] = "yolox", ["raw_grid"] = true, ["score_threshold"] = 0.3 },
        }, ct);

        var (detection, logs) = await FirstDetectionAsync(scenario, new JsonObject { ["Manifest"] = manifest }, ct);

        AssertTheBox(detection);
        Assert.Contains(logs.Entries, e => e.Message.Contains("YOLOX raw grid on (configured): 84 anchors over strides [8,16,32] of a 64x64 input", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Raw_grid_from_the_configuration_gives_the_box()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("rawgrid", ct);
        var path = Path.Combine(scenario.Folder, "yolox-raw.onnx");
        await File.WriteAllBytesAsync(path, RawGridHead(), ct);

        var (detection, _) = await FirstDetectionAsync(scenario, ConfiguredModel(path, rawGrid: true), ct);

        AssertTheBox(detection);
    }

    [Fact]
    public async Task Raw_grid_is_inferred_when_neither_says_and_the_choice_is_logged()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("rawgrid", ct);
        var path = Path.Combine(scenario.Folder, "yolox-raw.onnx");
        await File.WriteAllBytesAsync(path, RawGridHead(), ct);

        var (detection, logs) = await FirstDetectionAsync(scenario, ConfiguredModel(path, rawGrid: null), ct);

        AssertTheBox(detection);
        Assert.Contains(logs.Entries, e => e.Message.Contains("YOLOX raw grid undecided: 84 anchors are the cells of strides [8,16,32] over a 64x64 input", StringComparison.Ordinal));
        Assert.Single(logs.Entries, e => e.Message.Contains("YOLOX raw grid inferred: all 1 candidate(s) of the first frame", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_raw_grid_read_as_decoded_publishes_empty_boxes_and_is_warned_about()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("rawgrid", ct);
        var path = Path.Combine(scenario.Folder, "yolox-raw.onnx");
        await File.WriteAllBytesAsync(path, RawGridHead(), ct);
        var logs = new CapturingLoggerProvider();
        var probe = await scenario.ProbeAsync("vision/cam/result", ct);
        using var host = await scenario.StartHostAsync(
            new JsonObject { ["Models"] = new JsonObject { ["yolox"] = ConfiguredModel(path, rawGrid: false) }, ["Cameras"] = new JsonObject { ["cam"] = Camera() } },
            ct,
            services => services.AddSingleton<ILoggerProvider>(logs));

        // The warning comes with the 10th frame in a row with an empty box, before that frame's result is published.
        var results = new List<string>();
        while (results.Count < DegenerateBoxMonitor.FramesBeforeWarning)
        {
            results.Add((await probe.WaitForAsync(_ => true, Wait, ct)).Payload);
        }

        await host.StopAsync(ct);

        // Raw values read as pixels: centre (0.5, 0.5), 0.69 x 0 px in the input: no height at all.
        var box = Assert.Single(Detections(results[0]).EnumerateArray()).GetProperty("box");
        Assert.Equal(0, box.GetProperty("y2").GetDouble() - box.GetProperty("y1").GetDouble(), 1);
        var warning = Assert.Single(logs.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("boxes without area", StringComparison.Ordinal));
        Assert.Contains("Model yolox: the yolox decoder produced boxes without area (under 1 px wide or high) in 10 frames in a row (10 of 10 detections)", warning.Message, StringComparison.Ordinal);
        Assert.Contains("Detection:RawGrid=true", warning.Message, StringComparison.Ordinal);
    }
}
