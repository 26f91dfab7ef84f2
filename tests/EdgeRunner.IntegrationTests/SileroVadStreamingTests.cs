using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// A real streaming model with no state pairs in its manifest: silero-vad (../shared/models/silero-vad)
/// over ../shared/audio/speech_noisy_16k.wav, run by the daemon — 512-sample chunks after 64 samples
/// of context carried from the previous chunk, the LSTM state inferred (state → stateN) and carried,
/// the int64 sample rate fed as a constant. The figures published in ../shared/README.md must come
/// out: 305 chunks, the first above 0.5 is chunk 18, 261 above 0.5. Two copies of the stream are
/// batched together and both match.
/// </summary>
public sealed class SileroVadStreamingTests
{
    /// <summary>From ../shared/README.md.</summary>
    private const string SileroSha256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";

    /// <summary>The samples of a 16-bit PCM mono WAV file as floats in [-1, 1).</summary>
    internal static float[] ReadPcm16Wav(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal("RIFF", System.Text.Encoding.ASCII.GetString(bytes, 0, 4));
        var offset = 12;
        int channels = 0, bits = 0;
        while (offset + 8 <= bytes.Length)
        {
            var id = System.Text.Encoding.ASCII.GetString(bytes, offset, 4);
            var size = BitConverter.ToInt32(bytes, offset + 4);
            if (id == "fmt ")
            {
                channels = BitConverter.ToInt16(bytes, offset + 10);
                bits = BitConverter.ToInt16(bytes, offset + 22);
            }
            else if (id == "data")
            {
                Assert.Equal((1, 16), (channels, bits));
                var samples = new float[size / 2];
                for (var i = 0; i < samples.Length; i++)
                {
                    samples[i] = BitConverter.ToInt16(bytes, offset + 8 + (2 * i)) / 32768f;
                }

                return samples;
            }

            offset += 8 + size + (size & 1);
        }

        throw new InvalidDataException($"{path}: no data chunk");
    }

    /// <summary>A manifest for the shared model, written where the test can (the model stays in ../shared).</summary>
    internal static string WriteManifest(string folder, double threshold = 0.5, double clearThreshold = 0.35)
    {
        return TestManifests.Write(folder, "silero-vad", TestPaths.SharedFile("models/silero-vad/model.onnx"), SileroSha256, new JsonObject
        {
            ["task"] = "sequence_score",
            // No "state": the runner infers state → stateN (batch axis 1).
            ["constant_inputs"] = new JsonObject { ["sr"] = 16000 },
            ["stream"] = new JsonObject
            {
                ["input"] = "input",
                ["sample_rate_hz"] = 16000,
                ["channels"] = new JsonArray("audio"),
                ["units"] = "full scale",
                ["chunk_samples"] = 512,
                ["context_samples"] = 64,
            },
            ["labels"] = new JsonArray("speech"),
            ["postprocess"] = new JsonObject
            {
                ["kind"] = "sequence_score",
                ["output"] = "output",
                ["threshold"] = threshold,
                ["clear_threshold"] = clearThreshold,
            },
        });
    }

