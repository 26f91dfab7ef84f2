using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Sensors;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Checkpoints are told truthfully: a write that fails is an error and reported as not checkpointed,
/// files and folders are private whatever the umask, a damaged file is never restored, and a stream
/// id of any length or content maps to a file name the file system takes.
/// </summary>
public sealed class CheckpointIntegrityTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task An_evicted_stream_whose_checkpoint_cannot_be_written_reports_checkpointed_false_and_the_daemon_goes_on()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var state = Path.Combine(temp.Path, "state");
        Directory.CreateDirectory(state);

        // A folder where the checkpoint file goes: the rename onto it fails, whoever runs the test (root included).
        Directory.CreateDirectory(Path.Combine(state, "vib%2Fm1.state"));

        await using var scenario = await DaemonScenario.StartAsync("ckfail", ct);
        var deviceId = scenario.DeviceId;
        var prefix = $"plant/{deviceId}";
        var config = WriteConfig(scenario, new JsonObject
        {
            ["vib"] = new JsonObject
            {
                ["Model"] = "lstm",
                ["Source"] = new JsonObject { ["Kind"] = "Mqtt", ["Topic"] = $"{prefix}/+", ["Columns"] = new JsonArray("ax", "ay", "az"), ["IdleTimeoutSeconds"] = 0.5 },
            },
        }, state);
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        var daemon = scenario.StartProcess(["--config", config]);
        await using var sender = await MqttSender.ConnectAsync(scenario.Port, ct);

        await FeedUntilResultAsync(sender, probe, $"{prefix}/m1", deviceId, "vib/m1", ct);
        var evicted = await probe.WaitForAsync(m => m.Topic == $"edgerunner/{deviceId}/sensors/vib/m1/event" && m.Payload.Contains("\"evicted\"", StringComparison.Ordinal), Wait, ct);

        Assert.False(JsonDocument.Parse(evicted.Payload).RootElement.GetProperty("checkpointed").GetBoolean());

        // The daemon goes on: another topic becomes a stream and publishes.
        await FeedUntilResultAsync(sender, probe, $"{prefix}/m2", deviceId, "vib/m2", ct);
        daemon.Terminate();
        Assert.Equal(0, await daemon.WaitForExitAsync(Wait, ct));
        var log = daemon.Stdout;
        Assert.Contains($"fail: EdgeRunner.Sensor.vib", log, StringComparison.Ordinal);
        Assert.Contains($"Sensor vib/m1: cannot write checkpoint {Path.Combine(state, "vib%2Fm1.state")}", log, StringComparison.Ordinal);
        Assert.Contains("Sensor vib/m1: evicted after 0.5 s without samples (state checkpointed: False)", log, StringComparison.Ordinal);
        Assert.DoesNotContain("state checkpointed: True", log, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(state, "vib%2Fm1.state.tmp")), "a failed write leaves no temporary file");
    }

    [Fact]
    public async Task With_umask_000_the_state_folders_the_daemon_creates_are_0700_and_checkpoints_0600()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var existing = Path.Combine(temp.Path, "existing");
        Directory.CreateDirectory(existing);
        const UnixFileMode Open = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        File.SetUnixFileMode(existing, Open);
        var state = Path.Combine(existing, "edgerunner", "state");

        await using var scenario = await DaemonScenario.StartAsync("ckmode", ct);
        var config = WriteConfig(scenario, new JsonObject
        {
            ["press"] = TestConfig.SimulatedVibration(5),
        }, state);
        var probe = await scenario.ProbeAsync("sensors/press/result", ct);

        // As a unit with UMask=0000 (or a shell that set it) starts the daemon.
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "-c", "umask 000; exec dotnet \"$0\" --config \"$1\"", TestPaths.DaemonDll, config })
        {
            start.ArgumentList.Add(argument);
        }

        using var daemon = Process.Start(start)!;
        var output = daemon.StandardOutput.ReadToEndAsync(ct);
        var errors = daemon.StandardError.ReadToEndAsync(ct);
        try
        {
            await probe.WaitForAsync(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64() >= 1, Wait, ct);
            using (var kill = Process.Start("kill", ["-TERM", daemon.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(ct);
            }

            await daemon.WaitForExitAsync(ct).WaitAsync(Wait, ct);
        }
        finally
        {
            if (!daemon.HasExited)
            {
                daemon.Kill(entireProcessTree: true);
                await daemon.WaitForExitAsync(CancellationToken.None);
            }
        }

        Assert.True(daemon.ExitCode == 0, $"exit {daemon.ExitCode}\n{await output}\n{await errors}");
        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Assert.Equal(Private, File.GetUnixFileMode(Path.Combine(existing, "edgerunner")));
        Assert.Equal(Private, File.GetUnixFileMode(state));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(state, "press.state")));

        // A folder the daemon did not create keeps its mode.
        Assert.Equal(Open, File.GetUnixFileMode(existing));
    }

    [Fact]
    public async Task A_checkpoint_with_a_flipped_bit_is_reported_damaged_and_the_stream_starts_fresh()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var state = Path.Combine(temp.Path, "state");
        await using var scenario = await DaemonScenario.StartAsync("ckflip", ct);
        var config = WriteConfig(scenario, new JsonObject
        {
            ["press"] = TestConfig.SimulatedVibration(7),
        }, state);

        long firstRunSteps;
        await using (var probe = await scenario.ProbeAsync("sensors/press/result", ct))
        {
            using var host = await scenario.StartHostAsync(config, ct);
            await probe.WaitForAsync(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64() >= 2, Wait, ct);
            await host.StopAsync(ct);
            firstRunSteps = probe.Seen.Max(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("state_steps").GetInt64());
        }

        // One bit in the middle of the state tensors, as a failing flash cell would.
        var file = Path.Combine(state, "press.state");
        var bytes = await File.ReadAllBytesAsync(file, ct);
        bytes[bytes.Length / 2] ^= 0x10;
        await File.WriteAllBytesAsync(file, bytes, ct);
        using var model = LoadLstm();
        Assert.False(StreamCheckpoint.TryRead(file, model.Sha256, model.CreateState("press"), out _, out _, out var reason));
        Assert.Equal("damaged: its SHA-256 does not match its contents", reason);

        await using (var probe = await scenario.ProbeAsync("sensors/press/result", ct))
        {
            using var host = await scenario.StartHostAsync(config, ct);
            var first = await probe.WaitForAsync(_ => true, Wait, ct);
            await host.StopAsync(ct);

            // Not restored: the state starts at step 1 again rather than after the first run's steps.
            var result = JsonDocument.Parse(first.Payload).RootElement;
            Assert.True(firstRunSteps >= 3);
            Assert.Equal(0, result.GetProperty("seq").GetInt64());
            Assert.Equal(1, result.GetProperty("state_steps").GetInt64());
        }
    }

    [Fact]
    public void A_stream_id_too_long_or_unsafe_for_a_file_name_maps_to_a_stable_hashed_name_used_to_write_and_read()
    {
        using var temp = new TempFolder();
        var longId = "vib/" + new string('x', 300) + "/accel";
        var name = StreamCheckpoint.FileNameFor(longId);

        Assert.True(Encoding.UTF8.GetByteCount(name + ".tmp") <= 255, name);
        Assert.Equal(name, StreamCheckpoint.FileNameFor(longId)); // stable
        Assert.StartsWith("vib%2F%H", name, StringComparison.Ordinal); // still found by the retention of dynamic streams
        Assert.EndsWith(".state", name, StringComparison.Ordinal);
        Assert.NotEqual(name, StreamCheckpoint.FileNameFor(longId + "2"));
        Assert.Equal("vib%2Fm1.state", StreamCheckpoint.FileNameFor("vib/m1")); // short ids keep their readable names
        Assert.Equal("100%25.state", StreamCheckpoint.FileNameFor("100%"));
        Assert.Contains("%H", StreamCheckpoint.FileNameFor("vib/line\nbreak"), StringComparison.Ordinal);

        // Written and read back under the mapped name.
        var path = StreamCheckpoint.PathFor(temp.Path, longId);
        using var model = LoadLstm();
        var written = model.CreateState(longId);
        written.Steps = 42;
        written.Tensor(0).Fill(0.25f);
        StreamCheckpoint.Write(path, model.Sha256, written, sourceSamples: 2100);
        var read = model.CreateState(longId);
        Assert.True(StreamCheckpoint.TryRead(path, model.Sha256, read, out var position, out _, out var reason), reason);
        Assert.Equal(42, read.Steps);
        Assert.Equal(2100, position);
        Assert.All(read.Tensor(0).ToArray(), v => Assert.Equal(0.25f, v));

        // The escaped name it would have had cannot be written at all: the file system refuses it.
        var unmapped = Path.Combine(temp.Path, longId.Replace("/", "%2F", StringComparison.Ordinal) + ".state");
        var failure = Assert.ThrowsAny<IOException>(() => StreamCheckpoint.Write(unmapped, model.Sha256, written, sourceSamples: 0));
        Assert.NotNull(failure.Message);
        Assert.Equal([Path.GetFileName(path)], Directory.GetFiles(temp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Retention_finds_the_hashed_checkpoints_of_dynamic_streams()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var state = Path.Combine(temp.Path, "state");
        Directory.CreateDirectory(state);
        var old = Path.Combine(state, StreamCheckpoint.FileNameFor("vib/" + new string('m', 300)));
        var recent = Path.Combine(state, StreamCheckpoint.FileNameFor("vib/" + new string('r', 300)));
        File.WriteAllBytes(old, [1, 2, 3]);
        File.WriteAllBytes(recent, [1, 2, 3]);
        File.SetLastWriteTimeUtc(old, DateTime.UtcNow - TimeSpan.FromDays(40));

        await using var scenario = await DaemonScenario.StartAsync("ckprune", ct);
        var deviceId = scenario.DeviceId;
        var config = WriteConfig(scenario, new JsonObject
        {
            ["vib"] = new JsonObject
            {
                ["Model"] = "lstm",
                ["Source"] = new JsonObject { ["Kind"] = "Mqtt", ["Topic"] = $"plant-{deviceId}/+", ["Columns"] = new JsonArray("ax", "ay", "az") },
            },
        }, state);
        using (var host = await scenario.StartHostAsync(config, ct))
        {
            await host.StopAsync(ct);
        }

        Assert.False(File.Exists(old), "an old hashed checkpoint of a dynamic stream is pruned");
        Assert.True(File.Exists(recent));
    }

    private static SequenceModel LoadLstm() => SequenceProcessorFactory.LoadModel(
        EdgeRunner.Service.Catalog.ModelCatalog.Resolve("lstm", new EdgeRunner.Service.Configuration.ModelOptions { Manifest = BundledModels.ManifestPath("vibration-lstm") }),
        "test",
        Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);

    private static string WriteConfig(DaemonScenario scenario, JsonObject sensors, string stateDirectory) => scenario.WriteConfig(new JsonObject
    {
        ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
        ["Cameras"] = new JsonObject(),
        ["Sensors"] = sensors,
        ["State"] = new JsonObject { ["Directory"] = stateDirectory, ["CheckpointIntervalSeconds"] = 3600, ["DynamicStreamRetentionDays"] = 30 },
    });

    /// <summary>
    /// Publishes one chunk (50 samples of 3 axes) at a time until the stream's first result: a message
    /// sent before the daemon subscribed is lost, as for any subscriber, so the feed repeats until one lands.
    /// </summary>
    private static async Task FeedUntilResultAsync(MqttSender sender, MqttProbe probe, string topic, string deviceId, string stream, CancellationToken ct)
    {
        var resultTopic = $"edgerunner/{deviceId}/sensors/{stream}/result";
        var batch = "[" + string.Join(",", Enumerable.Range(0, 50).Select(i => string.Create(CultureInfo.InvariantCulture, $"{{\"ax\":{0.3 * Math.Sin(i / 3.0):0.####},\"ay\":0.1,\"az\":1}}"))) + "]";
        while (!probe.Seen.Any(m => m.Topic == resultTopic))
        {
            await sender.PublishAsync(topic, batch, ct);
            try
            {
                await probe.WaitForAsync(m => m.Topic == resultTopic, TimeSpan.FromSeconds(0.2), ct);
            }
            catch (TimeoutException)
            {
                // Not subscribed yet: send again.
            }
        }
    }
}
