using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>Stateful streams survive a daemon restart: the state is checkpointed on stop and restored on start.</summary>
public sealed class StateCheckpointTests
{
    private const int Steps = 14;

    private static JsonObject Sections(string stateDirectory, string? manifest = null) => new()
    {
        ["Models"] = new JsonObject { ["lstm"] = manifest is null ? TestConfig.BundledModel("vibration-lstm") : new JsonObject { ["Manifest"] = manifest } },
        ["Sensors"] = new JsonObject { ["press"] = TestConfig.SimulatedVibration(31) },
        ["State"] = new JsonObject { ["Directory"] = stateDirectory },
    };

    /// <summary>Runs the daemon until step <paramref name="untilSeq"/> is published; returns seq → probabilities.</summary>
    private static async Task<Dictionary<long, double[]>> RunUntilAsync(DaemonScenario scenario, string config, long untilSeq, CancellationToken ct, bool pacedByTheClock = true)
    {
        // Results and status on one subscription: on a clean stop the daemon drains its queue and then says
        // "offline", and the broker forwards one client's messages in order, so once that "offline" is here
        // every result published before it is too. (The retained "offline" of a previous run arrives at
        // subscription, before any result, and is consumed by the first wait.)
        await using var probe = await scenario.ProbeAsync("#", ct);
        using var host = await scenario.StartHostAsync(config, ct);
        static bool IsResult(ReceivedMessage m) => m.Topic.EndsWith("/sensors/press/result", StringComparison.Ordinal);
        await probe.WaitForAsync(m => IsResult(m) && JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64() >= untilSeq, TimeSpan.FromSeconds(60), ct);
        await host.StopAsync(ct);
        var stoppedAt = DateTimeOffset.UtcNow;
        await probe.WaitForAsync(m => m.Topic == scenario.Topic("status") && m.Payload == "offline", TimeSpan.FromSeconds(30), ct);
        var results = probe.Seen.Where(IsResult).Select(m => JsonDocument.Parse(m.Payload).RootElement).ToList();

        // The simulated machine is paced by the clock and hands over each 0.25 s block as its period
        // starts, so a window ends at most one chunk after the daemon stopped (a resumed stream once
        // stamped its windows steps × 0.25 s in the future: 1.75 s by step 7).
        var lastWindowEnd = results.Max(r => r.GetProperty("window").GetProperty("end").GetDateTimeOffset());
        Assert.True(!pacedByTheClock || lastWindowEnd <= stoppedAt + TimeSpan.FromSeconds(0.5), $"window ends at {lastWindowEnd:O}, the daemon stopped at {stoppedAt:O}");
        return results.ToDictionary(
            r => r.GetProperty("seq").GetInt64(),
            r => r.GetProperty("probabilities").EnumerateObject().Select(p => p.Value.GetDouble()).ToArray());
    }

    [Fact]
    public async Task Outputs_after_a_restart_continue_as_if_the_daemon_never_stopped()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var uninterruptedRun = await DaemonScenario.StartAsync("ckpt-a", ct);
        var uninterrupted = await RunUntilAsync(uninterruptedRun, uninterruptedRun.WriteConfig(Sections(uninterruptedRun.Folder)), Steps, ct);

        await using var restartedRun = await DaemonScenario.StartAsync("ckpt-b", ct);
        var stateB = restartedRun.Folder;
        var configB = restartedRun.WriteConfig(Sections(stateB));
        var first = await RunUntilAsync(restartedRun, configB, Steps / 2, ct);
        Assert.True(File.Exists(Path.Combine(stateB, "press.state")), "a checkpoint is written on stop");
        var second = await RunUntilAsync(restartedRun, configB, Steps, ct);