    [Theory]
    [InlineData("Audio")]
    [InlineData("Csv")]
    public async Task Silero_vad_over_the_noisy_speech_file_reproduces_the_published_figures_for_two_batched_streams(string sourceKind)
    {
        var ct = TestContext.Current.CancellationToken;
        var wav = TestPaths.SharedFile("audio/speech_noisy_16k.wav");
        var samples = ReadPcm16Wav(wav);
        using var temp = new TempFolder();
        var manifest = WriteManifest(temp.Path);

        // Audio: the WAV decoded by ffmpeg (16-bit PCM / 32768, at the model's rate). Csv: the same
        // samples as a one-column recording at 16 kHz (exact float round trip). Both as fast as the model steps.
        JsonObject source;
        if (sourceKind == "Audio")
        {
            source = new JsonObject { ["Kind"] = "Audio", ["Path"] = wav, ["Speed"] = 0, ["Loop"] = false };
        }
        else
        {
            var csv = Path.Combine(temp.Path, "speech.csv");
            await File.WriteAllLinesAsync(csv, ["audio", .. samples.Select(s => s.ToString("R", CultureInfo.InvariantCulture))], ct);
            source = TestConfig.CsvReplay(csv, 16000, "audio");
        }

        JsonObject Stream() => new()
        {
            ["Model"] = "vad",
            ["GapResetSeconds"] = 0,
            ["Source"] = source.DeepClone(),
        };

        await using var scenario = await DaemonScenario.StartAsync("vad", ct);
        var results = await scenario.ProbeAsync("sensors/+/result", ct);
        var events = await scenario.ProbeAsync("sensors/+/event", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["vad"] = new JsonObject { ["Manifest"] = manifest, ["BatchWaitMilliseconds"] = 20 } },
                ["Sensors"] = new JsonObject { ["mic-a"] = Stream(), ["mic-b"] = Stream() },
            },
            ct);
        var service = host.Services.GetRequiredService<SensorService>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (service.Streams.Any(s => s.Steps < 305) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, ct);
        }

        var batcher = Assert.Single(service.Batchers);
        var (runs, steps) = (batcher.Runs, batcher.Steps);
        await results.WaitForAsync(_ => results.Seen.Count >= 610, TimeSpan.FromSeconds(30), ct);
        await host.StopAsync(ct);

        var byStream = results.Seen
            .Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .GroupBy(r => r.GetProperty("stream").GetString()!)
            .ToDictionary(g => g.Key, g => g.GroupBy(r => r.GetProperty("seq").GetInt64()).OrderBy(s => s.Key).Select(s => s.First()).ToList());
        Assert.Equal(["mic-a", "mic-b"], byStream.Keys.Order());
        foreach (var (stream, list) in byStream)
        {
            var scores = list.Select(r => r.GetProperty("score").GetDouble()).ToArray();
            Assert.Equal(305, scores.Length);
            Assert.Equal(Enumerable.Range(0, 305).Select(i => (long)i), list.Select(r => r.GetProperty("seq").GetInt64()));
            Assert.Equal("sequence_score", list[0].GetProperty("task").GetString());
            Assert.Equal(18, Array.FindIndex(scores, s => s > 0.5));
            Assert.Equal(261, scores.Count(s => s > 0.5));

            // Speech starts are raised at chunk 18 (threshold 0.5) and end below 0.35 (hysteresis).
            var streamEvents = events.Seen.Select(m => JsonDocument.Parse(m.Payload).RootElement).Where(e => e.GetProperty("stream").GetString() == stream).ToList();
            Assert.NotEmpty(streamEvents);
            Assert.Equal("raised", streamEvents[0].GetProperty("event").GetString());
            Assert.Equal(18, streamEvents[0].GetProperty("seq").GetInt64());
            Assert.Equal(
                streamEvents.Select((e, i) => i % 2 == 0 ? "raised" : "cleared"),
                streamEvents.Select(e => e.GetProperty("event").GetString()));
        }

        // Both copies saw the same audio: identical scores, though they ran in shared batches.
        var a = byStream["mic-a"].Select(r => r.GetProperty("score").GetDouble()).ToArray();
        var b = byStream["mic-b"].Select(r => r.GetProperty("score").GetDouble()).ToArray();
        Assert.True(a.Zip(b, (x, y) => Math.Abs(x - y)).Max() <= 1e-5, "the two streams differ");
        Assert.True(steps >= 610 && runs < steps, $"{steps} stream steps in {runs} runs: nothing was batched");
    }

    [Fact]
    public void Silero_steps_with_a_constant_input_and_inferred_state_allocate_nothing()
    {
        using var model = SequenceModel.Load(
            new SequenceModelOptions
            {
                Id = "silero-vad",
                Path = TestPaths.SharedFile("models/silero-vad/model.onnx"),
                StreamInput = "input",
                ResultOutput = "output",
                ValuesPerStep = 576,
                ConstantInputs = new Dictionary<string, double[]> { ["sr"] = [16000] },
            },
            NullLogger.Instance);
        Assert.Equal(("state", "stateN", 1), (model.StatePairs.Single().Input, model.StatePairs.Single().Output, model.StatePairs.Single().BatchAxis));
        Assert.Equal([576L], model.ChunkShape);
        var states = new[] { model.CreateState("a"), model.CreateState("b") };
        var chunks = new float[2 * 576];
        var results = new float[2];
        AllocationAssert.SteadyStateIsZero(() => model.Step(states[0], chunks.AsSpan(0, 576), results.AsSpan(0, 1)));
        AllocationAssert.SteadyStateIsZero(() => model.StepBatch(states, chunks, results));
    }
}

/// <summary>Manifest and constant-input mistakes on a real streaming model are refused at load, named.</summary>
public sealed class SequenceManifestValidationTests
{
    [Fact]
    public void A_clear_threshold_above_the_threshold_stops_startup_naming_the_manifest()
    {
        using var temp = new TempFolder();
        var manifest = SileroVadStreamingTests.WriteManifest(temp.Path, threshold: 0.3, clearThreshold: 0.5);
        var error = Assert.Throws<EdgeRunner.Service.StartupException>(() =>
            EdgeRunner.Service.Catalog.ModelCatalog.Resolve("vad", new EdgeRunner.Service.Configuration.ModelOptions { Manifest = manifest }));
        Assert.StartsWith("Models:vad:Manifest:", error.Message, StringComparison.Ordinal);
        Assert.Contains("clear_threshold (0.5) must not be above postprocess.threshold (0.3)", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(16000.5)]
    [InlineData(1e30)]
    public void An_integer_constant_input_that_is_not_a_whole_number_in_range_is_refused(double sampleRate)
    {
        var error = Assert.Throws<EdgeRunner.Models.Inference.ModelLoadException>(() => SequenceModel.Load(
            new SequenceModelOptions
            {
                Id = "silero-vad",
                Path = TestPaths.SharedFile("models/silero-vad/model.onnx"),
                StreamInput = "input",
                ResultOutput = "output",
                ValuesPerStep = 576,
                ConstantInputs = new Dictionary<string, double[]> { ["sr"] = [sampleRate] },
            },
            NullLogger.Instance));
        Assert.Contains("constant input 'sr' is Int64", error.Message, StringComparison.Ordinal);
        Assert.Contains("not a whole number", error.Message, StringComparison.Ordinal);
    }
}
