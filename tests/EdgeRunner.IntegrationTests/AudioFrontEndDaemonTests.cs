using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.DependencyInjection;

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
            // The tolerance of the log-mel values (1e-3), plus the payload's rounding to 5 decimals.
            Assert.True(Math.Abs(scores[i] - expected[i]) <= 1e-3, $"step {i}: score {scores[i]} vs the reference frame's mean {expected[i]}");
        }

        Assert.Equal(expected.Length, stream.Steps);
    }

    [Fact]
    public async Task A_front_end_that_does_not_fit_stops_the_daemon_naming_the_key()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var frontend = Config("log_mel_htk");
        frontend["fft_size"] = 300;
        var (_, manifest) = await TestManifests.WriteModelAsync(temp.Path, "mel-mean", MeanModel(40), Manifest(frontend), ct);
        var wav = Path.Combine(temp.Path, "tones.wav");
        WriteWav(wav, AudioFrontEndTests.Synthetic(), 16000);
        var config = Path.Combine(temp.Path, "config.json");
        await File.WriteAllTextAsync(
            config,
            new JsonObject
            {
                ["Device"] = new JsonObject { ["Id"] = "audiofe" },
                ["Mqtt"] = new JsonObject { ["Host"] = "127.0.0.1", ["Port"] = FreePort.Next() },
                ["Models"] = new JsonObject { ["mel-mean"] = new JsonObject { ["Manifest"] = manifest } },
                ["Sensors"] = new JsonObject
                {
                    ["mic"] = new JsonObject
                    {
                        ["Model"] = "mel-mean",
                        ["Source"] = new JsonObject { ["Kind"] = "Audio", ["Path"] = wav },
                    },
                },
            }.ToJsonString(),
            ct);
        await using var daemon = DaemonProcess.Start(["--config", config]);
        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60), ct));
        Assert.Contains("Models:mel-mean:Manifest", daemon.Stderr, StringComparison.Ordinal);
        Assert.Contains("stream.frontend.fft_size must be a power of two", daemon.Stderr, StringComparison.Ordinal);
    }
}
