using BenchmarkDotNet.Attributes;
using EdgeRunner.Models.Audio;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// The audio front ends (models/EdgeRunner.Models/Audio) on one chunk of 16 kHz audio: 320 samples
/// (20 ms) = 2 frames of 400 samples (25 ms) every 160 (10 ms), Hann window, 512-point FFT; log-mel
/// with 40 bands, MFCC with 13 coefficients of 40 bands, STFT with 257 complex bins. The overlap is
/// carried chunk to chunk as a stream does; 0 B allocated per chunk is part of the result. Also the
/// 512-point real FFT alone.
/// </summary>
[MemoryDiagnoser]
public class AudioFrontEndBenchmarks
{
    private const int ChunkSamples = 320;

    private AudioFrontEnd _frontEnd = null!;
    private float[] _chunk = null!;
    private float[] _history = null!;
    private float[] _features = null!;
    private RealFft _fft = null!;
    private float[] _fftInput = null!;
    private float[] _spectrum = null!;

    [Params(AudioFeatureKind.LogMel, AudioFeatureKind.Mfcc, AudioFeatureKind.Stft)]
    public AudioFeatureKind Kind { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var spec = new AudioFrontEndSpec
        {
            Kind = Kind,
            SampleRateHz = 16000,
            FrameLength = 400,
            HopLength = 160,
            FftSize = 512,
            MelBands = 40,
            FmaxHz = 8000,
            MfccCount = 13,
        };
        _frontEnd = new AudioFrontEnd(spec);
        var random = new Random(5);
        _chunk = [.. Enumerable.Range(0, ChunkSamples).Select(n => (float)((0.3 * Math.Sin(n * 0.17)) + (0.05 * (random.NextDouble() - 0.5))))];
        _history = new float[_frontEnd.HistoryLength];
        _features = new float[ChunkSamples / spec.HopLength * spec.FeaturesPerFrame];
        _fft = new RealFft(512);
        _fftInput = [.. Enumerable.Range(0, 512).Select(_ => (float)(random.NextDouble() - 0.5))];
        _spectrum = new float[2 * _fft.Bins];
    }

    [Benchmark(Description = "front end: one 320-sample chunk (2 frames)")]
    public int Chunk() => _frontEnd.ProcessChunk(_chunk, _history, _features);

    [Benchmark(Description = "real FFT, 512 points")]
    public void Fft512() => _fft.Forward(_fftInput, _spectrum);
}
