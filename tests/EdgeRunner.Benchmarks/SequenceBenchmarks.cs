using BenchmarkDotNet.Attributes;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Sequence;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// The bundled vibration LSTM (x [batch, steps, 3, 50], h0/c0 [1, batch, 48] → probs [batch, steps, 4], hn/cn),
/// one step = one new 50-sample chunk per stream (0.25 s at 200 Hz), 1 intra-op thread.
/// <list type="bullet">
/// <item><c>StepBatch</c>: all streams in one ORT call (gather states, run, scatter).</item>
/// <item><c>Step per stream</c>: one <see cref="SequenceModel.Step"/> call per stream (what SequenceStreamProcessor does without a batcher).</item>
/// <item>Stateless alternatives (no carried state): each step re-runs the LSTM from a zero state over a sliding window of the
/// last W samples. The model consumes whole 50-sample chunks, so W = 64 samples becomes ⌈64/50⌉ = 2 chunks (100 samples)
/// and W = 256 becomes ⌈256/50⌉ = 6 chunks (300 samples); the window slides by one chunk per step and the result is the
/// last time step's probabilities. Batched: one IoBinding run over [Streams, K, 3, 50] with zero h0/c0 (the equivalent of
/// RunSequence for all streams at once, allocation-free). Per stream: <see cref="SequenceModel.RunSequence"/> from a reset state.</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet disposes through [GlobalCleanup].")]
public class SequenceBenchmarks
{
    public const int SamplesPerChunk = 50;

    private SequenceModel _model = null!;
    private StreamState[] _states = null!;
    private float[] _chunks = null!;
    private float[] _results = null!;
    private StatelessWindow _window2 = null!;
    private StatelessWindow _window6 = null!;

    [Params(1, 16, 256, 1024)]
    public int Streams { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var manifest = ModelManifest.Load(Paths.Bundled("vibration-lstm", "model.json"));
        _model = SequenceModel.Load(
            new SequenceModelOptions
            {
                Id = manifest.Id,
                Path = manifest.ModelPath,
                StreamInput = manifest.Stream!.Input,
                ResultOutput = manifest.Postprocess!.Output ?? manifest.Outputs[0].Name,
                State = [.. manifest.State!.Select(s => (s.Input, s.Output, s.BatchAxis))],
                IntraOpThreads = 1,
            },
            NullLogger.Instance);
        _states = [.. Enumerable.Range(0, Streams).Select(i => _model.CreateState($"s{i}"))];
        var random = new Random(11);
        // Normalised accelerometer samples (the stream's mean/std already applied): roughly N(0, 1).
        _chunks = [.. Enumerable.Range(0, Streams * _model.ChunkLength).Select(_ => (float)((random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5) * 2))];
        _results = new float[Streams * _model.ResultLength];
        _window2 = new StatelessWindow(manifest, _model, Streams, chunks: 2);
        _window6 = new StatelessWindow(manifest, _model, Streams, chunks: 6);

        // Create the per-batch-size buffers (first use allocates) so only steady-state steps are measured.
        StepBatch();
        StepPerStream();
        Stateless64Batched();
        Stateless256Batched();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _window2.Dispose();
        _window6.Dispose();
        _model.Dispose();
    }

    [Benchmark(Description = "stateful: StepBatch (one call)")]
    public void StepBatch() => _model.StepBatch(_states, _chunks, _results);

    [Benchmark(Description = "stateful: Step per stream")]
    public void StepPerStream()
    {
        var chunkLength = _model.ChunkLength;
        var resultLength = _model.ResultLength;
        for (var i = 0; i < _states.Length; i++)
        {
            _model.Step(_states[i], _chunks.AsSpan(i * chunkLength, chunkLength), _results.AsSpan(i * resultLength, resultLength));
        }
    }

    [Benchmark(Description = "stateless W=64 (2 chunks): batched")]
    public void Stateless64Batched() => _window2.Step(_chunks, _results);

    [Benchmark(Description = "stateless W=256 (6 chunks): batched")]
    public void Stateless256Batched() => _window6.Step(_chunks, _results);

