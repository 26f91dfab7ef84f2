using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service;
using Microsoft.Extensions.Hosting;

namespace EdgeRunner.IntegrationTests;

/// <summary>Stateful streams survive a daemon restart: the state is checkpointed on stop and restored on start.</summary>
public sealed class StateCheckpointTests
{
    private const int Steps = 14;

    private static string Config(int brokerPort, string deviceId, string stateDirectory, string? manifest = null) => TestConfig.WriteForBroker(deviceId, brokerPort, new JsonObject
    {
        ["Models"] = new JsonObject { ["lstm"] = new JsonObject { ["Manifest"] = manifest ?? BundledModels.ManifestPath("vibration-lstm") } },
        ["Sensors"] = new JsonObject { ["press"] = new JsonObject { ["Model"] = "lstm", ["Source"] = new JsonObject { ["Kind"] = "SimulatedVibration", ["Seed"] = 31 } } },
        ["State"] = new JsonObject { ["Directory"] = stateDirectory },
    });

    /// <summary>Runs the daemon until step <paramref name="untilSeq"/> is published; returns seq → probabilities.</summary>
    private static async Task<Dictionary<long, double[]>> RunUntilAsync(int brokerPort, string deviceId, string config, long untilSeq, CancellationToken ct, bool pacedByTheClock = true)
    {
        await using var probe = await MqttProbe.ConnectAsync(brokerPort, $"edgerunner/{deviceId}/sensors/press/result", TimeSpan.FromSeconds(5), ct);
        using var host = await InProcessDaemon.StartAsync(config, ct);
        await probe.WaitForAsync(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64() >= untilSeq, TimeSpan.FromSeconds(60), ct);
        await host.StopAsync(ct);
        var stoppedAt = DateTimeOffset.UtcNow;
        await Task.Delay(200, ct); // let the last drained messages arrive

        // The simulated machine is paced by the clock and hands over each 0.25 s block as its period
        // starts, so a window ends at most one chunk after the daemon stopped (a resumed stream once
        // stamped its windows steps × 0.25 s in the future: 1.75 s by step 7).
        var lastWindowEnd = probe.Seen.Max(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("window").GetProperty("end").GetDateTimeOffset());
        Assert.True(!pacedByTheClock || lastWindowEnd <= stoppedAt + TimeSpan.FromSeconds(0.5), $"window ends at {lastWindowEnd:O}, the daemon stopped at {stoppedAt:O}");
        return probe.Seen
            .Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .ToDictionary(
                r => r.GetProperty("seq").GetInt64(),
                r => r.GetProperty("probabilities").EnumerateObject().Select(p => p.Value.GetDouble()).ToArray());
    }

