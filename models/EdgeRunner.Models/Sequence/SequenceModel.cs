using System.Security.Cryptography;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Manifests;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace EdgeRunner.Models.Sequence;

/// <summary>One recurrent state pair resolved against the model: where its batch axis is and how big one stream's slice is.</summary>
public sealed record StatePair(string Input, string Output, int BatchAxis, long[] ShapeForBatch1)
{
    /// <summary>Floats in one stream's state.</summary>
    public int Size { get; } = checked((int)ShapeForBatch1.Aggregate(1L, (a, b) => a * b));

    /// <summary>Product of the dimensions before the batch axis.</summary>
    public int Outer { get; } = checked((int)ShapeForBatch1.Take(BatchAxis).Aggregate(1L, (a, b) => a * b));

    /// <summary>Product of the dimensions after the batch axis.</summary>
    public int Inner { get; } = checked((int)ShapeForBatch1.Skip(BatchAxis + 1).Aggregate(1L, (a, b) => a * b));
}

/// <summary>What to load and how it is wired.</summary>
public sealed record SequenceModelOptions
{
    /// <summary>Name used in logs and results.</summary>
    public required string Id { get; init; }

    /// <summary>The .onnx file.</summary>
    public required string Path { get; init; }

    /// <summary>Input that takes the stream's samples: [batch, steps, ...chunk] or [batch, ...chunk].</summary>
    public required string StreamInput { get; init; }

    /// <summary>Output read per step: [batch, steps, ...] or [batch, ...].</summary>
    public required string ResultOutput { get; init; }

    /// <summary>State pairs (input, output, batch axis).</summary>
    public required IReadOnlyList<(string Input, string Output, int BatchAxis)> State { get; init; }

    /// <summary>Execution providers in preference order.</summary>
    public IReadOnlyList<string> ExecutionProviders { get; init; } = ["cpu"];

    /// <summary>Intra-op threads (0 = ONNX Runtime's default).</summary>
    public int IntraOpThreads { get; init; }
}

