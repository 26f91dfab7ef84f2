using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// A CSV replayed with a timestamp column keeps the recording's time: its blocks, and the windows of the
/// results published from them, are stamped with the file's own timestamps (<c>window.clock</c>
/// <c>recording</c>), the daemon's clock going into <c>replayed_at</c>; <c>RecordingTime</c> false stamps
/// them with the replay's clock as before.
/// </summary>
public sealed class ReplayTimeTests
{
    private static readonly DateTimeOffset RecordingStart = new(2021, 3, 4, 5, 6, 7, TimeSpan.Zero);

    private static async Task<string> WriteRecordingAsync(string folder, int samples, CancellationToken ct)
    {
        // 100 Hz, ISO 8601 timestamps from RecordingStart.
        var path = Path.Combine(folder, "recording.csv");
        await File.WriteAllLinesAsync(
            path,
            ["time,v", .. Enumerable.Range(0, samples).Select(i => $"{(RecordingStart + TimeSpan.FromMilliseconds(10 * i)).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)},{i}")],
            ct);
        return path;
    }

    [Fact]
    public async Task Blocks_carry_the_recordings_time_unless_told_to_use_the_replay_clock()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var path = await WriteRecordingAsync(temp.Path, 20, ct);
        var now = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var block = new float[8];

        await using (var recording = new CsvSensorSource(new CsvSourceOptions { Path = path, Columns = ["v"], TimestampColumn = "time", Speed = 0 }, now, NullLogger.Instance))
        {
            Assert.True(recording.StampsRecordingTime);
            Assert.Equal(RecordingStart, (await recording.ReadAsync(block, ct)).FirstSampleTime);
            Assert.Equal(RecordingStart + TimeSpan.FromMilliseconds(80), (await recording.ReadAsync(block, ct)).FirstSampleTime);
        }

        // A loop goes on past the recording's last time, one period after its last sample.
        await using (var looping = new CsvSensorSource(new CsvSourceOptions { Path = path, Columns = ["v"], TimestampColumn = "time", Speed = 0, Loop = true }, now, NullLogger.Instance))
        {
            var twoPasses = new float[40];
            Assert.Equal(RecordingStart, (await looping.ReadAsync(twoPasses.AsMemory(0, 20), ct)).FirstSampleTime);
            Assert.Equal(RecordingStart + TimeSpan.FromMilliseconds(200), (await looping.ReadAsync(twoPasses.AsMemory(20, 8), ct)).FirstSampleTime);
        }

        await using var replayClock = new CsvSensorSource(new CsvSourceOptions { Path = path, Columns = ["v"], TimestampColumn = "time", Speed = 0, RecordingTime = false }, now, NullLogger.Instance);
        Assert.False(replayClock.StampsRecordingTime);
        // The replay's clock counts in doubles of seconds: equal to the microsecond.
        Assert.Equal(0, ((await replayClock.ReadAsync(block, ct)).FirstSampleTime - now.GetUtcNow()).TotalMilliseconds, 3);
        Assert.Equal(80, ((await replayClock.ReadAsync(block, ct)).FirstSampleTime - now.GetUtcNow()).TotalMilliseconds, 3);
    }

    [Fact]
    public async Task Results_of_a_replay_have_the_recordings_window_times_and_say_so()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        const int Samples = 4;
        var csv = await WriteRecordingAsync(temp.Path, 3 * Samples, ct);
        var (_, manifest) = await TestManifests.WriteModelAsync(
            temp.Path,
            "half",
            OnnxProto.WriteModel(
                8,
                [(string.Empty, 17)],
                [new OnnxNode("Mul", string.Empty, ["x", "half"], ["y"], [])],
                [new OnnxTensor("half", OnnxTensor.Float, [], [0.5f], [])],
                [("x", OnnxTensor.Float, ["batch", 1, Samples])],
                [("y", OnnxTensor.Float, ["batch", 1, Samples])]),
            new JsonObject
            {
                ["task"] = "sequence_reconstruction",
                ["state"] = new JsonArray(),
                ["stream"] = new JsonObject { ["input"] = "x", ["sample_rate_hz"] = 100, ["channels"] = new JsonArray("v"), ["chunk_samples"] = Samples },
                ["postprocess"] = new JsonObject { ["kind"] = "sequence_reconstruction", ["output"] = "y" },
            },
            ct);

        await using var scenario = await DaemonScenario.StartAsync("replaytime", ct);
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        var before = DateTimeOffset.UtcNow;
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["m"] = new JsonObject { ["Manifest"] = manifest } },
                ["Sensors"] = new JsonObject
                {
                    ["rec"] = new JsonObject
                    {
                        ["Model"] = "m",
                        ["Source"] = new JsonObject { ["Kind"] = "Csv", ["Path"] = csv, ["Columns"] = new JsonArray("v"), ["TimestampColumn"] = "time", ["Speed"] = 0, ["Loop"] = false },
                    },
                },
            },
            ct);
        await probe.WaitForAsync(m => m.Topic.EndsWith("rec/state", StringComparison.Ordinal) && m.Payload.Contains("\"ended\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
        await host.StopAsync(ct);

        var results = probe.Seen.Where(m => m.Topic.EndsWith("rec/result", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, results.Count);
        for (var step = 0; step < results.Count; step++)
        {
            Assert.Empty(SchemaValidator.Errors("sensor.result", results[step].Payload));
            var result = JsonDocument.Parse(results[step].Payload).RootElement;
            var window = result.GetProperty("window");

            // The window is the recording's: its first sample's timestamp in the CSV, to its last + one period.
            Assert.Equal(RecordingStart + TimeSpan.FromMilliseconds(10 * Samples * step), window.GetProperty("start").GetDateTimeOffset());
            Assert.Equal(RecordingStart + TimeSpan.FromMilliseconds(10 * Samples * (step + 1)), window.GetProperty("end").GetDateTimeOffset());
            Assert.Equal("recording", window.GetProperty("clock").GetString());

            // The daemon's own clock is kept apart, as replayed_at.
            Assert.True(result.GetProperty("replayed_at").GetDateTimeOffset() >= before.AddSeconds(-1), results[step].Payload);
        }
    }
}
