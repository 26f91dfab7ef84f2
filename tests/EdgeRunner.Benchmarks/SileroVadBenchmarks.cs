using BenchmarkDotNet.Attributes;
using EdgeRunner.Models.Sequence;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// silero-vad (../shared/models/silero-vad) as the daemon runs it: 64 context + 512 new samples per step
/// at 16 kHz (32 ms of audio), state (2 × 128) inferred and carried, the int64 sample rate bound once as a
/// constant, 1 intra-op thread. Batched streams vs one run per stream.
/// </summary>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet disposes through [GlobalCleanup].")]
public class SileroVadBenchmarks
{
    public const int SamplesPerChunk = 512;

    private SequenceModel _model = null!;
    private StreamState[] _states = null!;
    private float[] _chunks = null!;
    private float[] _results = null!;

    [Params(1, 16, 64)]
    public int Streams { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var path = Path.GetFullPath(Path.Combine(Paths.RepositoryRoot, "..", "shared", "models", "silero-vad", "model.onnx"));
        if (!File.Exists(path))
        {
            throw new FileNotFoundException("silero-vad benchmarks need ../shared/models/silero-vad/model.onnx beside the repository.", path);
        }

        _model = SequenceModel.Load(
            new SequenceModelOptions
            {
                Id = "silero-vad",
                Path = path,
                StreamInput = "input",
                ResultOutput = "output",
                ValuesPerStep = 64 + SamplesPerChunk,
                ConstantInputs = new Dictionary<string, double[]> { ["sr"] = [16000] },
                IntraOpThreads = 1,
            },
            NullLogger.Instance);
        _states = [.. Enumerable.Range(0, Streams).Select(i => _model.CreateState($"s{i}"))];
        var random = new Random(5);
        _chunks = [.. Enumerable.Range(0, Streams * _model.ChunkLength).Select(_ => (float)((random.NextDouble() - 0.5) * 0.2))];
        _results = new float[Streams * _model.ResultLength];
        StepBatch();
        StepPerStream();
    }

    [GlobalCleanup]
    public void Cleanup() => _model.Dispose();

    [Benchmark(Description = "silero-vad: StepBatch (one call)")]
    public void StepBatch() => _model.StepBatch(_states, _chunks, _results);

    [Benchmark(Description = "silero-vad: Step per stream")]
    public void StepPerStream()
    {
        for (var i = 0; i < _states.Length; i++)
        {
            _model.Step(_states[i], _chunks.AsSpan(i * _model.ChunkLength, _model.ChunkLength), _results.AsSpan(i, 1));
        }
    }
}
