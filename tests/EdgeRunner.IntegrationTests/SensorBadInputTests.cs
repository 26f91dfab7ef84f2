using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>Bad sensor input is counted and handled by policy; the stream and the daemon keep running.</summary>
public sealed class SensorBadInputTests
{
    [Fact]
    public async Task NaN_values_are_held_malformed_lines_skipped_and_a_timestamp_gap_resets_the_state()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("bad", ct);
        var csv = Path.Combine(scenario.Folder, "machine.csv");
        var text = new StringBuilder("t,ax,ay,az\n");
        var random = new Random(5);
        for (var i = 0; i < 2000; i++)
        {
            // 10 s at 200 Hz, then a 30 s hole in the recording, then 10 s more.
            var t = (i / 200.0) + (i >= 1000 ? 30 : 0);
            var value = i is 100 or 101 or 102 ? "NaN" : (0.05 * random.NextDouble()).ToString("0.0000", CultureInfo.InvariantCulture);
            text.Append(CultureInfo.InvariantCulture, $"{t:0.000},{value},0.01,1.0\n");
            if (i == 300)
            {
                text.Append("this line is not data\n");
            }
        }

        await File.WriteAllTextAsync(csv, text.ToString(), ct);
        var probe = await scenario.ProbeAsync("sensors/replay/result", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
                ["Sensors"] = new JsonObject
                {
                    ["replay"] = new JsonObject
                    {
                        ["Model"] = "lstm",
                        ["InvalidSamples"] = "Hold",
                        ["GapResetSeconds"] = 5,
                        ["Source"] = new JsonObject
                        {
                            ["Kind"] = "Csv", ["Path"] = csv, ["Columns"] = new JsonArray("ax", "ay", "az"),
                            ["TimestampColumn"] = "t", ["Speed"] = 0, ["Loop"] = false,
                        },
                    },
                },
            },
            ct);

        // 2000 good samples (one line skipped) = 40 steps of 50.
        var results = new List<JsonElement>();
        while (results.Count < 40)
        {
            var message = await probe.WaitForAsync(_ => true, TimeSpan.FromSeconds(60), ct);
            results.Add(JsonDocument.Parse(message.Payload).RootElement);
        }

        await host.StopAsync(ct);

        var last = results[^1];
        Assert.Equal(3, last.GetProperty("invalid_samples").GetInt64());
        Assert.Equal(1, last.GetProperty("state_resets").GetInt64());
        // The state restarted at the gap: 20 steps before it, 20 after.
        Assert.Equal(20, results[19].GetProperty("state_steps").GetInt64());
        Assert.Equal(1, results[20].GetProperty("state_steps").GetInt64());
        Assert.Equal(20, last.GetProperty("state_steps").GetInt64());
        Assert.Equal(39, last.GetProperty("seq").GetInt64());
        Assert.All(results, r => Assert.Equal(1.0, r.GetProperty("probabilities").EnumerateObject().Sum(p => p.Value.GetDouble()), 3));

        // The window clock jumps with the samples: step 20 starts 30 s after step 19 ended, where its samples are.
        static DateTimeOffset At(JsonElement r, string edge) => r.GetProperty("window").GetProperty(edge).GetDateTimeOffset();
        Assert.Equal(30.0, (At(results[20], "start") - At(results[19], "end")).TotalSeconds, 2);
        Assert.Equal(0.25, (At(results[21], "start") - At(results[20], "start")).TotalSeconds, 6);
    }

    [Fact]
    public async Task A_non_finite_model_output_resets_the_stream_which_goes_on()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        // log(x): NaN for the negative samples of the first chunk, finite afterwards.
        var (_, manifest) = await TestManifests.WriteModelAsync(
            temp.Path,
            "log",
            OnnxProto.WriteModel(
                8,
                [(string.Empty, 17)],
                [new OnnxNode("Log", string.Empty, ["x"], ["y"], [])],
                [],
                [("x", OnnxTensor.Float, ["batch", 1, 4])],
                [("y", OnnxTensor.Float, ["batch", 1, 4])]),
            new JsonObject
            {
                ["task"] = "sequence_reconstruction",
                ["state"] = new JsonArray(),
                ["stream"] = new JsonObject { ["input"] = "x", ["sample_rate_hz"] = 100, ["channels"] = new JsonArray("v"), ["chunk_samples"] = 4 },
                ["postprocess"] = new JsonObject { ["kind"] = "sequence_reconstruction", ["output"] = "y" },
            },
            ct);
        var csv = Path.Combine(temp.Path, "values.csv");
        await File.WriteAllLinesAsync(csv, ["v", "-1", "-2", "-3", "-4", .. Enumerable.Range(1, 8).Select(i => (i * 0.5).ToString(CultureInfo.InvariantCulture))], ct);

        await using var scenario = await DaemonScenario.StartAsync("nan", ct);
        var probe = await scenario.ProbeAsync("sensors/probe/#", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["log"] = new JsonObject { ["Manifest"] = manifest } },
                ["Sensors"] = new JsonObject { ["probe"] = new JsonObject { ["Model"] = "log", ["Source"] = TestConfig.CsvReplay(csv, 100, "v") } },
            },
            ct);
        await probe.WaitForAsync(m => m.Topic.EndsWith("/state", StringComparison.Ordinal) && m.Payload.Contains("\"ended\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
        await host.StopAsync(ct);

        // The NaN chunk published nothing; the two finite chunks after it did, with the reset counted.
        var results = probe.Seen.Where(m => m.Topic.EndsWith("/result", StringComparison.Ordinal)).Select(m => JsonDocument.Parse(m.Payload).RootElement).ToList();
        Assert.Equal([0L, 1L], results.Select(r => r.GetProperty("seq").GetInt64()));
        Assert.All(results, r => Assert.Equal(1, r.GetProperty("non_finite_outputs").GetInt64()));
        Assert.All(results, r => Assert.Equal(1, r.GetProperty("state_resets").GetInt64()));
        // Their windows are where their samples are: after the 4 samples of the dropped chunk (0.04 s at 100 Hz).
        var first = results[0].GetProperty("window");
        Assert.Equal(0.04, (first.GetProperty("end").GetDateTimeOffset() - first.GetProperty("start").GetDateTimeOffset()).TotalSeconds, 6);
    }

    /// <summary>Runs a 200 Hz CSV (no timestamps) through the daemon as fast as it steps; returns the results in order.</summary>
    private static async Task<List<JsonElement>> ReplayAsync(IEnumerable<string> rows, JsonObject streamSettings, int results, CancellationToken ct)
    {
        await using var scenario = await DaemonScenario.StartAsync("policy", ct);
        var csv = Path.Combine(scenario.Folder, "machine.csv");
        await File.WriteAllLinesAsync(csv, ["ax,ay,az", .. rows], ct);
        streamSettings["Model"] = "lstm";
        streamSettings["GapResetSeconds"] = 0;
        streamSettings["Source"] = TestConfig.CsvReplay(csv, 200, "ax", "ay", "az");
        var probe = await scenario.ProbeAsync("sensors/m/result", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
                ["Sensors"] = new JsonObject { ["m"] = streamSettings },
            },
            ct);
        var list = new List<JsonElement>();
        while (list.Count < results)
        {
            list.Add(JsonDocument.Parse((await probe.WaitForAsync(_ => true, TimeSpan.FromSeconds(60), ct)).Payload).RootElement);
        }

        await host.StopAsync(ct);
        return list;
    }

    private static string[] Rows(int count, int seed) =>
        [.. Enumerable.Range(0, count).Select(i => FormattableString.Invariant($"{0.05 * Math.Sin((i + seed) * 0.7):0.00000},{0.03 * Math.Cos((i + seed) * 1.3):0.00000},1.0"))];

    private static double[] Probabilities(JsonElement result) => [.. result.GetProperty("probabilities").EnumerateObject().Select(p => p.Value.GetDouble())];

    [Fact]
    public async Task The_reset_policy_starts_afresh_at_the_sample_after_an_out_of_range_one()
    {
        var ct = TestContext.Current.CancellationToken;
        var rows = Rows(300, 0);
        rows[75] = "99,0,1"; // above MaxValue
        var reset = await ReplayAsync(rows, new JsonObject { ["InvalidSamples"] = "Reset", ["MaxValue"] = 10 }, 3, ct);
        // A fresh stream given only the samples after the bad one.
        var fresh = await ReplayAsync(rows[76..], new JsonObject(), 2, ct);

        Assert.Equal(1, reset[1].GetProperty("invalid_samples").GetInt64());
        Assert.Equal(1, reset[1].GetProperty("state_resets").GetInt64());
        Assert.Equal(1, reset[1].GetProperty("state_steps").GetInt64());
        for (var k = 0; k < 2; k++)
        {
            var difference = Probabilities(reset[1 + k]).Zip(Probabilities(fresh[k]), (a, b) => Math.Abs(a - b)).Max();
            Assert.True(difference <= 1e-5, $"step {k} after the reset: max |Δ| {difference}");
        }

        // Its window starts at sample 76: 0.38 s after the stream's first sample.
        var start0 = reset[0].GetProperty("window").GetProperty("start").GetDateTimeOffset();
        Assert.Equal(0.38, (reset[1].GetProperty("window").GetProperty("start").GetDateTimeOffset() - start0).TotalSeconds, 6);
    }

    [Fact]
    public async Task The_drop_policy_skips_bad_samples_and_the_windows_stay_on_the_sample_clock()
    {
        var ct = TestContext.Current.CancellationToken;
        var rows = Rows(300, 5);
        rows[20] = "NaN,0,1";
        rows[21] = "0,-50,1"; // below MinValue
        var dropped = await ReplayAsync(rows, new JsonObject { ["InvalidSamples"] = "Drop", ["MinValue"] = -10 }, 3, ct);
        var clean = await ReplayAsync([.. rows[..20], .. rows[22..]], new JsonObject(), 3, ct);

        Assert.Equal(2, dropped[2].GetProperty("invalid_samples").GetInt64());
        Assert.Equal(0, dropped[2].GetProperty("state_resets").GetInt64());
        for (var k = 0; k < 3; k++)
        {
            var difference = Probabilities(dropped[k]).Zip(Probabilities(clean[k]), (a, b) => Math.Abs(a - b)).Max();
            Assert.True(difference <= 1e-5, $"step {k}: max |Δ| {difference}");
        }

        // The second window's samples begin 2 samples (0.01 s) later than 50 samples after the first's.
        static DateTimeOffset Start(JsonElement r) => r.GetProperty("window").GetProperty("start").GetDateTimeOffset();
        Assert.Equal(0.26, (Start(dropped[1]) - Start(dropped[0])).TotalSeconds, 6);
    }
}