    [Fact]
    public async Task Outputs_after_a_restart_continue_as_if_the_daemon_never_stopped()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var broker = await MosquittoBroker.StartAsync(ct);
        var root = Directory.CreateTempSubdirectory("edgerunner-state-").FullName;
        try
        {
            var id = "ckpt-" + Guid.NewGuid().ToString("N")[..8];
            var uninterrupted = await RunUntilAsync(broker.Port, id + "-a", Config(broker.Port, id + "-a", Path.Combine(root, "a")), Steps, ct);

            var stateB = Path.Combine(root, "b");
            var configB = Config(broker.Port, id + "-b", stateB);
            var first = await RunUntilAsync(broker.Port, id + "-b", configB, Steps / 2, ct);
            Assert.True(File.Exists(Path.Combine(stateB, "press.state")), "a checkpoint is written on stop");
            var second = await RunUntilAsync(broker.Port, id + "-b", configB, Steps, ct);

            // No step repeated or skipped across the restart, and the same outputs as without it.
            Assert.Equal(first.Keys.Max() + 1, second.Keys.Min());
            foreach (var (seq, probabilities) in first.Concat(second).Where(kv => kv.Key <= Steps))
            {
                Assert.True(uninterrupted.TryGetValue(seq, out var expected), $"uninterrupted run has step {seq}");
                var difference = probabilities.Zip(expected, (x, y) => Math.Abs(x - y)).Max();
                Assert.True(difference <= 1e-5, $"step {seq}: max |Δ| {difference}");
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task A_checkpoint_of_another_model_is_not_restored()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var broker = await MosquittoBroker.StartAsync(ct);
        var state = Directory.CreateTempSubdirectory("edgerunner-state-").FullName;
        try
        {
            var id = "ckpt-" + Guid.NewGuid().ToString("N")[..8];
            var config = Config(broker.Port, id, state);
            await RunUntilAsync(broker.Port, id, config, 2, ct);

            // Pretend the checkpoint came from another model: overwrite its recorded SHA-256.
            var path = Path.Combine(state, "press.state");
            var bytes = await File.ReadAllBytesAsync(path, ct);
            var sha = System.Text.Encoding.UTF8.GetBytes(BundledModels.Load("vibration-lstm").Sha256);
            var at = bytes.AsSpan().IndexOf(sha);
            Assert.True(at > 0);
            bytes[at] = (byte)(bytes[at] == (byte)'0' ? '1' : '0');
            await File.WriteAllBytesAsync(path, bytes, ct);

            var restarted = await RunUntilAsync(broker.Port, id, config, 0, ct);

            Assert.Equal(0, restarted.Keys.Min()); // started fresh at step 0
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task A_damaged_checkpoint_is_reported_and_the_stream_starts_fresh()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var broker = await MosquittoBroker.StartAsync(ct);
        using var temp = new TempFolder();
        var id = "damaged-" + Guid.NewGuid().ToString("N")[..8];
        // The right magic and version, then a corrupt length prefix where the model's SHA-256 string should be.
        await File.WriteAllBytesAsync(Path.Combine(temp.Path, "press.state"), [0x45, 0x52, 0x43, 0x4B, 2, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], ct);
        var results = await RunUntilAsync(broker.Port, id, Config(broker.Port, id, temp.Path), 2, ct);
        Assert.Contains(0L, results.Keys);
    }

    [Fact]
    public void A_checkpoint_written_by_the_previous_format_is_still_restored()
    {
        var manifest = BundledModels.Load("vibration-lstm");
        using var model = EdgeRunner.Models.Sequence.SequenceModel.Load(
            new EdgeRunner.Models.Sequence.SequenceModelOptions
            {
                Id = manifest.Id,
                Path = manifest.ModelPath,
                StreamInput = manifest.Stream!.Input,
                ResultOutput = manifest.Postprocess!.Output!,
                State = [.. manifest.State!.Select(p => (p.Input, p.Output, p.BatchAxis))],
            },
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "old.state");
        using (var writer = new BinaryWriter(File.Create(path)))
        {
            // Version 1: magic, version, sha, stream, steps, position, tensors — no last-sample time.
            writer.Write(0x4B435245);
            writer.Write(1);
            writer.Write(model.Sha256);
            writer.Write("press");
            writer.Write(42L);
            writer.Write(2100L);
            // What the builds of that format wrote: the pairs, then an empty context placeholder.
            writer.Write(model.StatePairs.Count + 1);
            foreach (var pair in model.StatePairs)
            {
                writer.Write(pair.Size);
                for (var i = 0; i < pair.Size; i++)
                {
                    writer.Write(i * 0.001f);
                }
            }

            writer.Write(0);
        }

        var state = model.CreateState("press");
        Assert.True(EdgeRunner.Service.Sensors.StreamCheckpoint.TryRead(path, model.Sha256, state, out var position, out var lastSampleTime, out var reason), reason);
        Assert.Equal((42L, 2100L), (state.Steps, position));
        Assert.Null(lastSampleTime);
        Assert.Equal(5 * 0.001f, state.Tensor(1)[5]);
    }

    /// <summary>
    /// A new version of the model (other bytes, same architecture) whose manifest lists the old SHA-256
    /// in <c>state_compatible_with</c>; without that line its own manifest would start the streams afresh.
    /// </summary>
    private static async Task<string> WriteNewModelVersionAsync(string folder, bool declareCompatible, CancellationToken ct)
    {
        var bundled = BundledModels.Load("vibration-lstm");
        // Appending a ModelProto doc_string (field 6) changes the file, not the graph: a stand-in for retrained weights.
        var bytes = (await File.ReadAllBytesAsync(bundled.ModelPath, ct)).Concat(new byte[] { 0x32, 0x02, (byte)'v', (byte)'2' }).ToArray();
        var model = Path.Combine(folder, "vibration-lstm-v2.onnx");
        await File.WriteAllBytesAsync(model, bytes, ct);
        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(bundled.ManifestPath, ct))!.AsObject();
        manifest["file"] = model;
        manifest["sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        if (declareCompatible)
        {
            manifest["state_compatible_with"] = new JsonArray(bundled.Sha256);
        }

        var path = Path.Combine(folder, declareCompatible ? "v2-compatible.json" : "v2.json");
        await File.WriteAllTextAsync(path, manifest.ToJsonString(), ct);
        return path;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_new_model_version_carries_the_state_on_only_when_its_manifest_declares_it_compatible(bool declareCompatible)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var broker = await MosquittoBroker.StartAsync(ct);
        using var state = new TempFolder();
        using var models = new TempFolder();
        var id = "swap-" + Guid.NewGuid().ToString("N")[..8];
        var first = await RunUntilAsync(broker.Port, id, Config(broker.Port, id, state.Path), 4, ct);

        var v2 = await WriteNewModelVersionAsync(models.Path, declareCompatible, ct);
        var afterSwap = await RunUntilAsync(broker.Port, id, Config(broker.Port, id, state.Path, v2), first.Keys.Max() + 2, ct);

        // Compatible: the steps go on where the old model stopped. Not declared: a fresh start at step 0.
        Assert.Equal(declareCompatible ? first.Keys.Max() + 1 : 0, afterSwap.Keys.Min());
    }

    [Fact]
    public async Task A_resampled_recording_continues_exactly_after_a_restart()
    {
        var ct = TestContext.Current.CancellationToken;
        var recording = TestPaths.SharedFile("data/st-fan-vibration/fan_fault.txt");
        await using var broker = await MosquittoBroker.StartAsync(ct);
        using var root = new TempFolder();

        // The ST fan recording at 104 Hz, resampled to the model's 200 Hz: the checkpoint must carry the
        // resampler's grid and the samples waiting for the next chunk, not only the recurrent state.
        string FanConfig(string deviceId, string stateDirectory) => TestConfig.WriteForBroker(deviceId, broker.Port, new JsonObject
        {
            ["Models"] = new JsonObject { ["lstm"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("vibration-lstm") } },
            ["Sensors"] = new JsonObject
            {
                ["press"] = new JsonObject
                {
                    ["Model"] = "lstm",
                    ["Source"] = new JsonObject
                    {
                        ["Kind"] = "Csv", ["Path"] = recording, ["Columns"] = new JsonArray("A_X", "A_Y", "A_Z"),
                        ["SampleRateHz"] = 104, ["Speed"] = 10, ["Loop"] = false,
                    },
                },
            },
            ["State"] = new JsonObject { ["Directory"] = stateDirectory },
        });

        var id = "fan-" + Guid.NewGuid().ToString("N")[..8];
        // A replay faster than recorded: its sample times run ahead of the clock.
        var uninterrupted = await RunUntilAsync(broker.Port, id + "-a", FanConfig(id + "-a", Path.Combine(root.Path, "a")), 24, ct, pacedByTheClock: false);
        var configB = FanConfig(id + "-b", Path.Combine(root.Path, "b"));
        var first = await RunUntilAsync(broker.Port, id + "-b", configB, 9, ct, pacedByTheClock: false);
        var second = await RunUntilAsync(broker.Port, id + "-b", configB, 24, ct, pacedByTheClock: false);

        Assert.Equal(first.Keys.Max() + 1, second.Keys.Min());
        foreach (var (seq, probabilities) in first.Concat(second).Where(kv => kv.Key <= 24))
        {
            var difference = probabilities.Zip(uninterrupted[seq], (x, y) => Math.Abs(x - y)).Max();
            Assert.True(difference <= 1e-5, $"step {seq}: max |Δ| {difference}");
        }
    }

    [Fact]
    public async Task A_periodic_checkpoint_survives_a_hard_kill()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var broker = await MosquittoBroker.StartAsync(ct);
        using var state = new TempFolder();
        var id = "kill-" + Guid.NewGuid().ToString("N")[..8];
        var config = TestConfig.WriteForBroker(id, broker.Port, new JsonObject
        {
            ["Models"] = new JsonObject { ["lstm"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("vibration-lstm") } },
            ["Sensors"] = new JsonObject { ["press"] = new JsonObject { ["Model"] = "lstm", ["Source"] = new JsonObject { ["Kind"] = "SimulatedVibration", ["Seed"] = 31 } } },
            ["State"] = new JsonObject { ["Directory"] = state.Path, ["CheckpointIntervalSeconds"] = 1 },
        });
        var checkpoint = Path.Combine(state.Path, "press.state");
        await using (var probe = await MqttProbe.ConnectAsync(broker.Port, $"edgerunner/{id}/sensors/press/result", TimeSpan.FromSeconds(5), ct))
        await using (var daemon = DaemonProcess.Start(["--config", config]))
        {
            await probe.WaitForAsync(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64() >= 8, TimeSpan.FromSeconds(60), ct);
            Assert.True(File.Exists(checkpoint), "a periodic checkpoint was written while running");

            // SIGKILL: no clean stop, no checkpoint on the way out.
            System.Diagnostics.Process.GetProcessById(daemon.Id).Kill(entireProcessTree: true);
            await daemon.WaitForExitAsync(TimeSpan.FromSeconds(10), ct);
        }

        var restarted = await RunUntilAsync(broker.Port, id, config, 0, ct);
        Assert.True(restarted.Keys.Min() >= 3, $"restarted at step {restarted.Keys.Min()}, not from a periodic checkpoint");
    }
}
