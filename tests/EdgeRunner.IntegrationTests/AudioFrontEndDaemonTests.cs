using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Publishing;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// A sequence model whose manifest declares an audio front end, run by the daemon on a WAV file through
/// the audio source (ffmpeg decoding): the model, written by the test, takes one log-mel frame
/// <c>[batch, 40]</c> and outputs its mean, so each published score must be the mean of the reference
/// frame computed by Fixtures/audio_frontend_reference.py for the same samples. A front end that does
/// not fit stops the real daemon with exit 78 naming the manifest key.
/// </summary>
public sealed class AudioFrontEndDaemonTests
{
    private const int ExConfig = 78;

    /// <summary>16-bit mono PCM WAV of <paramref name="samples"/> (floats that are exact 16-bit values / 32768).</summary>
    internal static void WriteWav(string path, float[] samples, int rate)
    {
        using var writer = new BinaryWriter(File.Create(path));
        writer.Write("RIFF"u8);
        writer.Write(36 + (2 * samples.Length));
        writer.Write("WAVEfmt "u8);
        writer.Write(16);
        writer.Write((short)1);
        writer.Write((short)1);
        writer.Write(rate);
        writer.Write(rate * 2);
        writer.Write((short)2);
        writer.Write((short)16);
        writer.Write("data"u8);
        writer.Write(2 * samples.Length);
        foreach (var s in samples)
        {
            writer.Write((short)Math.Round(s * 32768));
        }
    }

    /// <summary>A model taking <c>[batch, features]</c> and giving <c>[batch, 1]</c>, their mean (a MatMul by 1/features).</summary>
    private static byte[] MeanModel(int features) => OnnxProto.WriteModel(
        8,
        [(string.Empty, 17)],
        [new OnnxNode("MatMul", string.Empty, ["features", "average"], ["mean"], [])],
        [new OnnxTensor("average", OnnxTensor.Float, [features, 1], [.. Enumerable.Repeat(1f / features, features)], [])],
        [("features", OnnxTensor.Float, ["batch", features])],
        [("mean", OnnxTensor.Float, ["batch", 1])]);

    private static JsonObject Manifest(JsonNode frontend) => new()
    {
        ["task"] = "sequence_score",
        ["stream"] = new JsonObject
        {
            ["input"] = "features",
            ["sample_rate_hz"] = 16000,
            ["channels"] = new JsonArray("audio"),
            ["units"] = "full scale",
            ["chunk_samples"] = 160,
            ["frontend"] = frontend,
        },
        ["labels"] = new JsonArray("mean"),
        ["postprocess"] = new JsonObject { ["kind"] = "sequence_score", ["output"] = "mean" },
    };

