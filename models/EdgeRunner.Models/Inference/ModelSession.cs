using System.Globalization;
using EdgeRunner.Models.Postprocessing.Detection;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace EdgeRunner.Models.Inference;

/// <summary>Element type of a <see cref="ModelSession"/>'s image input.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "The members name ONNX tensor element types.")]
public enum InputElementType
{
    /// <summary>float32: normalised values, written through <see cref="ModelSession.Input"/>.</summary>
    Float32,

    /// <summary>uint8: raw 0–255 pixels, written through <see cref="ModelSession.InputBytes"/>.</summary>
    UInt8,

    /// <summary>int8: pixels minus 128, written through <see cref="ModelSession.InputSBytes"/>.</summary>
    Int8,
}

/// <summary>
/// One loaded ONNX model with a single float32, uint8 or int8 image input, ready to run without allocating:
/// the input and output tensors are pinned buffers owned by this object and reused on every
/// <see cref="Run"/>. Not thread-safe: one pipeline owns one session.
/// </summary>
public sealed partial class ModelSession : IDisposable, IModelOutputs
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly float[]? _input;
    private readonly byte[]? _inputBytes;
    private readonly sbyte[]? _inputSBytes;
    private readonly OrtValue _inputValue;
    private readonly string[] _outputNames;
    private readonly float[][] _outputs;
    private readonly long[][] _outputShapes;
    private readonly OrtValue[] _outputValues;
    private readonly OrtIoBinding _binding;
    private long[][]? _slotShapes;

    private ModelSession(ModelSessionOptions options, InferenceSession session, string sha256, string provider, string? fallbackReason, long[] inputShape, InputElementType inputType)
    {
        Id = options.Id;
        Path = options.Path;
        Sha256 = sha256;
        ExecutionProvider = provider;
        FallbackReason = fallbackReason;
        RequestedProviders = options.ExecutionProviders;
        _session = session;
        InputName = session.InputNames[0];
        InputShape = inputShape;
        InputElementType = inputType;
        var inputLength = ShapeSize(inputShape);
        switch (inputType)
        {
            case InputElementType.UInt8:
                _inputBytes = new byte[inputLength];
                _inputValue = OrtValue.CreateTensorValueFromMemory(_inputBytes, inputShape);
                break;
            case InputElementType.Int8:
                _inputSBytes = new sbyte[inputLength];
                _inputValue = OrtValue.CreateTensorValueFromMemory(_inputSBytes, inputShape);
                break;
            default:
                _input = new float[inputLength];
                _inputValue = OrtValue.CreateTensorValueFromMemory(_input, inputShape);
                break;
        }

        _outputNames = [.. session.OutputNames];
        _outputs = new float[_outputNames.Length][];
        _outputShapes = new long[_outputNames.Length][];
        _outputValues = new OrtValue[_outputNames.Length];
        for (var i = 0; i < _outputNames.Length; i++)
        {
            var meta = session.OutputMetadata[_outputNames[i]];
            if (meta.ElementDataType != TensorElementType.Float)
            {
                throw new ModelLoadException($"Model '{Id}' ({Path}): output '{_outputNames[i]}' is {meta.ElementDataType}; only float32 outputs are supported for image models.");
            }

            // Symbolic dimensions of outputs are the batch (1) for the image models EdgeRunner runs.
            _outputShapes[i] = Array.ConvertAll(meta.Dimensions, d => d > 0 ? (long)d : 1L);
            _outputs[i] = new float[ShapeSize(_outputShapes[i])];
            _outputValues[i] = OrtValue.CreateTensorValueFromMemory(_outputs[i], _outputShapes[i]);
        }

        // IoBinding: the tensors are bound once; a run then goes straight to native code without
        // marshalling names and handles (the plain Run overloads allocate a few hundred bytes per call).
        _binding = session.CreateIoBinding();
        _binding.BindInput(InputName, _inputValue);
        for (var i = 0; i < _outputNames.Length; i++)
        {
            _binding.BindOutput(_outputNames[i], _outputValues[i]);
        }
    }

    /// <summary>Model name from configuration.</summary>
    public string Id { get; }

    /// <summary>Model file path.</summary>
    public string Path { get; }

    /// <summary>SHA-256 of the model file, lowercase hex.</summary>
    public string Sha256 { get; }

    /// <summary>ONNX Runtime provider the session runs on, e.g. "CPUExecutionProvider".</summary>
    public string ExecutionProvider { get; }

    /// <summary>Why a preferred provider was not used, or null when the first choice was taken.</summary>
    public string? FallbackReason { get; }

    /// <summary>The execution providers asked for, in order of preference (config names: <c>cuda</c>, <c>cpu</c>, …).</summary>
    public IReadOnlyList<string> RequestedProviders { get; }

    /// <summary>Name of the image input.</summary>
    public string InputName { get; }

    /// <summary>Concrete input shape fed on every run (batch 1).</summary>
    public IReadOnlyList<long> InputShape { get; }

    /// <summary>Element type of the image input: selects which of <see cref="Input"/>, <see cref="InputBytes"/> or <see cref="InputSBytes"/> is the tensor.</summary>
    public InputElementType InputElementType { get; }

    /// <summary>The float32 input tensor's memory: write the preprocessed image here before <see cref="Run"/>.</summary>
    /// <exception cref="InvalidOperationException">The model's input is not float32 (see <see cref="InputElementType"/>).</exception>
    public Span<float> Input => _input is { } input ? input.AsSpan(0, input.Length / FixedBatch) : throw WrongInputType(InputElementType.Float32);

    /// <summary>The uint8 input tensor's memory (0–255 pixels): write the preprocessed image here before <see cref="Run"/>.</summary>
    /// <exception cref="InvalidOperationException">The model's input is not uint8 (see <see cref="InputElementType"/>).</exception>
    public Span<byte> InputBytes => _inputBytes is { } input ? input.AsSpan(0, input.Length / FixedBatch) : throw WrongInputType(InputElementType.UInt8);

    /// <summary>The int8 input tensor's memory (pixels minus 128): write the preprocessed image here before <see cref="Run"/>.</summary>
    /// <exception cref="InvalidOperationException">The model's input is not int8 (see <see cref="InputElementType"/>).</exception>
    public Span<sbyte> InputSBytes => _inputSBytes is { } input ? input.AsSpan(0, input.Length / FixedBatch) : throw WrongInputType(InputElementType.Int8);

    /// <summary>Output names in model order.</summary>
    public IReadOnlyList<string> OutputNames => _outputNames;

    /// <summary>Number of outputs.</summary>
    public int OutputCount => _outputNames.Length;

    /// <summary>Name of output <paramref name="index"/>.</summary>
    public string OutputName(int index) => _outputNames[index];

    /// <summary>Output <paramref name="index"/> of the last run.</summary>
    public ReadOnlySpan<float> Output(int index) => _outputs[index].AsSpan(0, _outputs[index].Length / BatchOf(index));

    /// <summary>Shape of output <paramref name="index"/> (for a model with a <see cref="FixedBatch"/> above 1: of its first slot, batch 1).</summary>
    public IReadOnlyList<long> OutputShape(int index) => BatchOf(index) == 1 ? _outputShapes[index] : SlotShapes()[index];

    /// <summary>
    /// The model's fixed batch size (its input's first dimension; 1 for dynamic or batch-1 models). Above 1 the
    /// batch is padded: <see cref="Input"/> and its siblings are the first slot, the other slots stay zeros,
    /// and <see cref="Output"/> is the first slot's output (the padding's outputs are ignored).
    /// </summary>
    public int FixedBatch => InputShape.Count > 0 && InputShape[0] > 1 ? (int)InputShape[0] : 1;

    // Made on first use and kept: decoders ask for shapes on every frame, which must not allocate.
    private long[][] SlotShapes() => _slotShapes ??= [.. _outputShapes.Select((shape, i) => BatchOf(i) == 1 ? shape : (long[])[1, .. shape.Skip(1)])];

    // An output whose first dimension is the fixed batch holds one result per slot; others are read whole.
    private int BatchOf(int index) => FixedBatch > 1 && _outputShapes[index].Length > 0 && _outputShapes[index][0] == FixedBatch ? FixedBatch : 1;

    /// <summary>Runs the model on its input tensor (<see cref="Input"/>, <see cref="InputBytes"/> or <see cref="InputSBytes"/>); results are in <see cref="Output"/>.</summary>
    public void Run() => _session.RunWithBinding(_runOptions, _binding);

    /// <summary>
    /// Opens <paramref name="options"/>.Path, checks that its input matches the expected shape, picks an
    /// execution provider (logging any fallback), and runs one warm-up inference: a provider whose warm-up
    /// fails is passed over like one that fails to initialise (see <see cref="ProviderSelection"/>).
    /// </summary>
    /// <exception cref="ModelLoadException">The file is missing or invalid, or its input does not match; the message names the file and the reason.</exception>
    public static ModelSession Load(ModelSessionOptions options, ILogger logger) => Load(options, logger, ProviderHost.Real, static model => model.Run());

    /// <summary><see cref="Load(ModelSessionOptions, ILogger)"/> through a provider seam and with the warm-up given (tests inject failures there).</summary>
    internal static ModelSession Load(ModelSessionOptions options, ILogger logger, ProviderHost host, Action<ModelSession> warmUp)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        if (ModelFiles.Problem(options.Path, ModelFiles.MaxModelBytes) is { } problem)
        {
            throw new ModelLoadException($"Model '{options.Id}': file '{options.Path}' {problem}.");
        }

        var sha256 = ComputeSha256(options);
        var model = ProviderSelection.Open(
            options,
            logger,
            (session, choice) =>
            {
                var (inputShape, inputType) = ResolveInput(options, session);
                var loaded = new ModelSession(options, session, sha256, choice.ExecutionProvider, choice.FallbackReason, inputShape, inputType);
                try
                {
                    warmUp(loaded); // First run allocates arenas and picks kernels; do it before reporting ready.
                    return loaded;
                }
                catch
                {
                    loaded.DisposeBuffers();
                    throw;
                }
            },
            host);
        var shapeText = FormatShape(model.InputShape);
        LogLoaded(logger, options.Id, options.Path, model.ExecutionProvider, shapeText, sha256);
        if (model.FixedBatch > 1)
        {
            LogPaddedBatch(logger, options.Id, model.FixedBatch, model.FixedBatch - 1);
        }

        return model;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        DisposeBuffers();
        _session.Dispose();
    }

    /// <summary>Everything but the session (which <see cref="ProviderSelection"/> disposes when the warm-up fails).</summary>
    private void DisposeBuffers()
    {
        _binding.Dispose();
        _inputValue.Dispose();
        foreach (var value in _outputValues)
        {
            value?.Dispose();
        }

        _runOptions.Dispose();
    }

    private InvalidOperationException WrongInputType(InputElementType requested) => new(
        $"Model '{Id}' ({Path}): input '{InputName}' is {InputElementType}, not {requested}; use the matching input span.");

    internal static string FormatShape(IReadOnlyList<long> shape) => "[" + string.Join(",", shape) + "]";

    private static string FormatShape(NodeMetadata meta, int[] dims)
    {
        var parts = new string[dims.Length];
        for (var i = 0; i < dims.Length; i++)
        {
            var symbol = i < meta.SymbolicDimensions.Length ? meta.SymbolicDimensions[i] : string.Empty;
            parts[i] = dims[i] > 0 ? dims[i].ToString(CultureInfo.InvariantCulture) : (string.IsNullOrEmpty(symbol) ? "?" : symbol);
        }

        return "[" + string.Join(",", parts) + "]";
    }

    private static (long[] Shape, InputElementType Type) ResolveInput(ModelSessionOptions options, InferenceSession session)
    {
        if (session.InputNames.Count != 1)
        {
            throw new ModelLoadException(
                $"Model '{options.Id}' ({options.Path}): has {session.InputNames.Count} inputs ({string.Join(", ", session.InputNames)}); an image model needs exactly one.");
        }

        var name = session.InputNames[0];
        var meta = session.InputMetadata[name];
        var type = meta.ElementDataType switch
        {
            TensorElementType.Float => InputElementType.Float32,
            TensorElementType.UInt8 => InputElementType.UInt8,
            TensorElementType.Int8 => InputElementType.Int8,
            _ => throw new ModelLoadException($"Model '{options.Id}' ({options.Path}): input '{name}' is {meta.ElementDataType}; float32, uint8 or int8 expected."),
        };

        var dims = meta.Dimensions;
        var expected = options.ExpectedInputShape;
        if (expected is null)
        {
            if (dims.Skip(1).Any(d => d <= 0))
            {
                throw new ModelLoadException(
                    $"Model '{options.Id}' ({options.Path}): input '{name}' has shape {FormatShape(meta, dims)} with dynamic spatial dimensions; configure the preprocessing size.");
            }

            return (Array.ConvertAll(dims, d => d > 0 ? (long)d : 1L), type);
        }

        var matches = dims.Length == expected.Count;
        for (var i = 0; matches && i < dims.Length; i++)
        {
            matches = dims[i] <= 0 || dims[i] == expected[i];
        }

        // A fixed batch above 1 ([16, 3, 32, 32]) where one image is expected: fed padded, one frame in slot 0.
        var paddedBatch = !matches && dims.Length == expected.Count && dims.Length > 1 && dims[0] > 1 && expected[0] == 1
            && dims.Skip(1).Zip(expected.Skip(1), (d, e) => d <= 0 || d == e).All(m => m);
        if (paddedBatch)
        {
            return ([dims[0], .. expected.Skip(1)], type);
        }

        if (!matches)
        {
            throw new ModelLoadException(
                $"Model '{options.Id}' ({options.Path}): input '{name}' has shape {FormatShape(meta, dims)} but {options.ExpectedInputDescription} produces {FormatShape(expected)}.");
        }

        return ([.. expected], type);
    }

    /// <summary>Creates the session on the first usable provider in the preference order (CPU last), logging every provider passed over; no warm-up run.</summary>
    internal static (InferenceSession Session, string Provider, string? FallbackReason) CreateSession(ModelSessionOptions options, ILogger logger)
    {
        var (session, choice) = ProviderSelection.Open(options, logger, static (session, choice) => (session, choice));
        return (session, choice.ExecutionProvider, choice.FallbackReason);
    }

    internal static string ComputeSha256(ModelSessionOptions options)
    {
        try
        {
            return ModelFiles.Sha256(options.Path, ModelFiles.MaxModelBytes);
        }
        catch (IOException ex)
        {
            throw new ModelLoadException($"Model '{options.Id}': cannot read '{options.Path}': {ex.Message}", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new ModelLoadException($"Model '{options.Id}': cannot read '{options.Path}': {ex.Message}", ex);
        }
    }

    private static long ShapeSize(IReadOnlyList<long> shape)
    {
        long size = 1;
        foreach (var d in shape)
        {
            size = checked(size * d);
        }

        return size;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {ModelId} takes a fixed batch of {Batch}: each frame fills the first slot, the other {Padding} are zero padding whose outputs are ignored (the model does that much more work per frame)")]
    private static partial void LogPaddedBatch(ILogger logger, string modelId, int batch, int padding);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {ModelId} loaded from {Path} on {ExecutionProvider}, input {InputShape}, sha256 {Sha256}")]
    private static partial void LogLoaded(ILogger logger, string modelId, string path, string executionProvider, string inputShape, string sha256);
}