        // No step repeated or skipped across the restart, and the same outputs as without it.
        Assert.Equal(first.Keys.Max() + 1, second.Keys.Min());
        foreach (var (seq, probabilities) in first.Concat(second).Where(kv => kv.Key <= Steps))
        {
            Assert.True(uninterrupted.TryGetValue(seq, out var expected), $"uninterrupted run has step {seq}");
            var difference = probabilities.Zip(expected, (x, y) => Math.Abs(x - y)).Max();
            Assert.True(difference <= 1e-5, $"step {seq}: max |Δ| {difference}");
        }
    }

    [Fact]
    public async Task A_checkpoint_of_another_model_is_not_restored()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("ckpt", ct);
        var state = scenario.Folder;
        var config = scenario.WriteConfig(Sections(state));
        await RunUntilAsync(scenario, config, 2, ct);

        // Pretend the checkpoint came from another model: overwrite its recorded SHA-256.
        var path = Path.Combine(state, "press.state");
        var bytes = await File.ReadAllBytesAsync(path, ct);
        var sha = System.Text.Encoding.UTF8.GetBytes(BundledModels.Load("vibration-lstm").Sha256);
        var at = bytes.AsSpan().IndexOf(sha);
        Assert.True(at > 0);
        bytes[at] = (byte)(bytes[at] == (byte)'0' ? '1' : '0');
        await File.WriteAllBytesAsync(path, bytes, ct);

        var restarted = await RunUntilAsync(scenario, config, 0, ct);

        Assert.Equal(0, restarted.Keys.Min()); // started fresh at step 0
    }

    [Fact]
    public async Task A_damaged_checkpoint_is_reported_and_the_stream_starts_fresh()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("damaged", ct);

        // The right magic and version, then a corrupt length prefix where the model's SHA-256 string should be.
        await File.WriteAllBytesAsync(Path.Combine(scenario.Folder, "press.state"), [0x45, 0x52, 0x43, 0x4B, 2, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], ct);
        var results = await RunUntilAsync(scenario, scenario.WriteConfig(Sections(scenario.Folder)), 2, ct);
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
        await using var scenario = await DaemonScenario.StartAsync("swap", ct);
        using var state = new TempFolder();
        using var models = new TempFolder();
        var first = await RunUntilAsync(scenario, scenario.WriteConfig(Sections(state.Path)), 4, ct);

        var v2 = await WriteNewModelVersionAsync(models.Path, declareCompatible, ct);
        var afterSwap = await RunUntilAsync(scenario, scenario.WriteConfig(Sections(state.Path, v2)), first.Keys.Max() + 2, ct);

        // Compatible: the steps go on where the old model stopped. Not declared: a fresh start at step 0.
        Assert.Equal(declareCompatible ? first.Keys.Max() + 1 : 0, afterSwap.Keys.Min());
    }

    [Fact]
    public async Task A_resampled_recording_continues_exactly_after_a_restart()
    {
        var ct = TestContext.Current.CancellationToken;
        var recording = TestPaths.SharedFile("data/st-fan-vibration/fan_fault.txt");
        // The ST fan recording at 104 Hz, resampled to the model's 200 Hz: the checkpoint must carry the
        // resampler's grid and the samples waiting for the next chunk, not only the recurrent state.
        string FanConfig(DaemonScenario scenario) => scenario.WriteConfig(new JsonObject
        {
            ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
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
            ["State"] = new JsonObject { ["Directory"] = scenario.Folder },
        });

        // A replay faster than recorded: its sample times run ahead of the clock.
        await using var uninterruptedRun = await DaemonScenario.StartAsync("fan-a", ct);
        var uninterrupted = await RunUntilAsync(uninterruptedRun, FanConfig(uninterruptedRun), 24, ct, pacedByTheClock: false);
        await using var restartedRun = await DaemonScenario.StartAsync("fan-b", ct);
        var configB = FanConfig(restartedRun);
        var first = await RunUntilAsync(restartedRun, configB, 9, ct, pacedByTheClock: false);
        var second = await RunUntilAsync(restartedRun, configB, 24, ct, pacedByTheClock: false);

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
        await using var scenario = await DaemonScenario.StartAsync("kill", ct);
        var sections = Sections(scenario.Folder);
        sections["State"]!["CheckpointIntervalSeconds"] = 1;
        var config = scenario.WriteConfig(sections);
        var checkpoint = Path.Combine(scenario.Folder, "press.state");
        await using (var probe = await scenario.ProbeAsync("sensors/press/result", ct))
        await using (var daemon = scenario.StartProcess(["--config", config]))
        {
            await probe.WaitForAsync(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64() >= 8, TimeSpan.FromSeconds(60), ct);
            Assert.True(File.Exists(checkpoint), "a periodic checkpoint was written while running");

            // SIGKILL: no clean stop, no checkpoint on the way out.
            System.Diagnostics.Process.GetProcessById(daemon.Id).Kill(entireProcessTree: true);
            await daemon.WaitForExitAsync(TimeSpan.FromSeconds(10), ct);
        }

        var restarted = await RunUntilAsync(scenario, config, 0, ct);
        Assert.True(restarted.Keys.Min() >= 3, $"restarted at step {restarted.Keys.Min()}, not from a periodic checkpoint");
    }
}
