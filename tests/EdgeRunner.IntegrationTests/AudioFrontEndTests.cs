using System.Text.Json;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Audio;
using EdgeRunner.Models.Manifests;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The audio front ends (STFT, log-mel, MFCC) held to Fixtures/audio-frontend-reference.json, written by
/// Fixtures/audio_frontend_reference.py in float64 with a direct DFT: a deterministic two-tone signal
/// (its 16-bit samples are in the file) and a slice of ../shared/audio/speech_noisy_16k.wav (read in
/// place). Float32 tolerances: STFT bins within 2e-6 of the frame's largest value (plus 2e-6
/// relative); natural-log and log10 energies within 2e-4 absolute; dB MFCCs within 2e-3 absolute (an
/// MFCC is a sum of 40 dB values of size ~100, so 2e-3 is a relative 2e-6 of its terms). The worst
/// errors measured on x86-64 (AVX-512) were at most 7.2 % of these, leaving room for other SIMD paths. Streaming
/// in odd-sized pieces must give exactly the one-shot frames.
/// </summary>
public sealed class AudioFrontEndTests
{
    private static readonly JsonSerializerOptions ManifestJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    private static readonly Lazy<JsonDocument> Reference = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "audio-frontend-reference.json"))));

    private static JsonElement Root => Reference.Value.RootElement;

    /// <summary>Natural-log and log10 energies: absolute.</summary>
    internal const double LogTolerance = 2e-4;

    /// <summary>STFT bins: relative to the frame's largest value, plus relative to the bin.</summary>
    internal static double StftTolerance(double frameScale, double expected) => (2e-6 * frameScale) + (2e-6 * Math.Abs(expected));

    public static TheoryData<string> Cases() => [.. Root.GetProperty("features").EnumerateObject().Select(p => p.Name)];

    /// <summary>The front end a reference configuration declares, through the manifest's own checks.</summary>
    internal static AudioFrontEndSpec Spec(string config, int chunkSamples = 160) =>
        AudioFrontEndSpec.From(Stream(config, chunkSamples))!;

    internal static ManifestStreamInput Stream(string config, int chunkSamples = 160) => new()
    {
        Input = "features",
        SampleRateHz = Root.GetProperty("sample_rate_hz").GetDouble(),
        Channels = ["audio"],
        ChunkSamples = chunkSamples,
        Frontend = Root.GetProperty("configs").GetProperty(config).Deserialize<ManifestAudioFrontEnd>(ManifestJson),
    };

    /// <summary>The deterministic test signal, as floats in [-1, 1) (16-bit / 32768, as the audio source delivers).</summary>
    internal static float[] Synthetic() => [.. Root.GetProperty("signals").GetProperty("synthetic").GetProperty("pcm16").EnumerateArray().Select(e => e.GetInt32() / 32768f)];

    internal static float[][] Expected(string key) =>
        [.. Root.GetProperty("features").GetProperty(key).EnumerateArray().Select(f => f.EnumerateArray().Select(v => v.GetSingle()).ToArray())];

    private static float[] Signal(string name)
    {
        if (name == "synthetic")
        {
            return Synthetic();
        }

        var speech = Root.GetProperty("signals").GetProperty("speech");
        var all = SileroVadStreamingTests.ReadPcm16Wav(TestPaths.SharedFile(speech.GetProperty("shared_file").GetString()!));
        var slice = all.AsSpan(speech.GetProperty("offset").GetInt32(), speech.GetProperty("count").GetInt32()).ToArray();
        // The same samples the script read: their 16-bit sum.
        Assert.Equal(speech.GetProperty("pcm16_sum").GetInt64(), slice.Sum(s => (long)(s * 32768)));
        return slice;
    }

    private static float[] OneShot(AudioFrontEndSpec spec, float[] signal)
    {
        var frontEnd = new AudioFrontEnd(spec);
        var features = new float[signal.Length / spec.HopLength * spec.FeaturesPerFrame];
        Assert.Equal(signal.Length / spec.HopLength, frontEnd.ProcessChunk(signal, new float[frontEnd.HistoryLength], features));
        return features;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Features_match_the_float64_reference_within_the_stated_tolerance(string key)
    {
        var (signalName, config) = (key.Split('/')[0], key.Split('/')[1]);
        var spec = Spec(config);
        var expected = Expected(key);
        var actual = OneShot(spec, Signal(signalName));
        Assert.Equal(expected.Length * spec.FeaturesPerFrame, actual.Length);
        var worst = 0.0;
        for (var t = 0; t < expected.Length; t++)
        {
            Assert.Equal(spec.FeaturesPerFrame, expected[t].Length);
            var scale = expected[t].Select(Math.Abs).Max();
            for (var i = 0; i < expected[t].Length; i++)
            {
                var (e, a) = ((double)expected[t][i], (double)actual[(t * spec.FeaturesPerFrame) + i]);
                var tolerance = spec.Kind switch
                {
                    AudioFeatureKind.Stft => StftTolerance(scale, e),
                    AudioFeatureKind.Mfcc => 2e-3,
                    _ => LogTolerance,
                };
                worst = Math.Max(worst, Math.Abs(a - e) / tolerance);
                Assert.True(Math.Abs(a - e) <= tolerance, $"{key} frame {t} value {i}: {a} vs reference {e} (tolerance {tolerance})");
            }
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"{key}: worst error {worst:P1} of the tolerance");
    }

    [Theory]
    [InlineData("log_mel_htk", new[] { 7, 13, 1, 333, 160, 161 })]
    [InlineData("mfcc_slaney", new[] { 1279, 1 })]
    [InlineData("stft", new[] { 3, 320, 17 })]
    [InlineData("log_mel_no_overlap", new[] { 100, 59, 1000 })]
    public void Streaming_in_odd_sized_pieces_gives_exactly_the_one_shot_frames(string config, int[] pieces)
    {
        var spec = Spec(config);
        var signal = Synthetic();
        var oneShot = OneShot(spec, signal);
        var stream = new StreamingAudioFrontEnd(spec);
        var streamed = new List<float>();
        var buffer = new float[signal.Length / spec.HopLength * spec.FeaturesPerFrame];
        var position = 0;
        for (var p = 0; position < signal.Length; p++)
        {
            var piece = signal.AsSpan(position, Math.Min(pieces[p % pieces.Length], signal.Length - position));
            var expectedFrames = stream.FramesFor(piece.Length);
            var frames = stream.Push(piece, buffer);
            Assert.Equal(expectedFrames, frames);
            streamed.AddRange(buffer.AsSpan(0, frames * spec.FeaturesPerFrame));
            position += piece.Length;
        }

        Assert.Equal(oneShot, streamed.ToArray());

        // Reset: the same signal again gives the same frames (zeros of history, nothing pending).
        stream.Reset();
        var again = new float[oneShot.Length];
        Assert.Equal(signal.Length / spec.HopLength, stream.Push(signal, again));
        Assert.Equal(oneShot, again);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(64)]
    [InlineData(512)]
    [InlineData(4096)]
    public void The_real_fft_matches_a_direct_dft(int size)
    {
        var random = new Random(size);
        var input = Enumerable.Range(0, size).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
        var fft = new RealFft(size);
        var spectrum = new float[2 * fft.Bins];
        fft.Forward(input, spectrum);
        Assert.Equal((size / 2) + 1, fft.Bins);
        for (var k = 0; k <= size / 2; k++)
        {
            double re = 0, im = 0;
            for (var n = 0; n < size; n++)
            {
                var angle = -2 * Math.PI * ((long)k * n % size) / size;
                re += input[n] * Math.Cos(angle);
                im += input[n] * Math.Sin(angle);
            }

            // Random ±1 input: |X| ~ √N; float32 radix-2 error grows with log N.
            var tolerance = 1e-5 * Math.Sqrt(size) * Math.Log2(size);
            Assert.True(Math.Abs(spectrum[2 * k] - re) <= tolerance && Math.Abs(spectrum[(2 * k) + 1] - im) <= tolerance, $"N={size} bin {k}: ({spectrum[2 * k]}, {spectrum[(2 * k) + 1]}) vs ({re}, {im})");
        }
    }

    [Theory]
    [InlineData("log_mel_htk")]
    [InlineData("mfcc_slaney")]
    [InlineData("stft")]
    public void A_chunk_allocates_nothing_in_steady_state(string config)
    {
        var spec = Spec(config, 320);
        var frontEnd = new AudioFrontEnd(spec);
        var history = new float[frontEnd.HistoryLength];
        var chunk = Synthetic().AsSpan(0, 320).ToArray();
        var features = new float[2 * spec.FeaturesPerFrame];
        AllocationAssert.SteadyStateIsZero(() => frontEnd.ProcessChunk(chunk, history, features));
        var stream = new StreamingAudioFrontEnd(spec);
        AllocationAssert.SteadyStateIsZero(() => stream.Push(chunk.AsSpan(0, 97), features));
    }

    [Theory]
    [InlineData("""{"kind":"mel"}""", "stream.frontend.kind: unknown front end 'mel' (stft, log_mel, mfcc)")]
    [InlineData("""{"kind":"log_mel","frame_length":400,"hop_length":160,"fft_size":300}""", "stream.frontend.fft_size must be a power of two")]
    [InlineData("""{"kind":"log_mel","frame_length":400,"hop_length":160,"fft_size":256}""", "at least frame_length 400")]
    [InlineData("""{"kind":"log_mel","frame_length":400,"hop_length":160,"window":"blackman"}""", "stream.frontend.window: unknown window 'blackman'")]
    [InlineData("""{"kind":"mfcc","frame_length":400,"hop_length":160,"mel_bands":20,"mfcc_count":30}""", "stream.frontend.mfcc_count must be 1 to mel_bands = 20")]
    [InlineData("""{"kind":"log_mel","frame_length":400,"hop_length":160,"fmax_hz":9000}""", "stream.frontend.fmin_hz/fmax_hz must satisfy")]
    [InlineData("""{"kind":"log_mel","frame_length":400,"hop_length":150}""", "stream.chunk_samples (160) must be a whole number of stream.frontend.hop_length (150)")]
    public void Bad_front_end_settings_are_refused_naming_the_key(string frontend, string message)
    {
        var stream = new ManifestStreamInput
        {
            Input = "features",
            SampleRateHz = 16000,
            Channels = ["audio"],
            ChunkSamples = 160,
            Frontend = JsonSerializer.Deserialize<ManifestAudioFrontEnd>(frontend, ManifestJson),
        };
        var error = Assert.Throws<ManifestException>(() => AudioFrontEndSpec.From(stream));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_front_end_needs_one_raw_channel_without_context_or_normalisation()
    {
        var stream = Stream("log_mel_htk");
        Assert.Contains("one-channel stream", Assert.Throws<ManifestException>(() => AudioFrontEndSpec.From(stream with { Channels = ["l", "r"] })).Message, StringComparison.Ordinal);
        Assert.Contains("context_samples", Assert.Throws<ManifestException>(() => AudioFrontEndSpec.From(stream with { ContextSamples = 64 })).Message, StringComparison.Ordinal);
        Assert.Contains("stream.mean", Assert.Throws<ManifestException>(() => AudioFrontEndSpec.From(stream with { Mean = [0f] })).Message, StringComparison.Ordinal);

        // Values per step: 2 frames × 40 bands with the front end; the raw samples without it.
        Assert.Equal(80, AudioFrontEndSpec.ValuesPerStep(stream with { ChunkSamples = 320 }));
        Assert.Equal(320, AudioFrontEndSpec.ValuesPerStep(stream with { ChunkSamples = 320, Frontend = null }));
    }
}
