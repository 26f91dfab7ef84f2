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

    /// <summary>Input that takes the stream's samples, e.g. [batch, steps, ...chunk], [batch, ...chunk] or [steps, batch, ...chunk].</summary>
    public required string StreamInput { get; init; }

    /// <summary>Output read per step, e.g. [batch, steps, ...] or [batch, ...].</summary>
    public required string ResultOutput { get; init; }

    /// <summary>State pairs (input, output, batch axis); <see langword="null"/> infers them from names and shapes (logged).</summary>
    public IReadOnlyList<(string Input, string Output, int BatchAxis)>? State { get; init; }

    /// <summary>Axis of <see cref="StreamInput"/> along which streams are stacked.</summary>
    public int StreamBatchAxis { get; init; }

    /// <summary>Axis of <see cref="ResultOutput"/> along which streams are stacked.</summary>
    public int ResultBatchAxis { get; init; }

    /// <summary>
    /// Values one stream feeds per step (e.g. 64 context + 512 new samples = 576) when the stream input's
    /// chunk dimension is dynamic; 0 = the input's fixed dimensions say it. Other dynamic dimensions are steps axes of 1.
    /// </summary>
    public int ValuesPerStep { get; init; }

    /// <summary>Inputs given the same value at every step (e.g. a sample-rate scalar), any element type; one value fills the whole tensor.</summary>
    public IReadOnlyDictionary<string, double[]> ConstantInputs { get; init; } = new Dictionary<string, double[]>();

    /// <summary>Execution providers in preference order; CPU is always the last resort.</summary>
    public IReadOnlyList<string> ExecutionProviders { get; init; } = ["cpu"];

    /// <summary>False: refuse to load instead of falling back from the first provider.</summary>
    public bool AllowFallback { get; init; } = true;

    /// <summary>GPU index for GPU providers.</summary>
    public int DeviceId { get; init; }

    /// <summary>Per-provider settings (TensorRT, CUDA, OpenVINO, XNNPACK).</summary>
    public ExecutionProviderSettings ProviderSettings { get; init; } = new();

    /// <summary>Intra-op threads (0 = ONNX Runtime's default).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Whether ONNX Runtime's workers spin-wait between runs (<see cref="ModelSessionOptions.AllowSpinning"/>); null = its default.</summary>
    public bool? AllowSpinning { get; init; }
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
    private readonly BatchedTensor _stream;
    private readonly BatchedTensor _result;
    private readonly int _inputStepsAxis;
    private readonly int _outputStepsAxis;
    private readonly IReadOnlyList<(string Name, OrtValue Value)> _constants;

    private SequenceModel(SequenceModelOptions options, InferenceSession session, string sha256, string provider, WiredModel wired)
    {
        Id = options.Id;
        Path = options.Path;
        Sha256 = sha256;
        ExecutionProvider = provider;
        RequestedProviders = options.ExecutionProviders;
        StreamInput = options.StreamInput;
        ResultOutput = options.ResultOutput;
        StatePairs = wired.State;
        StateInferred = wired.StateInferred;
        MaxBatch = wired.MaxBatch;
        _session = session;
        _stream = wired.Stream;
        _result = wired.Result;
        _inputStepsAxis = wired.InputStepsAxis;
        _outputStepsAxis = wired.OutputStepsAxis;
        _constants = wired.Constants;
        ChunkShape = wired.ChunkShape;
        ChunkLength = _stream.Size;
        ResultLength = _result.Size;
    }

    /// <summary>Model name.</summary>
    public string Id { get; }

    /// <summary>Model file.</summary>
    public string Path { get; }

    /// <summary>SHA-256 of the model file.</summary>
    public string Sha256 { get; }

    /// <summary>ONNX Runtime execution provider the session runs on (after any fallback).</summary>
    public string ExecutionProvider { get; }

    /// <summary>Why the first preference of <see cref="RequestedProviders"/> was not used; null when it was.</summary>
    public string? FallbackReason { get; private init; }

    /// <summary>The execution providers asked for, in order of preference (config names: <c>cuda</c>, <c>cpu</c>, …).</summary>
    public IReadOnlyList<string> RequestedProviders { get; }

    /// <summary>The samples input.</summary>
    public string StreamInput { get; }

    /// <summary>The per-step result output.</summary>
    public string ResultOutput { get; }

    /// <summary>State pairs in state-buffer order.</summary>
    public IReadOnlyList<StatePair> StatePairs { get; }

    /// <summary>Whether the state pairs were inferred from names and shapes rather than given.</summary>
    public bool StateInferred { get; }

    /// <summary>Most streams one run can take: 1 for a model with a fixed batch of 1 (streams then run one at a time).</summary>
    public int MaxBatch { get; }

    /// <summary>Shape of one stream's step input without batch and steps axes (e.g. [3, 50], or [576]).</summary>
    public IReadOnlyList<long> ChunkShape { get; }

    /// <summary>Floats in one step's input for one stream (e.g. 3 × 50).</summary>
    public int ChunkLength { get; }

    /// <summary>Floats in one step's result for one stream (e.g. 4 class probabilities).</summary>
    public int ResultLength { get; }

    /// <summary>
    /// A fresh (zero) state for a stream. <paramref name="extraLengths"/> adds buffers the stream keeps
    /// with its state (e.g. the context samples carried into the next chunk): reset and checkpointed with it.
    /// </summary>
    public StreamState CreateState(string streamId, params ReadOnlySpan<int> extraLengths) =>
        new(streamId, [.. StatePairs.Select(p => p.Size), .. extraLengths]);

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
    /// More streams than <see cref="MaxBatch"/> run in several calls.
    /// </summary>
    public void StepBatch(IReadOnlyList<StreamState> states, ReadOnlySpan<float> chunks, Span<float> results)
    {
        ArgumentNullException.ThrowIfNull(states);
        if (MaxBatch == 1)
        {
            for (var b = 0; b < states.Count; b++)
            {
                Step(states[b], chunks.Slice(b * ChunkLength, ChunkLength), results.Slice(b * ResultLength, ResultLength));
            }

            return;
        }

        var batch = states.Count;
        if (batch == 0)
        {
            return;
        }

        var buffers = Buffers(batch);
        for (var b = 0; b < batch; b++)
        {
            Gather(_stream.Outer, _stream.Inner, chunks.Slice(b * ChunkLength, ChunkLength), buffers.Chunk, b, batch);
        }

        for (var p = 0; p < StatePairs.Count; p++)
        {
            var pair = StatePairs[p];
            for (var b = 0; b < batch; b++)
            {
                Gather(pair.Outer, pair.Inner, states[b].Tensor(p), buffers.StateIn[p], b, batch);
            }
        }

        _session.RunWithBinding(_runOptions, buffers.Binding);
        for (var b = 0; b < batch; b++)
        {
            Scatter(_result.Outer, _result.Inner, buffers.Result, results.Slice(b * ResultLength, ResultLength), b, batch);
        }

        for (var p = 0; p < StatePairs.Count; p++)
        {
            var pair = StatePairs[p];
            for (var b = 0; b < batch; b++)
            {
                Scatter(pair.Outer, pair.Inner, buffers.StateOut[p], states[b].Tensor(p), b, batch);
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
        if (_inputStepsAxis < 0 || _outputStepsAxis < 0)
        {
            throw new InvalidOperationException($"Model '{Id}' has no steps axis; run it step by step.");
        }

        var inputs = new List<OrtValue>();
        var names = new List<string>();
        try
        {
            var inputShape = _stream.ShapeForBatch1.ToArray();
            inputShape[_inputStepsAxis] = steps;
            names.Add(StreamInput);
            inputs.Add(OrtValue.CreateTensorValueFromMemory(chunks[..(steps * ChunkLength)].ToArray(), inputShape));
            for (var p = 0; p < StatePairs.Count; p++)
            {
                names.Add(StatePairs[p].Input);
                inputs.Add(OrtValue.CreateTensorValueFromMemory(state.Tensor(p).ToArray(), StatePairs[p].ShapeForBatch1));
            }

            var outputNames = new List<string> { ResultOutput };
            outputNames.AddRange(StatePairs.Select(p => p.Output));
            var allInputs = inputs.Concat(_constants.Select(c => c.Value)).ToList();
            using var outputs = _session.Run(_runOptions, [.. names, .. _constants.Select(c => c.Name)], allInputs, outputNames);
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
        if (ModelFiles.Problem(options.Path, ModelFiles.MaxModelBytes) is { } problem)
        {
            throw new ModelLoadException($"Model '{options.Id}': file '{options.Path}' {problem}.");
        }

        var sha256 = ModelSession.ComputeSha256(new ModelSessionOptions { Id = options.Id, Path = options.Path });

        var (session, provider, fallbackReason) = ModelSession.CreateSession(
            new ModelSessionOptions
            {
                Id = options.Id,
                Path = options.Path,
                ExecutionProviders = options.ExecutionProviders,
                AllowFallback = options.AllowFallback,
                DeviceId = options.DeviceId,
                ProviderSettings = options.ProviderSettings,
                IntraOpThreads = options.IntraOpThreads,
                AllowSpinning = options.AllowSpinning,
            },
            logger);

        WiredModel? wired = null;
        try
        {
            wired = Wire(options, session);
            var model = new SequenceModel(options, session, sha256, provider, wired) { FallbackReason = fallbackReason };
            if (wired.StateInferred)
            {
                LogStateInferred(logger, options.Id, wired.InferenceDescription);
            }

            if (wired.MaxBatch == 1)
            {
                LogFixedBatch(logger, options.Id);
            }

            LogLoaded(logger, options.Id, options.Path, model.ChunkLength, model.StatePairs.Count, provider, sha256);
            return model;
        }
        catch
        {
            if (wired is not null)
            {
                foreach (var (_, value) in wired.Constants)
                {
                    value.Dispose();
                }
            }

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

        foreach (var (_, value) in _constants)
        {
            value.Dispose();
        }

        _runOptions.Dispose();
        _session.Dispose();
    }

    private static WiredModel Wire(SequenceModelOptions options, InferenceSession session)
    {
        string where = $"Model '{options.Id}' ({options.Path})";
        NodeMetadata Input(string name) => session.InputMetadata.TryGetValue(name, out var m)
            ? m
            : throw new ModelLoadException($"{where}: has no input '{name}' (inputs: {string.Join(", ", session.InputNames)}).");
        NodeMetadata Output(string name) => session.OutputMetadata.TryGetValue(name, out var m)
            ? m
            : throw new ModelLoadException($"{where}: has no output '{name}' (outputs: {string.Join(", ", session.OutputNames)}).");

        var wired = new HashSet<string>(StringComparer.Ordinal) { options.StreamInput };
        var fixedBatch = false;

        // Stream input: batch axis as configured; dynamic chunk dimension from ValuesPerStep; other dynamic dimensions are steps of 1.
        var streamMeta = Input(options.StreamInput);
        RequireFloat(streamMeta, options.StreamInput, where);
        var streamDims = streamMeta.Dimensions;
        var noBatchAxis = options.StreamBatchAxis == -1;

        // A batch axis fixed above 1: reported after the other wiring checks, whose errors are more specific.
        string? fixedBatchProblem = null;
        if (noBatchAxis)
        {
            // Declared without a batch axis (a window of frames, [217, 640]): the whole input is one stream's step.
            fixedBatch = true;
        }
        else
        {
            CheckAxis(options.StreamBatchAxis, streamDims.Length, $"stream input '{options.StreamInput}'", where);
            fixedBatch |= streamDims[options.StreamBatchAxis] > 0;
            if (streamDims[options.StreamBatchAxis] > 1)
            {
                // Fed as a batch of 1 it would fail at the first step; say which dimension and how to declare it.
                fixedBatchProblem =
                    $"{where}: stream input '{options.StreamInput}' [{Dims(streamDims)}] has dimension {options.StreamBatchAxis} fixed at {streamDims[options.StreamBatchAxis]}, " +
                    $"and that is its stream batch axis (stream.batch_axis {options.StreamBatchAxis}): streams are fed one per batch slot, so it cannot run. " +
                    "If that dimension is part of one step (e.g. a window of frames), declare stream.batch_axis -1 (no batch axis) with channels and chunk_samples that cover the whole input, and stream.layout.";
            }
        }

        var fixedProduct = streamDims.Where((d, a) => a != options.StreamBatchAxis && d > 0).Aggregate(1L, (x, d) => x * d);
        var dynamicAxes = Enumerable.Range(0, streamDims.Length).Where(a => a != options.StreamBatchAxis && streamDims[a] <= 0).ToList();
        var streamShape = streamDims.Select(d => (long)d).ToArray();
        if (!noBatchAxis)
        {
            streamShape[options.StreamBatchAxis] = 1;
        }
        var chunkAxis = -1;
        if (options.ValuesPerStep > 0 && options.ValuesPerStep != fixedProduct)
        {
            if (fixedBatchProblem is not null)
            {
                throw new ModelLoadException(fixedBatchProblem);
            }

            if (dynamicAxes.Count == 0 || options.ValuesPerStep % fixedProduct != 0)
            {
                throw new ModelLoadException(
                    $"{where}: stream input '{options.StreamInput}' [{Dims(streamDims)}] cannot take {options.ValuesPerStep} values per step.");
            }

            // The chunk is the last dynamic dimension (the samples); any before it are steps axes.
            chunkAxis = dynamicAxes[^1];
            streamShape[chunkAxis] = options.ValuesPerStep / fixedProduct;
        }

        foreach (var axis in dynamicAxes.Where(a => a != chunkAxis))
        {
            streamShape[axis] = 1;
        }

        var stepsAxes = dynamicAxes.Where(a => a != chunkAxis).ToList();
        var chunkShape = streamShape.Where((_, a) => a != options.StreamBatchAxis && !stepsAxes.Contains(a)).ToArray();

        // Result output: dynamic dimensions other than batch are steps axes of 1 (the result's size must be fixed).
        var resultMeta = Output(options.ResultOutput);
        RequireFloat(resultMeta, options.ResultOutput, where);
        var resultDims = resultMeta.Dimensions;
        var resultShape = resultDims.Select(d => d > 0 ? (long)d : 1L).ToArray();

        // An input without a batch axis runs one stream at a time: its output is read whole.
        var resultBatchAxis = noBatchAxis ? -1 : options.ResultBatchAxis;
        if (resultBatchAxis >= 0)
        {
            CheckAxis(resultBatchAxis, resultDims.Length, $"result output '{options.ResultOutput}'", where);
            if (resultDims[resultBatchAxis] > 1)
            {
                fixedBatchProblem ??=
                    $"{where}: result output '{options.ResultOutput}' [{Dims(resultDims)}] has dimension {resultBatchAxis} fixed at {resultDims[resultBatchAxis]}, " +
                    $"and that is its batch axis (postprocess.batch_axis {resultBatchAxis}); with one stream per run it must be 1 or dynamic, or the input declared without a batch axis (stream.batch_axis -1).";
            }

            resultShape[resultBatchAxis] = 1;
        }

        var resultStepsAxes = Enumerable.Range(0, resultDims.Length).Where(a => a != resultBatchAxis && resultDims[a] <= 0).ToList();

        // Constants: bound once, the same for every batch size.
        var constants = new List<(string, OrtValue)>();
        try
        {
            foreach (var (name, values) in options.ConstantInputs)
            {
                constants.Add((name, CreateConstant(name, values, Input(name), where)));
                wired.Add(name);
            }

            // State: as given, or inferred from the inputs left over.
            var stateInferred = options.State is null;
            var description = string.Empty;
            IReadOnlyList<(string Input, string Output, int BatchAxis)> statePairs;
            if (options.State is { } given)
            {
                statePairs = given;
            }
            else
            {
                var candidates = session.InputNames.Where(n => !wired.Contains(n)).ToList();
                var notFloat = candidates.Where(n => session.InputMetadata[n].ElementDataType != TensorElementType.Float).ToList();
                if (notFloat.Count > 0)
                {
                    throw new ModelLoadException(
                        $"{where}: input {string.Join(", ", notFloat.Select(n => $"'{n}' ({session.InputMetadata[n].ElementDataType} [{Dims(session.InputMetadata[n].Dimensions)}])"))} " +
                        "is neither the stream input nor float state; give it a constant value (constant_inputs).");
                }

                var inferred = StatePairInference.Infer(
                    [.. candidates.Select(n => new TensorDeclaration(n, session.InputMetadata[n].Dimensions))],
                    [.. session.OutputNames.Select(n => new TensorDeclaration(n, session.OutputMetadata[n].Dimensions))],
                    [options.ResultOutput],
                    where);
                statePairs = [.. inferred.Select(p => (p.Input, p.Output, p.BatchAxis))];
                description = inferred.Count == 0
                    ? "no state inputs (stateless)"
                    : string.Join("; ", inferred.Select(p => $"{p.Input} → {p.Output} (batch axis {p.BatchAxis}, {p.Rule})"));
            }

            var pairs = new List<StatePair>();
            foreach (var (inputName, outputName, batchAxis) in statePairs)
            {
                var inMeta = Input(inputName);
                var outMeta = Output(outputName);
                RequireFloat(inMeta, inputName, where);
                RequireFloat(outMeta, outputName, where);
                if (outputName == options.ResultOutput)
                {
                    throw new ModelLoadException($"{where}: output '{outputName}' cannot be both the result and state.");
                }

                var inDims = inMeta.Dimensions;
                var outDims = outMeta.Dimensions;
                CheckAxis(batchAxis, inDims.Length, $"state '{inputName}'", where);
                fixedBatch |= inDims[batchAxis] > 0;
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
                        throw new ModelLoadException($"{where}: state '{inputName}' [{Dims(inDims)}] has a dynamic dimension {a} that is not its batch axis ({batchAxis}).");
                    }

                    shape[a] = d;
                }

                if (outDims.Length != inDims.Length || outDims.Where((d, a) => a != batchAxis && d > 0 && d != shape[a]).Any())
                {
                    throw new ModelLoadException(
                        $"{where}: state output '{outputName}' [{Dims(outDims)}] does not match state input '{inputName}' [{Dims(inDims)}].");
                }

                wired.Add(inputName);
                pairs.Add(new StatePair(inputName, outputName, batchAxis, shape));
            }

            var unwired = session.InputNames.Where(n => !wired.Contains(n)).ToList();
            if (unwired.Count > 0)
            {
                throw new ModelLoadException(
                    $"{where}: inputs {string.Join(", ", unwired)} are neither the stream input, a state input nor a constant; name them in the manifest's state pairs or constant_inputs.");
            }

            if (fixedBatchProblem is not null)
            {
                throw new ModelLoadException(fixedBatchProblem);
            }

            return new WiredModel(
                new BatchedTensor(options.StreamBatchAxis, streamShape),
                new BatchedTensor(resultBatchAxis, resultShape),
                chunkShape,
                stepsAxes.Count == 1 ? stepsAxes[0] : -1,
                resultStepsAxes.Count == 1 ? resultStepsAxes[0] : -1,
                pairs,
                stateInferred,
                description,
                fixedBatch ? 1 : int.MaxValue,
                constants);
        }
        catch
        {
            foreach (var (_, value) in constants)
            {
                value.Dispose();
            }

            throw;
        }
    }

    private static OrtValue CreateConstant(string name, double[] values, NodeMetadata meta, string where)
    {
        var shape = meta.Dimensions.Select(d => d > 0 ? (long)d : 1L).ToArray();
        var count = checked((int)shape.Aggregate(1L, (a, b) => a * b));
        if (values.Length != count && values.Length != 1)
        {
            throw new ModelLoadException($"{where}: constant input '{name}' [{Dims(meta.Dimensions)}] takes {count} values; {values.Length} given.");
        }

        double At(int i) => values[values.Length == 1 ? 0 : i];
        T[] Fill<T>(Func<double, T> convert)
        {
            var array = new T[count];
            for (var i = 0; i < count; i++)
            {
                array[i] = convert(At(i));
            }

            return array;
        }

        // Integer inputs take whole numbers in their type's range; anything else is refused, named, never truncated.
        long Integer(double v, long min, long max) => double.IsInteger(v) && v >= min && v <= max
            ? (long)v
            : throw new ModelLoadException($"{where}: constant input '{name}' is {meta.ElementDataType}; {v.ToString(System.Globalization.CultureInfo.InvariantCulture)} is not a whole number in [{min}, {max}].");

        return meta.ElementDataType switch
        {
            TensorElementType.Float => OrtValue.CreateTensorValueFromMemory(Fill(v => (float)v), shape),
            TensorElementType.Double => OrtValue.CreateTensorValueFromMemory(Fill(v => v), shape),
            TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory(Fill(v => Integer(v, -(1L << 53), 1L << 53)), shape),
            TensorElementType.Int32 => OrtValue.CreateTensorValueFromMemory(Fill(v => (int)Integer(v, int.MinValue, int.MaxValue)), shape),
            TensorElementType.Int16 => OrtValue.CreateTensorValueFromMemory(Fill(v => (short)Integer(v, short.MinValue, short.MaxValue)), shape),
            TensorElementType.Int8 => OrtValue.CreateTensorValueFromMemory(Fill(v => (sbyte)Integer(v, sbyte.MinValue, sbyte.MaxValue)), shape),
            TensorElementType.UInt8 => OrtValue.CreateTensorValueFromMemory(Fill(v => (byte)Integer(v, byte.MinValue, byte.MaxValue)), shape),
            TensorElementType.Bool => OrtValue.CreateTensorValueFromMemory(Fill(v => v != 0), shape),
            _ => throw new ModelLoadException($"{where}: constant input '{name}' is {meta.ElementDataType}; numbers and booleans are supported."),
        };
    }

    private static void CheckAxis(int axis, int rank, string what, string where)
    {
        if (axis < 0 || axis >= rank)
        {
            throw new ModelLoadException($"{where}: {what} has rank {rank}; batch axis {axis} is out of range.");
        }
    }

    private static void RequireFloat(NodeMetadata meta, string name, string where)
    {
        if (meta.ElementDataType != TensorElementType.Float)
        {
            throw new ModelLoadException($"{where}: '{name}' is {meta.ElementDataType}; float32 expected.");
        }
    }

    private static string Dims(IEnumerable<int> dims) => StatePairInference.Dims(dims);

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
    private static void Gather(int outer, int inner, ReadOnlySpan<float> single, Span<float> batched, int b, int batch)
    {
        for (var o = 0; o < outer; o++)
        {
            single.Slice(o * inner, inner).CopyTo(batched.Slice(((o * batch) + b) * inner, inner));
        }
    }

    private static void Scatter(int outer, int inner, ReadOnlySpan<float> batched, Span<float> single, int b, int batch)
    {
        for (var o = 0; o < outer; o++)
        {
            batched.Slice(((o * batch) + b) * inner, inner).CopyTo(single.Slice(o * inner, inner));
        }
    }

    private static long[] WithBatch(IReadOnlyList<long> shapeForBatch1, int axis, int batch)
    {
        var shape = shapeForBatch1.ToArray();
        if (axis >= 0)
        {
            shape[axis] = batch;
        }

        return shape;
    }

    /// <summary>A tensor stacked along a batch axis (the stream input, the result).</summary>
    private sealed record BatchedTensor(int BatchAxis, long[] ShapeForBatch1)
    {
        public int Size { get; } = checked((int)ShapeForBatch1.Aggregate(1L, (a, b) => a * b));

        public int Outer { get; } = checked((int)ShapeForBatch1.Take(BatchAxis).Aggregate(1L, (a, b) => a * b));

        public int Inner { get; } = checked((int)ShapeForBatch1.Skip(BatchAxis + 1).Aggregate(1L, (a, b) => a * b));
    }

    /// <summary>What <see cref="Wire"/> found.</summary>
    private sealed record WiredModel(
        BatchedTensor Stream,
        BatchedTensor Result,
        long[] ChunkShape,
        int InputStepsAxis,
        int OutputStepsAxis,
        IReadOnlyList<StatePair> State,
        bool StateInferred,
        string InferenceDescription,
        int MaxBatch,
        IReadOnlyList<(string Name, OrtValue Value)> Constants);

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
            inputValues.Add(Own(OrtValue.CreateTensorValueFromMemory(Chunk, WithBatch(model._stream.ShapeForBatch1, model._stream.BatchAxis, batch))));

            var outputNames = new List<string> { model.ResultOutput };
            var outputValues = new List<OrtValue>();
            Result = new float[batch * model.ResultLength];
            outputValues.Add(Own(OrtValue.CreateTensorValueFromMemory(Result, WithBatch(model._result.ShapeForBatch1, model._result.BatchAxis, batch))));

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

            foreach (var (name, value) in model._constants)
            {
                Binding.BindInput(name, value);
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Sequence model {ModelId} loaded from {Path}: {ChunkLength} values per step, {StatePairs} state tensors, provider {Provider}, sha256 {Sha256}")]
    private static partial void LogLoaded(ILogger logger, string modelId, string path, int chunkLength, int statePairs, string provider, string sha256);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sequence model {ModelId}: state pairs inferred from names and shapes: {Pairs}")]
    private static partial void LogStateInferred(ILogger logger, string modelId, string pairs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sequence model {ModelId} takes a fixed batch of 1: its streams run one at a time")]
    private static partial void LogFixedBatch(ILogger logger, string modelId);
}