    [Benchmark(Description = "stateless W=64 (2 chunks): RunSequence per stream")]
    public float RunSequence64() => RunSequencePerStream(_window2);

    [Benchmark(Description = "stateless W=256 (6 chunks): RunSequence per stream")]
    public float RunSequence256() => RunSequencePerStream(_window6);

    private float RunSequencePerStream(StatelessWindow window)
    {
        window.Slide(_chunks);
        var sum = 0f;
        for (var i = 0; i < _states.Length; i++)
        {
            var state = _states[i];
            state.Reset();
            var probs = _model.RunSequence(state, window.StreamWindow(i), window.Chunks);
            sum += probs[^1];
        }

        return sum;
    }

    /// <summary>
    /// A sliding window of K chunks per stream, fed to the LSTM with zero initial state in one IoBinding run for all streams.
    /// </summary>
    private sealed class StatelessWindow : IDisposable
    {
        private readonly InferenceSession _session;
        private readonly RunOptions _runOptions = new();
        private readonly OrtIoBinding _binding;
        private readonly List<OrtValue> _values = [];
        private readonly float[] _x;
        private readonly float[] _probs;
        private readonly int _streams;
        private readonly int _chunkLength;
        private readonly int _resultLength;

        public StatelessWindow(ModelManifest manifest, SequenceModel model, int streams, int chunks)
        {
            Chunks = chunks;
            _streams = streams;
            _chunkLength = model.ChunkLength;
            _resultLength = model.ResultLength;
            using var options = new SessionOptions
            {
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
                IntraOpNumThreads = 1,
                InterOpNumThreads = 1,
            };
            _session = new InferenceSession(manifest.ModelPath, options);
            _binding = _session.CreateIoBinding();
            _x = new float[streams * chunks * _chunkLength];
            _probs = new float[streams * chunks * _resultLength];
            Bind(input: true, model.StreamInput, _x, [streams, chunks, .. model.ChunkShape]);
            Bind(input: false, model.ResultOutput, _probs, [streams, chunks, _resultLength]);
            foreach (var pair in model.StatePairs)
            {
                var shape = pair.ShapeForBatch1.ToArray();
                shape[pair.BatchAxis] = streams;
                Bind(input: true, pair.Input, new float[pair.Size * streams], shape); // stays zero: no carried state
                Bind(input: false, pair.Output, new float[pair.Size * streams], shape);
            }
        }

        public int Chunks { get; }

        /// <summary>Stream i's window: K chunks, oldest first.</summary>
        public ReadOnlySpan<float> StreamWindow(int stream) => _x.AsSpan(stream * Chunks * _chunkLength, Chunks * _chunkLength);

        /// <summary>Drops each stream's oldest chunk and appends its new one.</summary>
        public void Slide(ReadOnlySpan<float> newChunks)
        {
            var window = Chunks * _chunkLength;
            for (var s = 0; s < _streams; s++)
            {
                var w = _x.AsSpan(s * window, window);
                w[_chunkLength..].CopyTo(w);
                newChunks.Slice(s * _chunkLength, _chunkLength).CopyTo(w[(window - _chunkLength)..]);
            }
        }

        /// <summary>One step for all streams: slide, run from zero state, take the last time step's result.</summary>
        public void Step(ReadOnlySpan<float> newChunks, Span<float> results)
        {
            Slide(newChunks);
            _session.RunWithBinding(_runOptions, _binding);
            for (var s = 0; s < _streams; s++)
            {
                _probs.AsSpan((((s * Chunks) + Chunks - 1) * _resultLength), _resultLength).CopyTo(results.Slice(s * _resultLength, _resultLength));
            }
        }

        public void Dispose()
        {
            _binding.Dispose();
            foreach (var value in _values)
            {
                value.Dispose();
            }

            _runOptions.Dispose();
            _session.Dispose();
        }

        private void Bind(bool input, string name, float[] buffer, long[] shape)
        {
            var value = OrtValue.CreateTensorValueFromMemory(buffer, shape);
            _values.Add(value);
            if (input)
            {
                _binding.BindInput(name, value);
            }
            else
            {
                _binding.BindOutput(name, value);
            }
        }
    }
}