    private static JsonNode Config(string name) => JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "audio-frontend-reference.json")))!["configs"]![name]!.DeepClone();

    [Fact]
    public async Task The_daemon_feeds_log_mel_frames_of_a_wav_file_to_the_model_matching_the_reference()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var signal = AudioFrontEndTests.Synthetic();
        var wav = Path.Combine(temp.Path, "tones.wav");
        WriteWav(wav, signal, 16000);
        var (_, manifest) = await TestManifests.WriteModelAsync(temp.Path, "mel-mean", MeanModel(40), Manifest(Config("log_mel_htk")), ct);
        var expected = AudioFrontEndTests.Expected("synthetic/log_mel_htk").Select(f => f.Average(v => (double)v)).ToArray();
        Assert.Equal(8, expected.Length);

        await using var scenario = await DaemonScenario.StartAsync("audiofe", ct);
        var results = await scenario.ProbeAsync("sensors/+/result", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["mel-mean"] = new JsonObject { ["Manifest"] = manifest } },
                ["Sensors"] = new JsonObject
                {
                    ["mic"] = new JsonObject
                    {
                        ["Model"] = "mel-mean",
                        ["GapResetSeconds"] = 0,
                        ["Source"] = new JsonObject { ["Kind"] = "Audio", ["Path"] = wav, ["Speed"] = 0, ["Loop"] = false },
                    },
                },
            },
            ct);
        await results.WaitForAsync(_ => results.Seen.Count >= expected.Length, TimeSpan.FromSeconds(60), ct);
        var stream = Assert.Single(host.Services.GetRequiredService<SensorService>().Streams);
        await host.StopAsync(ct);

        var scores = results.Seen
            .Select(m => JsonDocument.Parse(m.Payload).RootElement)
            .OrderBy(r => r.GetProperty("seq").GetInt64())
            .Select(r => r.GetProperty("score").GetDouble())
            .ToArray();
        Assert.Equal(expected.Length, scores.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            // The tolerance of the log-mel values, plus the payload's rounding to 5 decimals.
            Assert.True(Math.Abs(scores[i] - expected[i]) <= AudioFrontEndTests.LogTolerance + 5e-6, $"step {i}: score {scores[i]} vs the reference frame's mean {expected[i]}");
        }

        Assert.Equal(expected.Length, stream.Steps);
    }

    /// <summary>A model passing <c>[batch, values]</c> through unchanged (a stand-in for a speech enhancer returning STFT frames).</summary>
    private static byte[] IdentityModel(int values) => OnnxProto.WriteModel(
        8,
        [(string.Empty, 17)],
        [new OnnxNode("Identity", string.Empty, ["features"], ["frames"], [])],
        [],
        [("features", OnnxTensor.Float, ["batch", values])],
        [("frames", OnnxTensor.Float, ["batch", values])]);

    private static JsonObject StftManifest(JsonNode frontend)
    {
        var manifest = Manifest(frontend);
        manifest["task"] = "sequence_reconstruction";
        manifest.Remove("labels");
        manifest["postprocess"] = new JsonObject { ["kind"] = "sequence_reconstruction", ["output"] = "frames", ["publish_output"] = true };
        return manifest;
    }

    [Fact]
    public async Task A_model_returning_stft_frames_publishes_them_as_its_output_array()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var wav = Path.Combine(temp.Path, "tones.wav");
        WriteWav(wav, AudioFrontEndTests.Synthetic(), 16000);
        var spec = AudioFrontEndTests.Spec("stft");
        var (_, manifest) = await TestManifests.WriteModelAsync(temp.Path, "enhancer", IdentityModel(spec.FeaturesPerFrame), StftManifest(Config("stft")), ct);
        var expected = AudioFrontEndTests.Expected("synthetic/stft");

        await using var scenario = await DaemonScenario.StartAsync("audiofe", ct);
        var results = await scenario.ProbeAsync("sensors/+/result", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["enhancer"] = new JsonObject { ["Manifest"] = manifest } },
                ["Sensors"] = new JsonObject
                {
                    ["mic"] = new JsonObject
                    {
                        ["Model"] = "enhancer",
                        ["GapResetSeconds"] = 0,
                        ["Source"] = new JsonObject { ["Kind"] = "Audio", ["Path"] = wav, ["Speed"] = 0, ["Loop"] = false },
                    },
                },
            },
            ct);
        await results.WaitForAsync(_ => results.Seen.Count >= expected.Length, TimeSpan.FromSeconds(60), ct);
        await host.StopAsync(ct);

        var payloads = results.Seen.OrderBy(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(expected.Length, payloads.Count);
        for (var t = 0; t < expected.Length; t++)
        {
            Assert.Empty(SchemaValidator.Errors("sensor.result", payloads[t].Payload));
            var root = JsonDocument.Parse(payloads[t].Payload).RootElement;
            var output = root.GetProperty("output").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            Assert.Equal(spec.FeaturesPerFrame, output.Length);
            var scale = expected[t].Select(Math.Abs).Max();
            for (var i = 0; i < output.Length; i++)
            {
                // The STFT tolerance of AudioFrontEndTests: the floats are published in their round-trip form.
                Assert.True(Math.Abs(output[i] - expected[t][i]) <= AudioFrontEndTests.StftTolerance(scale, expected[t][i]), $"frame {t} value {i}: {output[i]} vs reference {expected[t][i]}");
            }

            // Identity: nothing was lost between the features and the output.
            Assert.Equal(0, root.GetProperty("score").GetDouble());
        }
    }

    [Fact]
    public async Task An_output_too_large_to_publish_stops_the_daemon_naming_the_key()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var frontend = Config("stft");
        frontend["frame_length"] = 8192;
        frontend["fft_size"] = 8192;
        var values = 2 * ((8192 / 2) + 1);
        var (_, manifest) = await TestManifests.WriteModelAsync(temp.Path, "enhancer", IdentityModel(values), StftManifest(frontend), ct);
        var stderr = await RunDaemonAsync(temp, "enhancer", manifest, ct);
        Assert.Contains($"Models:enhancer:Manifest: postprocess.publish_output: output 'frames' has {values} values per step; at most 4096 can be published", stderr, StringComparison.Ordinal);
    }

    /// <summary>Runs the real daemon with one audio stream on model <paramref name="id"/>; returns its stderr after it exits with 78.</summary>
    private static async Task<string> RunDaemonAsync(TempFolder temp, string id, string manifest, CancellationToken ct)
    {
        var wav = Path.Combine(temp.Path, "tones.wav");
        WriteWav(wav, AudioFrontEndTests.Synthetic(), 16000);
        var config = Path.Combine(temp.Path, "config.json");
        await File.WriteAllTextAsync(
            config,
            new JsonObject
            {
                ["Device"] = new JsonObject { ["Id"] = "audiofe" },
                ["Mqtt"] = new JsonObject { ["Host"] = "127.0.0.1", ["Port"] = FreePort.Next() },
                ["Models"] = new JsonObject { [id] = new JsonObject { ["Manifest"] = manifest } },
                ["Sensors"] = new JsonObject
                {
                    ["mic"] = new JsonObject
                    {
                        ["Model"] = id,
                        ["Source"] = new JsonObject { ["Kind"] = "Audio", ["Path"] = wav },
                    },
                },
            }.ToJsonString(),
            ct);
        await using var daemon = DaemonProcess.Start(["--config", config]);
        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60), ct));
        return daemon.Stderr;
    }

    [Fact]
    public async Task A_front_end_step_and_its_result_json_with_the_output_array_allocate_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var spec = AudioFrontEndTests.Spec("stft");
        var (_, path) = await TestManifests.WriteModelAsync(temp.Path, "enhancer", IdentityModel(spec.FeaturesPerFrame), StftManifest(Config("stft")), ct);
        var manifest = ModelManifest.Load(path);
        using var model = SequenceModel.Load(
            new SequenceModelOptions
            {
                Id = manifest.Id,
                Path = manifest.ModelPath,
                StreamInput = "features",
                ResultOutput = "frames",
                ValuesPerStep = EdgeRunner.Models.Audio.AudioFrontEndSpec.ValuesPerStep(manifest.Stream!),
            },
            NullLogger.Instance);
        var processor = new SequenceStreamProcessor("mic", model, new object(), manifest.Stream!, manifest.Labels, output: SequenceOutputSpec.From(ModelTask.SequenceReconstruction, manifest.Postprocess));
        using var writer = new SensorResultWriter(PayloadOrigin.NewBoot("test-device"), "mic", manifest.Id, model.Sha256, processor.Labels, processor.Task, publishOutput: true);
        var chunk = AudioFrontEndTests.Synthetic().AsSpan(0, 160).ToArray();
        var start = DateTimeOffset.UnixEpoch;
        var bytes = 0;

        AllocationAssert.SteadyStateIsZero(() =>
        {
            var latency = processor.Step(chunk);
            bytes = writer.Write(processor.State.Steps, start, start.AddSeconds(0.01), 160, processor, latency).Length;
        });
        Assert.Equal(spec.FeaturesPerFrame, processor.Result.Length);
        Assert.True(bytes > spec.FeaturesPerFrame * 2, $"{bytes} bytes of JSON for {spec.FeaturesPerFrame} output values");
    }

    [Fact]
    public async Task The_carried_overlap_is_part_of_the_streams_state_reset_and_restored_with_it()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var (_, path) = await TestManifests.WriteModelAsync(temp.Path, "mel-mean", MeanModel(40), Manifest(Config("log_mel_htk")), ct);
        var manifest = ModelManifest.Load(path);
        using var model = SequenceModel.Load(
            new SequenceModelOptions { Id = manifest.Id, Path = manifest.ModelPath, StreamInput = "features", ResultOutput = "mean", ValuesPerStep = 40 },
            NullLogger.Instance);
        SequenceStreamProcessor Processor() => new("mic", model, new object(), manifest.Stream!, manifest.Labels, output: SequenceOutputSpec.From(ModelTask.SequenceScore, manifest.Postprocess));
        var signal = AudioFrontEndTests.Synthetic();
        var expected = AudioFrontEndTests.Expected("synthetic/log_mel_htk").Select(f => f.Average(v => (double)v)).ToArray();
        double[] Run(SequenceStreamProcessor processor, int fromStep) =>
            [.. Enumerable.Range(fromStep, expected.Length - fromStep).Select(t =>
            {
                processor.Step(signal.AsSpan(t * 160, 160));
                return processor.Score;
            })];

        var processor = Processor();
        var first = Run(processor, 0);
        Assert.Equal(expected.Length, first.Length);
        Assert.All(first.Zip(expected), p => Assert.True(Math.Abs(p.First - p.Second) <= AudioFrontEndTests.LogTolerance, $"{p.First} vs {p.Second}"));

        // Reset: zeros of history again, so the same samples give the same scores.
        processor.Reset();
        Assert.Equal(first, Run(processor, 0));

        // A stream restored from its state after step 3 (a checkpoint) goes on with the same overlap.
        processor.Reset();
        for (var t = 0; t < 3; t++)
        {
            processor.Step(signal.AsSpan(t * 160, 160));
        }

        var restored = Processor();
        processor.State.CopyTo(restored.State);
        restored.StateRestored();
        Assert.Equal(first[3..], Run(restored, 3));

        // Without the carried overlap (a fresh stream given step 3 onwards) the first frames differ: the state mattered.
        Assert.NotEqual(first[3], Run(Processor(), 3)[0]);
    }

    [Fact]
    public async Task A_front_end_that_does_not_fit_stops_the_daemon_naming_the_key()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var frontend = Config("log_mel_htk");
        frontend["fft_size"] = 300;
        var (_, manifest) = await TestManifests.WriteModelAsync(temp.Path, "mel-mean", MeanModel(40), Manifest(frontend), ct);
        var stderr = await RunDaemonAsync(temp, "mel-mean", manifest, ct);
        Assert.Contains("Models:mel-mean:Manifest", stderr, StringComparison.Ordinal);
        Assert.Contains("stream.frontend.fft_size must be a power of two", stderr, StringComparison.Ordinal);
    }
}