/// <summary>
/// A stateful sequence model (LSTM/GRU/RNN or anything with state inputs and outputs) run one step
/// at a time for any number of streams. ONNX Runtime is stateless, so the state lives in each
/// stream's <see cref="StreamState"/>; a step gathers the states of the streams being run along each
/// pair's batch axis, runs once, and scatters the new states back. Buffers and OrtValues for a batch
/// size are created on first use and reused: steady-state steps allocate nothing. Not thread-safe.
/// </summary>
public sealed partial class SequenceModel : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly Dictionary<int, BatchBuffers> _batches = [];
    private readonly bool _inputHasSteps;
    private readonly bool _outputHasSteps;
    private readonly long[] _chunkShape;
    private readonly long[] _resultShape;

    private SequenceModel(SequenceModelOptions options, InferenceSession session, string sha256, IReadOnlyList<StatePair> state, long[] chunkShape, bool inputHasSteps, long[] resultShape, bool outputHasSteps)
    {
        Id = options.Id;
        Path = options.Path;
        Sha256 = sha256;
        StreamInput = options.StreamInput;
        ResultOutput = options.ResultOutput;
        StatePairs = state;
        _session = session;
        _chunkShape = chunkShape;
        _inputHasSteps = inputHasSteps;
        _resultShape = resultShape;
        _outputHasSteps = outputHasSteps;
        ChunkLength = checked((int)chunkShape.Aggregate(1L, (a, b) => a * b));
        ResultLength = checked((int)resultShape.Aggregate(1L, (a, b) => a * b));
    }

    /// <summary>Model name.</summary>
    public string Id { get; }

    /// <summary>Model file.</summary>
    public string Path { get; }

    /// <summary>SHA-256 of the model file.</summary>
    public string Sha256 { get; }

    /// <summary>The samples input.</summary>
    public string StreamInput { get; }

    /// <summary>The per-step result output.</summary>
    public string ResultOutput { get; }

    /// <summary>State pairs in state-buffer order.</summary>
    public IReadOnlyList<StatePair> StatePairs { get; }

    /// <summary>Shape of one stream's step input without batch and steps axes (e.g. [3, 50]).</summary>
    public IReadOnlyList<long> ChunkShape => _chunkShape;

    /// <summary>Floats in one step's input for one stream (e.g. 3 × 50).</summary>
    public int ChunkLength { get; }

    /// <summary>Floats in one step's result for one stream (e.g. 4 class probabilities).</summary>
    public int ResultLength { get; }

    /// <summary>A fresh (zero) state for a stream.</summary>
    public StreamState CreateState(string streamId) => new(streamId, [.. StatePairs.Select(p => p.Size)]);

    /// <summary>Runs one step for one stream: <paramref name="chunk"/> in, <paramref name="result"/> out, state carried.</summary>
    public void Step(StreamState state, ReadOnlySpan<float> chunk, Span<float> result)
    {
        ArgumentNullException.ThrowIfNull(state);
        var buffers = Buffers(1);
        chunk[..ChunkLength].CopyTo(buffers.Chunk);
        for (var p = 0; p < StatePairs.Count; p++)
        {
            state.Tensor(p).CopyTo(buffers.StateIn[p]);
        }

        _session.RunWithBinding(_runOptions, buffers.Binding);
        buffers.Result.AsSpan(0, ResultLength).CopyTo(result);
        for (var p = 0; p < StatePairs.Count; p++)
        {
            buffers.StateOut[p].AsSpan(0, StatePairs[p].Size).CopyTo(state.Tensor(p));
        }

        state.Steps++;
    }

    /// <summary>
    /// Runs one step for several streams in one ONNX Runtime call: stream i's chunk is
    /// <c>chunks[i*ChunkLength..]</c> and its result goes to <c>results[i*ResultLength..]</c>.
    /// </summary>
    public void StepBatch(IReadOnlyList<StreamState> states, ReadOnlySpan<float> chunks, Span<float> results)
    {
        ArgumentNullException.ThrowIfNull(states);
        var batch = states.Count;
        if (batch == 0)
        {
            return;
        }

        var buffers = Buffers(batch);
        chunks[..(batch * ChunkLength)].CopyTo(buffers.Chunk);
        for (var p = 0; p < StatePairs.Count; p++)
        {
            var pair = StatePairs[p];
            for (var b = 0; b < batch; b++)
            {
                Gather(pair, states[b].Tensor(p), buffers.StateIn[p], b, batch);
            }
        }

        _session.RunWithBinding(_runOptions, buffers.Binding);
        buffers.Result.AsSpan(0, batch * ResultLength).CopyTo(results);
        for (var p = 0; p < StatePairs.Count; p++)
        {
            var pair = StatePairs[p];
            for (var b = 0; b < batch; b++)
            {
                Scatter(pair, buffers.StateOut[p], states[b].Tensor(p), b, batch);
            }
        }

        // Indexed, not foreach: enumerating an IReadOnlyList boxes its enumerator.
        for (var b = 0; b < batch; b++)
        {
            states[b].Steps++;
        }
    }

    /// <summary>
    /// Runs <paramref name="steps"/> chunks for one stream in a single call (the model must have a
    /// steps axis). For checking that stepping equals running the whole sequence; allocates.
    /// </summary>
    public float[] RunSequence(StreamState state, ReadOnlySpan<float> chunks, int steps)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!_inputHasSteps || !_outputHasSteps)
        {
            throw new InvalidOperationException($"Model '{Id}' has no steps axis; run it step by step.");
        }

        var inputs = new List<OrtValue>();
        var names = new List<string>();
        try
        {
            names.Add(StreamInput);
            inputs.Add(OrtValue.CreateTensorValueFromMemory(chunks[..(steps * ChunkLength)].ToArray(), [1, steps, .. _chunkShape]));
            for (var p = 0; p < StatePairs.Count; p++)
            {
                names.Add(StatePairs[p].Input);
                inputs.Add(OrtValue.CreateTensorValueFromMemory(state.Tensor(p).ToArray(), StatePairs[p].ShapeForBatch1));
            }

            var outputNames = new List<string> { ResultOutput };
            outputNames.AddRange(StatePairs.Select(p => p.Output));
            using var outputs = _session.Run(_runOptions, names, inputs, outputNames);
            var result = outputs[0].GetTensorDataAsSpan<float>().ToArray();
            for (var p = 0; p < StatePairs.Count; p++)
            {
                outputs[p + 1].GetTensorDataAsSpan<float>().CopyTo(state.Tensor(p));
            }

            state.Steps += steps;
            return result;
        }
        finally
        {
            foreach (var value in inputs)
            {
                value.Dispose();
            }
        }
    }

    /// <summary>Loads the model and checks that the configured inputs, outputs and state pairs exist and fit together.</summary>
    /// <exception cref="ModelLoadException">Missing file, invalid model, or a wiring mismatch; names the file and the tensors.</exception>
    public static SequenceModel Load(SequenceModelOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        if (!File.Exists(options.Path))
        {
            throw new ModelLoadException($"Model '{options.Id}': file '{options.Path}' does not exist.");
        }

        string sha256;
        using (var stream = File.OpenRead(options.Path))
        {
            sha256 = Convert.ToHexStringLower(SHA256.HashData(stream));
        }

        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = options.IntraOpThreads,
            InterOpNumThreads = 1,
        };
        InferenceSession session;
        try
        {
            session = new InferenceSession(options.Path, sessionOptions);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new ModelLoadException($"Model '{options.Id}': cannot load '{options.Path}': {ex.Message}", ex);
        }

        try
        {
            var model = Wire(options, session, sha256);
            LogLoaded(logger, options.Id, options.Path, model.ChunkLength, model.StatePairs.Count, sha256);
            return model;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var buffers in _batches.Values)
        {
            buffers.Dispose();
        }

        _runOptions.Dispose();
        _session.Dispose();
    }

    private static SequenceModel Wire(SequenceModelOptions options, InferenceSession session, string sha256)
    {
        string Where() => $"Model '{options.Id}' ({options.Path})";
        NodeMetadata Input(string name) => session.InputMetadata.TryGetValue(name, out var m)
            ? m
            : throw new ModelLoadException($"{Where()}: has no input '{name}' (inputs: {string.Join(", ", session.InputNames)}).");
        NodeMetadata Output(string name) => session.OutputMetadata.TryGetValue(name, out var m)
            ? m
            : throw new ModelLoadException($"{Where()}: has no output '{name}' (outputs: {string.Join(", ", session.OutputNames)}).");

        var wired = new HashSet<string>(StringComparer.Ordinal) { options.StreamInput };
        var streamMeta = Input(options.StreamInput);
        RequireFloat(streamMeta, options.StreamInput, Where());
        var streamDims = streamMeta.Dimensions;
        var inputHasSteps = streamDims.Length >= 3 && streamDims[1] <= 0;
        var chunkDims = streamDims.Skip(inputHasSteps ? 2 : 1).ToArray();
        if (chunkDims.Any(d => d <= 0))
        {
            throw new ModelLoadException($"{Where()}: input '{options.StreamInput}' has dynamic chunk dimensions [{string.Join(",", streamDims)}]; the chunk size must be fixed.");
        }

        var resultMeta = Output(options.ResultOutput);
        RequireFloat(resultMeta, options.ResultOutput, Where());
        var resultDims = resultMeta.Dimensions;
        var outputHasSteps = resultDims.Length >= 3 && resultDims[1] <= 0;
        var resultShape = resultDims.Skip(outputHasSteps ? 2 : 1).Select(d => (long)Math.Max(d, 1)).ToArray();

        var pairs = new List<StatePair>();
        foreach (var (inputName, outputName, batchAxis) in options.State)
        {
            var inMeta = Input(inputName);
            var outMeta = Output(outputName);
            RequireFloat(inMeta, inputName, Where());
            var inDims = inMeta.Dimensions;
            var outDims = outMeta.Dimensions;
            if (batchAxis < 0 || batchAxis >= inDims.Length)
            {
                throw new ModelLoadException($"{Where()}: state '{inputName}' has rank {inDims.Length}; batch axis {batchAxis} is out of range.");
            }

            var shape = new long[inDims.Length];
            for (var a = 0; a < inDims.Length; a++)
            {
                var d = inDims[a] > 0 ? inDims[a] : (a < outDims.Length && outDims[a] > 0 ? outDims[a] : -1);
                if (a == batchAxis)
                {
                    d = 1;
                }
                else if (d <= 0)
                {
                    throw new ModelLoadException($"{Where()}: state '{inputName}' has a dynamic dimension {a} that is not its batch axis ({batchAxis}).");
                }

                shape[a] = d;
            }

            if (outDims.Length != inDims.Length || outDims.Where((d, a) => a != batchAxis && d > 0 && d != shape[a]).Any())
            {
                throw new ModelLoadException(
                    $"{Where()}: state output '{outputName}' [{string.Join(",", outDims)}] does not match state input '{inputName}' [{string.Join(",", inDims)}].");
            }

            wired.Add(inputName);
            pairs.Add(new StatePair(inputName, outputName, batchAxis, shape));
        }

        var unwired = session.InputNames.Where(n => !wired.Contains(n)).ToList();
        if (unwired.Count > 0)
        {
            throw new ModelLoadException($"{Where()}: inputs {string.Join(", ", unwired)} are neither the stream input nor a state input.");
        }

        return new SequenceModel(options, session, sha256, pairs, [.. chunkDims.Select(d => (long)d)], inputHasSteps, resultShape, outputHasSteps);
    }

    private static void RequireFloat(NodeMetadata meta, string name, string where)
    {
        if (meta.ElementDataType != TensorElementType.Float)
        {
            throw new ModelLoadException($"{where}: '{name}' is {meta.ElementDataType}; float32 expected.");
        }
    }

    private BatchBuffers Buffers(int batch)
    {
        if (!_batches.TryGetValue(batch, out var buffers))
        {
            buffers = new BatchBuffers(this, batch);
            _batches[batch] = buffers;
        }

        return buffers;
    }

    // Stream b's slice of a batched tensor: for each outer index o, Inner floats at ((o * batch) + b) * Inner.
    private static void Gather(StatePair pair, ReadOnlySpan<float> single, Span<float> batched, int b, int batch)
    {
        for (var o = 0; o < pair.Outer; o++)
        {
            single.Slice(o * pair.Inner, pair.Inner).CopyTo(batched.Slice(((o * batch) + b) * pair.Inner, pair.Inner));
        }
    }

    private static void Scatter(StatePair pair, ReadOnlySpan<float> batched, Span<float> single, int b, int batch)
    {
        for (var o = 0; o < pair.Outer; o++)
        {
            batched.Slice(((o * batch) + b) * pair.Inner, pair.Inner).CopyTo(single.Slice(o * pair.Inner, pair.Inner));
        }
    }

    private static long[] WithBatch(IReadOnlyList<long> shapeForBatch1, int axis, int batch)
    {
        var shape = shapeForBatch1.ToArray();
        shape[axis] = batch;
        return shape;
    }

    /// <summary>Pinned tensors and OrtValues for one batch size (steps = 1).</summary>
    private sealed class BatchBuffers : IDisposable
    {
        private readonly List<OrtValue> _owned = [];

        public BatchBuffers(SequenceModel model, int batch)
        {
            Binding = model._session.CreateIoBinding();
            var inputNames = new List<string> { model.StreamInput };
            var inputValues = new List<OrtValue>();
            Chunk = new float[batch * model.ChunkLength];
            long[] chunkShape = model._inputHasSteps ? [batch, 1, .. model._chunkShape] : [batch, .. model._chunkShape];
            inputValues.Add(Own(OrtValue.CreateTensorValueFromMemory(Chunk, chunkShape)));

            var outputNames = new List<string> { model.ResultOutput };
            var outputValues = new List<OrtValue>();
            Result = new float[batch * model.ResultLength];
            long[] resultShape = model._outputHasSteps ? [batch, 1, .. model._resultShape] : [batch, .. model._resultShape];
            outputValues.Add(Own(OrtValue.CreateTensorValueFromMemory(Result, resultShape)));

            StateIn = new float[model.StatePairs.Count][];
            StateOut = new float[model.StatePairs.Count][];
            for (var p = 0; p < model.StatePairs.Count; p++)
            {
                var pair = model.StatePairs[p];
                var shape = WithBatch(pair.ShapeForBatch1, pair.BatchAxis, batch);
                StateIn[p] = new float[pair.Size * batch];
                StateOut[p] = new float[pair.Size * batch];
                inputNames.Add(pair.Input);
                inputValues.Add(Own(OrtValue.CreateTensorValueFromMemory(StateIn[p], shape)));
                outputNames.Add(pair.Output);
                outputValues.Add(Own(OrtValue.CreateTensorValueFromMemory(StateOut[p], shape)));
            }

            // Bound once; each run goes straight to native code without per-call marshalling.
            for (var i = 0; i < inputNames.Count; i++)
            {
                Binding.BindInput(inputNames[i], inputValues[i]);
            }

            for (var i = 0; i < outputNames.Count; i++)
            {
                Binding.BindOutput(outputNames[i], outputValues[i]);
            }
        }

        public OrtIoBinding Binding { get; }

        public float[] Chunk { get; }

        public float[] Result { get; }

        public float[][] StateIn { get; }

        public float[][] StateOut { get; }

        public void Dispose()
        {
            Binding.Dispose();
            foreach (var value in _owned)
            {
                value.Dispose();
            }
        }

        private OrtValue Own(OrtValue value)
        {
            _owned.Add(value);
            return value;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Sequence model {ModelId} loaded from {Path}: {ChunkLength} values per step, {StatePairs} state tensors, sha256 {Sha256}")]
    private static partial void LogLoaded(ILogger logger, string modelId, string path, int chunkLength, int statePairs, string sha256);
}
