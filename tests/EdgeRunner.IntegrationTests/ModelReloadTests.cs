using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Catalog;
using EdgeRunner.Service.Diagnostics;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Hot model swap through the in-process daemon (real mosquitto, real ONNX models, real files): a camera's and a
/// sensor stream's model replaced while they run, the stream's state kept or reset by the new manifest's
/// <c>state_compatible_with</c>, a broken new file leaving the old model running, and a changed file reloading by itself.
/// </summary>
public sealed class ModelReloadTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_camera_model_swapped_while_the_camera_runs_goes_on_with_the_new_one_and_no_frame_fails()
    {
        var ct = TestContext.Current.CancellationToken;
        using var models = new TempFolder();
        var detector = BundledModels.Load("shapes-detector");
        var manifest = WriteManifest(models.Path, "shapes-detector", detector.ModelPath);
        await using var scenario = await DaemonScenario.StartAsync("swap-cam", ct);
        await using var probe = await scenario.ProbeAsync("vision/#", ct);
        using var host = await scenario.StartHostAsync(CameraSections(manifest), ct);
        using var reloads = new ReloadCounter(host);
        await probe.WaitForAsync(m => IsResult(m, "cam") && Json(m).GetProperty("seq").GetInt64() >= 3, Wait, ct);

        // The same detector's float32 build: another file, another SHA-256, the same task and input.
        var fp32 = Path.Combine(BundledModels.Folder, "shapes-detector", "model.fp32.onnx");
        WriteManifest(models.Path, "shapes-detector", fp32);
        var outcome = await host.Services.GetRequiredService<IModelReloader>().ReloadAsync("det", ct);

        Assert.True(outcome.Succeeded, outcome.Message);
        Assert.Equal(new[] { "det" }, outcome.Reloaded);
        Assert.Contains(fp32, outcome.Message, StringComparison.Ordinal);
        var newSha = Sha256(fp32);
        var swapped = await probe.WaitForAsync(m => IsResult(m, "cam") && ModelSha(m) == newSha, Wait, ct);
        var swappedSeq = Json(swapped).GetProperty("seq").GetInt64();
        await probe.WaitForAsync(m => IsResult(m, "cam") && Json(m).GetProperty("seq").GetInt64() >= swappedSeq + 3, Wait, ct);
        // The retained state names the model that runs now (published before the new model's first result).
        var state = probe.Seen.Last(m => m.Topic.EndsWith("/cam/state", StringComparison.Ordinal));
        Assert.Equal(newSha, ModelSha(state));
        Assert.True(state.Retain);
        Assert.Equal("streaming", Json(state).GetProperty("state").GetString());
        Assert.Empty(SchemaValidator.Errors("vision.state", state.Payload));
        var pipeline = host.Services.GetRequiredService<VisionService>().Pipelines.Single();
        await host.StopAsync(ct);

        var results = probe.Seen.Where(m => IsResult(m, "cam")).Select(Json).ToList();
        // Every result before the swap names the old model, every one after it the new: one switch, at a frame boundary.
        var shas = results.Select(r => r.GetProperty("model").GetProperty("sha256").GetString()).ToList();
        var firstNew = shas.IndexOf(newSha);
        Assert.True(firstNew > 0);
        Assert.All(shas.Take(firstNew), s => Assert.Equal(detector.Sha256, s));
        Assert.All(shas.Skip(firstNew), s => Assert.Equal(newSha, s));
        Assert.All(results, r => Assert.Equal("CPUExecutionProvider", r.GetProperty("model").GetProperty("execution_provider").GetString()));
        Assert.All(results, r => Assert.Equal(0, r.GetProperty("frames_failed").GetInt64()));
        Assert.Equal(0, pipeline.FramesFailed);
        Assert.Equal(1, pipeline.Processor.Swaps);
        Assert.Equal(newSha, pipeline.Model.Sha256);
        Assert.Equal([("det", "swapped")], reloads.Seen);
    }

    [Fact]
    public async Task A_broken_new_model_file_leaves_the_old_model_running_and_the_outcome_names_the_file_and_reason()
    {
        var ct = TestContext.Current.CancellationToken;
        using var models = new TempFolder();
        var detector = BundledModels.Load("shapes-detector");
        var manifest = WriteManifest(models.Path, "shapes-detector", detector.ModelPath);
        await using var scenario = await DaemonScenario.StartAsync("swap-broken", ct);
        await using var probe = await scenario.ProbeAsync("vision/#", ct);
        using var host = await scenario.StartHostAsync(CameraSections(manifest), ct);
        using var reloads = new ReloadCounter(host);
        await probe.WaitForAsync(m => IsResult(m, "cam") && Json(m).GetProperty("seq").GetInt64() >= 2, Wait, ct);

        // A file that is not ONNX, with its manifest's SHA-256 right: it gets as far as ONNX Runtime.
        var broken = Path.Combine(models.Path, "broken.onnx");
        await File.WriteAllBytesAsync(broken, [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 31))], ct);
        WriteManifest(models.Path, "shapes-detector", broken);
        var outcome = await host.Services.GetRequiredService<IModelReloader>().ReloadAsync("det", ct);

        Assert.False(outcome.Succeeded);
        Assert.Empty(outcome.Reloaded);
        Assert.Contains(broken, outcome.Message, StringComparison.Ordinal);
        Assert.Contains("old one keeps running", outcome.Message, StringComparison.Ordinal);
        var unknown = await host.Services.GetRequiredService<IModelReloader>().ReloadAsync("nope", ct);
        Assert.False(unknown.Succeeded);
        Assert.Equal("Models:nope: no such model", unknown.Message);

        // Frames go on through the old model.
        var seqAfter = probe.Seen.Where(m => IsResult(m, "cam")).Max(m => Json(m).GetProperty("seq").GetInt64());
        await probe.WaitForAsync(m => IsResult(m, "cam") && Json(m).GetProperty("seq").GetInt64() > seqAfter + 2, Wait, ct);
        var pipeline = host.Services.GetRequiredService<VisionService>().Pipelines.Single();
        await host.StopAsync(ct);

        Assert.All(probe.Seen.Where(m => IsResult(m, "cam")), m => Assert.Equal(detector.Sha256, ModelSha(m)));
        Assert.Equal(0, pipeline.Processor.Swaps);
        Assert.Equal(0, pipeline.FramesFailed);
        Assert.Equal(detector.Sha256, pipeline.Model.Sha256);
        Assert.Equal([("det", "failed")], reloads.Seen);
    }

    [Fact]
    public async Task A_new_model_of_another_task_is_refused_for_a_running_camera_and_the_old_one_goes_on()
    {
        var ct = TestContext.Current.CancellationToken;
        using var models = new TempFolder();
        var detector = BundledModels.Load("shapes-detector");
        var manifest = WriteManifest(models.Path, "shapes-detector", detector.ModelPath);
        await using var scenario = await DaemonScenario.StartAsync("swap-task", ct);
        await using var probe = await scenario.ProbeAsync("vision/#", ct);
        using var host = await scenario.StartHostAsync(CameraSections(manifest), ct);
        await probe.WaitForAsync(m => IsResult(m, "cam") && Json(m).GetProperty("seq").GetInt64() >= 1, Wait, ct);

        // The same file declared a classifier: it loads and warms up, but the camera's results would change shape.
        WriteManifest(models.Path, "shapes-detector", detector.ModelPath, m =>
        {
            m["task"] = "classification";
            m["labels"] = new JsonArray();
        });
        var outcome = await host.Services.GetRequiredService<IModelReloader>().ReloadAsync("det", ct);

        Assert.False(outcome.Succeeded);
        Assert.Contains("camera cam runs a detection model and the new one is a classification model", outcome.Message, StringComparison.Ordinal);
        var seqAfter = probe.Seen.Where(m => IsResult(m, "cam")).Max(m => Json(m).GetProperty("seq").GetInt64());
        await probe.WaitForAsync(m => IsResult(m, "cam") && Json(m).GetProperty("seq").GetInt64() > seqAfter + 1, Wait, ct);
        var pipeline = host.Services.GetRequiredService<VisionService>().Pipelines.Single();
        await host.StopAsync(ct);

        Assert.All(probe.Seen.Where(m => IsResult(m, "cam")), m => Assert.Equal("detection", Json(m).GetProperty("task").GetString()));
        Assert.Equal(0, pipeline.Processor.Swaps);
        Assert.Equal(0, pipeline.FramesFailed);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_sensor_model_swap_keeps_the_stream_state_only_when_the_new_manifest_declares_it_compatible(bool declareCompatible)
    {
        var ct = TestContext.Current.CancellationToken;
        using var models = new TempFolder();
        var lstm = BundledModels.Load("vibration-lstm");
        var manifest = WriteManifest(models.Path, "vibration-lstm", lstm.ModelPath);
        await using var scenario = await DaemonScenario.StartAsync("swap-lstm", ct);
        await using var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await scenario.StartHostAsync(SensorSections(manifest, reloadOnChange: false), ct);
        await probe.WaitForAsync(m => IsResult(m, "press") && Json(m).GetProperty("seq").GetInt64() >= 3, Wait, ct);

        var v2Sha = await WriteNewVersionAsync(models.Path, lstm, declareCompatible, ct);
        var outcome = await host.Services.GetRequiredService<IModelReloader>().ReloadAsync("lstm", ct);
        Assert.True(outcome.Succeeded, outcome.Message);
        Assert.Contains(declareCompatible ? "stream press: state kept" : "stream press: state reset", outcome.Message, StringComparison.Ordinal);

        var first = Json(await probe.WaitForAsync(m => IsResult(m, "press") && ModelSha(m) == v2Sha, Wait, ct));
        var firstSeq = first.GetProperty("seq").GetInt64();
        await probe.WaitForAsync(m => IsResult(m, "press") && Json(m).GetProperty("seq").GetInt64() >= firstSeq + 2, Wait, ct);
        // The retained state names the model that runs now (published before the new model's first result).
        var state = probe.Seen.Last(m => m.Topic.EndsWith("/press/state", StringComparison.Ordinal));
        Assert.Equal(v2Sha, ModelSha(state));
        Assert.Contains("reloaded", Json(state).GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Empty(SchemaValidator.Errors("sensor.state", state.Payload));
        var runner = host.Services.GetRequiredService<SensorService>().Streams.Single();
        await host.StopAsync(ct);

        var results = probe.Seen.Where(m => IsResult(m, "press")).Select(Json).ToList();
        var lastOld = results.Last(r => r.GetProperty("model").GetProperty("sha256").GetString() == lstm.Sha256);
        Assert.Equal(lastOld.GetProperty("seq").GetInt64() + 1, firstSeq); // no step lost or repeated across the swap
        Assert.Equal(v2Sha, runner.Processor.Model.Sha256);
        if (declareCompatible)
        {
            // The recurrent state went on: its step count continues, and nothing was reset.
            Assert.Equal(lastOld.GetProperty("state_steps").GetInt64() + 1, first.GetProperty("state_steps").GetInt64());
            Assert.Equal(0, first.GetProperty("state_resets").GetInt64());
            Assert.Equal(0, runner.StateResets);
            Assert.DoesNotContain(probe.Seen, m => m.Topic.EndsWith("/press/event", StringComparison.Ordinal));
        }
        else
        {
            // A fresh state, reported like any other reset: counted in the results and announced on the event topic.
            Assert.Equal(1, first.GetProperty("state_steps").GetInt64());
            Assert.Equal(1, first.GetProperty("state_resets").GetInt64());
            Assert.Equal(1, runner.StateResets);
            var reset = Json(Assert.Single(probe.Seen, m => m.Topic.EndsWith("/press/event", StringComparison.Ordinal)));
            Assert.Equal("reset", reset.GetProperty("event").GetString());
            Assert.Contains("model reload", reset.GetProperty("reason").GetString(), StringComparison.Ordinal);
            Assert.Contains("state_compatible_with", reset.GetProperty("reason").GetString(), StringComparison.Ordinal);
            Assert.Equal(1, reset.GetProperty("state_resets").GetInt64());
        }
    }

    [Fact]
    public async Task A_new_model_version_a_running_stream_cannot_take_is_refused_and_the_stream_goes_on_with_the_old_one()
    {
        var ct = TestContext.Current.CancellationToken;
        using var models = new TempFolder();
        var lstm = BundledModels.Load("vibration-lstm");
        var manifest = WriteManifest(models.Path, "vibration-lstm", lstm.ModelPath);
        await using var scenario = await DaemonScenario.StartAsync("swap-refused", ct);
        await using var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await scenario.StartHostAsync(SensorSections(manifest, reloadOnChange: false), ct);
        await probe.WaitForAsync(m => IsResult(m, "press") && Json(m).GetProperty("seq").GetInt64() >= 1, Wait, ct);

        // The same file, declared at another sample rate: the stream's source and clock were built for 200 Hz.
        WriteManifest(models.Path, "vibration-lstm", lstm.ModelPath, m => m["stream"]!["sample_rate_hz"] = 100);
        var outcome = await host.Services.GetRequiredService<IModelReloader>().ReloadAsync("lstm", ct);

        Assert.False(outcome.Succeeded);
        Assert.Contains("old one keeps running", outcome.Message, StringComparison.Ordinal);
        Assert.Contains("stream press takes 3 channels × 50 samples at 200 Hz and the new model 3 × 50 at 100 Hz", outcome.Message, StringComparison.Ordinal);
        var seqAfter = probe.Seen.Where(m => IsResult(m, "press")).Max(m => Json(m).GetProperty("seq").GetInt64());
        await probe.WaitForAsync(m => IsResult(m, "press") && Json(m).GetProperty("seq").GetInt64() >= seqAfter + 2, Wait, ct);
        var runner = host.Services.GetRequiredService<SensorService>().Streams.Single();
        await host.StopAsync(ct);

        Assert.All(probe.Seen.Where(m => IsResult(m, "press")), m => Assert.Equal(lstm.Sha256, ModelSha(m)));
        Assert.Equal(0, runner.StateResets);
        Assert.Equal(200, host.Services.GetRequiredService<ModelCatalog>().Get("lstm").Manifest!.Stream!.SampleRateHz);
    }

    [Fact]
    public async Task A_changed_model_file_with_ReloadOnChange_is_swapped_in_without_a_command()
    {
        var ct = TestContext.Current.CancellationToken;
        using var models = new TempFolder();
        var lstm = BundledModels.Load("vibration-lstm");
        var manifest = WriteManifest(models.Path, "vibration-lstm", lstm.ModelPath);
        await using var scenario = await DaemonScenario.StartAsync("swap-watch", ct);
        await using var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await scenario.StartHostAsync(SensorSections(manifest, reloadOnChange: true), ct);
        await probe.WaitForAsync(m => IsResult(m, "press") && Json(m).GetProperty("seq").GetInt64() >= 2, Wait, ct);

        var v2Sha = await WriteNewVersionAsync(models.Path, lstm, declareCompatible: true, ct);

        await probe.WaitForAsync(m => IsResult(m, "press") && ModelSha(m) == v2Sha, Wait, ct);
        var watcher = host.Services.GetRequiredService<ModelFileWatcher>();
        var runner = host.Services.GetRequiredService<SensorService>().Streams.Single();
        await host.StopAsync(ct);

        // Both files changed (the model, then its manifest), within the debounce: one reload.
        Assert.True(watcher.ReloadsTriggered >= 1);
        Assert.Equal(v2Sha, runner.Processor.Model.Sha256);
        Assert.Equal(0, runner.StateResets);
    }

    [Fact]
    public async Task Where_files_cannot_be_watched_they_are_polled_and_a_changed_manifest_still_reloads_its_model()
    {
        var ct = TestContext.Current.CancellationToken;
        using var models = new TempFolder();
        var lstm = BundledModels.Load("vibration-lstm");
        var manifest = WriteManifest(models.Path, "vibration-lstm", lstm.ModelPath);
        await using var scenario = await DaemonScenario.StartAsync("swap-poll", ct);
        await using var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await scenario.StartHostAsync(
            SensorSections(manifest, reloadOnChange: true),
            ct,
            services => services.AddSingleton(sp => new ModelFileWatcher(
                sp.GetRequiredService<IOptions<EdgeRunner.Service.Configuration.ModelsOptions>>(),
                sp.GetRequiredService<ModelCatalog>(),
                sp.GetRequiredService<IModelReloader>(),
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILogger<ModelFileWatcher>>(),
                poll: true)));
        await probe.WaitForAsync(m => IsResult(m, "press") && Json(m).GetProperty("seq").GetInt64() >= 1, Wait, ct);

        var v2Sha = await WriteNewVersionAsync(models.Path, lstm, declareCompatible: true, ct);

        await probe.WaitForAsync(m => IsResult(m, "press") && ModelSha(m) == v2Sha, Wait, ct);
        var watcher = host.Services.GetRequiredService<ModelFileWatcher>();
        await host.StopAsync(ct);

        Assert.True(watcher.Polling);
        Assert.True(watcher.ReloadsTriggered >= 1);
    }

    private static JsonObject CameraSections(string manifest) => new()
    {
        ["Models"] = new JsonObject { ["det"] = new JsonObject { ["Manifest"] = manifest } },
        ["Cameras"] = new JsonObject
        {
            ["cam"] = new JsonObject
            {
                ["Model"] = "det",
                ["Fps"] = 10,
                ["Source"] = new JsonObject { ["Kind"] = "Images", ["Path"] = TestPaths.SharedFile("images/cat.jpg"), ["Loop"] = true },
            },
        },
    };

    private static JsonObject SensorSections(string manifest, bool reloadOnChange) => new()
    {
        ["Models"] = new JsonObject { ["lstm"] = new JsonObject { ["Manifest"] = manifest, ["ReloadOnChange"] = reloadOnChange } },
        ["Sensors"] = new JsonObject { ["press"] = TestConfig.SimulatedVibration(31) },
    };

    /// <summary>Writes (or rewrites) <c>model.json</c> in <paramref name="folder"/>: the bundled model's manifest, for <paramref name="file"/>.</summary>
    private static string WriteManifest(string folder, string bundled, string file, Action<JsonObject>? edit = null)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(BundledModels.ManifestPath(bundled)))!.AsObject();
        manifest["file"] = file;
        manifest["sha256"] = Sha256(file);
        edit?.Invoke(manifest);
        var path = Path.Combine(folder, "model.json");
        File.WriteAllText(path, manifest.ToJsonString());
        return path;
    }

    /// <summary>
    /// A new version of the LSTM (other bytes, the same graph: a ModelProto doc_string appended, as retrained weights
    /// would be) in <paramref name="folder"/>, and the manifest pointing at it; returns its SHA-256.
    /// </summary>
    private static async Task<string> WriteNewVersionAsync(string folder, EdgeRunner.Models.Manifests.ModelManifest old, bool declareCompatible, CancellationToken ct)
    {
        var bytes = (await File.ReadAllBytesAsync(old.ModelPath, ct)).Concat(new byte[] { 0x32, 0x02, (byte)'v', (byte)'2' }).ToArray();
        var file = Path.Combine(folder, "model-v2.onnx");
        await File.WriteAllBytesAsync(file, bytes, ct);
        WriteManifest(folder, "vibration-lstm", file, m =>
        {
            if (declareCompatible)
            {
                m["state_compatible_with"] = new JsonArray(old.Sha256);
            }
        });
        return Sha256(file);
    }

    private static string Sha256(string file) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));

    private static bool IsResult(ReceivedMessage m, string unit) => m.Topic.EndsWith($"/{unit}/result", StringComparison.Ordinal);

    private static string? ModelSha(ReceivedMessage m) => Json(m).GetProperty("model").GetProperty("sha256").GetString();

    private static JsonElement Json(ReceivedMessage message) => JsonDocument.Parse(message.Payload).RootElement;

    /// <summary>The <c>edgerunner.model.reloads</c> counts of one host (its own meter: other tests' hosts run in this process too).</summary>
    private sealed class ReloadCounter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<(string Model, string Outcome)> _seen = new();

        public ReloadCounter(IHost host)
        {
            var meter = host.Services.GetRequiredService<EdgeRunnerMetrics>().Meter;
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter == meter && instrument.Name == "edgerunner.model.reloads")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                var all = tags.ToArray();
                var model = all.Single(t => t.Key == "model").Value as string ?? string.Empty;
                var outcome = all.Single(t => t.Key == "outcome").Value as string ?? string.Empty;
                for (var i = 0; i < value; i++)
                {
                    _seen.Enqueue((model, outcome));
                }
            });
            _listener.Start();
        }

        public IReadOnlyList<(string Model, string Outcome)> Seen => [.. _seen];

        public void Dispose() => _listener.Dispose();
    }
}
