using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeRunner.Models.Manifests;

/// <summary>
/// A model's <c>model.json</c> (see docs/model-manifest.md): what the model takes and gives, how to
/// pre- and post-process, its labels, its recurrent state pairs, its checksum and provenance.
/// </summary>
public sealed record ModelManifest
{
    /// <summary>Schema version (1).</summary>
    public int Schema { get; init; } = 1;

    /// <summary>Model id.</summary>
    public required string Id { get; init; }

    /// <summary>The .onnx file, relative to the manifest.</summary>
    public required string File { get; init; }

    /// <summary>Lowercase hex SHA-256 of <see cref="File"/>.</summary>
    public required string Sha256 { get; init; }

    /// <summary>classification, detection, or a sequence task: sequence_classification, sequence_score, sequence_forecast, sequence_reconstruction.</summary>
    public required string Task { get; init; }

    /// <summary>Model inputs.</summary>
    public IReadOnlyList<ManifestTensor> Inputs { get; init; } = [];

    /// <summary>Model outputs.</summary>
    public IReadOnlyList<ManifestTensor> Outputs { get; init; } = [];

    /// <summary>Class names by id.</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];

    /// <summary>Image preprocessing (image models).</summary>
    public ManifestPreprocess? Preprocess { get; init; }

    /// <summary>How outputs are decoded.</summary>
    public ManifestPostprocess? Postprocess { get; init; }

    /// <summary>Recurrent state: input → output pairs.</summary>
    public IReadOnlyList<ManifestStatePair>? State { get; init; }

    /// <summary>
    /// SHA-256 of earlier versions of this model whose recurrent state this one can carry on (same
    /// architecture and state layout, e.g. retrained weights): their checkpoints are restored instead
    /// of starting the streams afresh.
    /// </summary>
    public IReadOnlyList<string> StateCompatibleWith { get; init; } = [];

    /// <summary>Inputs fed the same value every step (e.g. <c>{"sr": 16000}</c>): a number or an array of numbers, any element type.</summary>
    public IReadOnlyDictionary<string, JsonElement>? ConstantInputs { get; init; }

    /// <summary>Streaming input description (sequence models).</summary>
    public ManifestStreamInput? Stream { get; init; }

    /// <summary>How the model was quantized, if it was.</summary>
    public JsonElement? Quantization { get; init; }

    /// <summary>How it was built (script, seed, data, figures).</summary>
    public JsonElement? Provenance { get; init; }

    /// <summary>Full path of the .onnx file (set by <see cref="Load"/>).</summary>
    [JsonIgnore]
    public string ModelPath { get; init; } = string.Empty;

    /// <summary>Full path of the manifest (set by <see cref="Load"/>).</summary>
    [JsonIgnore]
    public string ManifestPath { get; init; } = string.Empty;

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Reads and checks a manifest; the model file must exist. Throws <see cref="ManifestException"/> naming the file and the problem.</summary>
    public static ModelManifest Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var fullPath = System.IO.Path.GetFullPath(path);
        if (Inference.ModelFiles.Problem(fullPath, Inference.ModelFiles.MaxTextBytes) is { } problem)
        {
            throw new ManifestException($"Manifest '{fullPath}' {problem}.");
        }

        ModelManifest? manifest;
        try
        {
            var bytes = Inference.ModelFiles.ReadAllBytes(fullPath, Inference.ModelFiles.MaxTextBytes);

            // Unknown keys and values of the wrong kind first, with the key's path, the known keys there and the likely
            // typo (ManifestKeyChecker), rather than the serializer's "could not be mapped to any .NET member contained in type …".
            using (var document = JsonDocument.Parse(bytes, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }))
            {
                if (ManifestKeyChecker.Problems(document.RootElement) is { Count: > 0 } unknown)
                {
                    throw new ManifestException($"Manifest '{fullPath}': {string.Join("; ", unknown)}");
                }
            }

            manifest = JsonSerializer.Deserialize<ModelManifest>(bytes, Options);
        }
        catch (JsonException ex)
        {
            throw new ManifestException($"Manifest '{fullPath}': {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ManifestException($"Manifest '{fullPath}': cannot read: {ex.Message}", ex);
        }

        if (manifest is null)
        {
            throw new ManifestException($"Manifest '{fullPath}' is empty.");
        }

        var modelPath = System.IO.Path.GetFullPath(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(fullPath)!, manifest.File));
        if (Inference.ModelFiles.Problem(modelPath, Inference.ModelFiles.MaxModelBytes) is { } modelProblem)
        {
            throw new ManifestException($"Manifest '{fullPath}': model file '{modelPath}' {modelProblem}.");
        }

        foreach (var pair in manifest.State ?? [])
        {
            if (manifest.Inputs.All(i => i.Name != pair.Input) || manifest.Outputs.All(o => o.Name != pair.Output))
            {
                throw new ManifestException($"Manifest '{fullPath}': state pair {pair.Input} → {pair.Output} names a tensor that is not among the inputs/outputs.");
            }
        }

        return manifest with { ModelPath = modelPath, ManifestPath = fullPath };
    }

    /// <summary>Throws <see cref="ManifestException"/> when the model file's SHA-256 differs from the manifest's.</summary>
    public string VerifySha256()
    {
        string actual;
        try
        {
            // Bounded: the file was a regular one within the limit when loaded, but may have been replaced since.
            actual = Inference.ModelFiles.Sha256(ModelPath, Inference.ModelFiles.MaxModelBytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ManifestException($"Model '{ModelPath}' of manifest '{ManifestPath}' cannot be read: {ex.Message}", ex);
        }

        if (!string.Equals(actual, Sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new ManifestException($"Model '{ModelPath}' has SHA-256 {actual} but its manifest '{ManifestPath}' says {Sha256}: the file was changed or replaced.");
        }

        return actual;
    }
}

/// <summary>A tensor's name, element type and shape (numbers, or strings for symbolic dimensions).</summary>
public sealed record ManifestTensor
{
    /// <summary>Tensor name in the ONNX graph.</summary>
    public required string Name { get; init; }

    /// <summary>Element type, e.g. float32.</summary>
    public string Dtype { get; init; } = "float32";

    /// <summary>Dimensions: numbers, or names for symbolic dimensions.</summary>
    public IReadOnlyList<JsonElement> Shape { get; init; } = [];

    /// <summary>Dimension <paramref name="axis"/> as a number, or null when symbolic.</summary>
    public long? Dimension(int axis) => Shape[axis].ValueKind == JsonValueKind.Number ? Shape[axis].GetInt64() : null;
}

/// <summary>Image preprocessing as stored in a manifest.</summary>
public sealed record ManifestPreprocess
{
    /// <summary>Input width.</summary>
    public int Width { get; init; }

    /// <summary>Input height.</summary>
    public int Height { get; init; }

    /// <summary>stretch, center_crop or letterbox.</summary>
    public string Resize { get; init; } = "stretch";

    /// <summary>center_crop: shorter side before cropping.</summary>
    public int ResizeShorterSide { get; init; }

    /// <summary>letterbox padding in pixel units.</summary>
    public float PadValue { get; init; } = 114;

    /// <summary>rgb or bgr.</summary>
    public string ColorOrder { get; init; } = "rgb";

    /// <summary>nchw or nhwc.</summary>
    public string Layout { get; init; } = "nchw";

    /// <summary>Pixel multiplier.</summary>
    public float Scale { get; init; } = 1f / 255f;

    /// <summary>Per-channel mean.</summary>
    public IReadOnlyList<float> Mean { get; init; } = [0f, 0f, 0f];

    /// <summary>Per-channel std.</summary>
    public IReadOnlyList<float> Std { get; init; } = [1f, 1f, 1f];

    /// <summary>The equivalent <see cref="Preprocessing.ImagePreprocessingSpec"/>.</summary>
    public Preprocessing.ImagePreprocessingSpec ToSpec() => new()
    {
        Width = Width,
        Height = Height,
        Resize = Resize.Replace("_", string.Empty, StringComparison.Ordinal).ToLowerInvariant() switch
        {
            "stretch" => Preprocessing.ResizeMode.Stretch,
            "centercrop" => Preprocessing.ResizeMode.CenterCrop,
            "letterbox" => Preprocessing.ResizeMode.Letterbox,
            _ => throw new ManifestException($"Unknown preprocess resize '{Resize}' (stretch, center_crop, letterbox)."),
        },
        ResizeShorterSide = ResizeShorterSide,
        PadValue = PadValue,
        ChannelOrder = ColorOrder.ToLowerInvariant() switch
        {
            "rgb" => Preprocessing.ChannelOrder.Rgb,
            "bgr" => Preprocessing.ChannelOrder.Bgr,
            _ => throw new ManifestException($"Unknown color_order '{ColorOrder}' (rgb, bgr)."),
        },
        Layout = Layout.ToLowerInvariant() switch
        {
            "nchw" => Preprocessing.TensorLayout.Nchw,
            "nhwc" => Preprocessing.TensorLayout.Nhwc,
            _ => throw new ManifestException($"Unknown layout '{Layout}' (nchw, nhwc)."),
        },
        Scale = Scale,
        Mean = Mean,
        Std = Std,
    };
}

/// <summary>Post-processing as stored in a manifest.</summary>
public sealed record ManifestPostprocess
{
    /// <summary>Decoder kind: classification, yolov8, yolov5, yolox, ssd, fastestdet; for sequence models the task's name.</summary>
    public required string Kind { get; init; }

    /// <summary>Detection score threshold.</summary>
    public float ScoreThreshold { get; init; } = 0.25f;

    /// <summary>NMS IoU threshold.</summary>
    public float IouThreshold { get; init; } = 0.45f;

    /// <summary>Maximum detections per frame.</summary>
    public int MaxDetections { get; init; } = 100;

    /// <summary>Output to read (sequence models).</summary>
    public string? Output { get; init; }

    /// <summary>Whether scores still need a softmax.</summary>
    public bool Softmax { get; init; }

    /// <summary>Sequence models: axis of the output along which streams are stacked.</summary>
    public int BatchAxis { get; init; }

    /// <summary>Sequence score/forecast/reconstruction models: score at or above which an event is raised (none when absent).</summary>
    public double? Threshold { get; init; }

    /// <summary>Score below which a raised event clears (hysteresis); default the threshold.</summary>
    public double? ClearThreshold { get; init; }

    /// <summary>Consecutive steps at or above the threshold before raising.</summary>
    public int RaiseSteps { get; init; } = 1;

    /// <summary>Consecutive steps below the clear threshold before clearing.</summary>
    public int ClearSteps { get; init; } = 1;

    /// <summary>Sequence models: publish the output tensor of each step as a number array (<c>output</c> in the result; at most 4096 values).</summary>
    public bool PublishOutput { get; init; }

    /// <summary>YOLOX: true when the output is the raw stride grid (boxes as cell offsets and log sizes), false when decoded; absent = inferred.</summary>
    public bool? RawGrid { get; init; }
}

/// <summary>One recurrent state pair: feed output <see cref="Output"/> back as input <see cref="Input"/>.</summary>
public sealed record ManifestStatePair
{
    /// <summary>State input name.</summary>
    public required string Input { get; init; }

    /// <summary>State output name.</summary>
    public required string Output { get; init; }

    /// <summary>Axis along which streams are stacked when batched.</summary>
    public int BatchAxis { get; init; }
}

/// <summary>How a stream feeds a sequence model.</summary>
public sealed record ManifestStreamInput
{
    /// <summary>The input that takes the samples.</summary>
    public required string Input { get; init; }

    /// <summary>Samples per second the model was trained at.</summary>
    public double SampleRateHz { get; init; }

    /// <summary>Channel names in order.</summary>
    public IReadOnlyList<string> Channels { get; init; } = [];

    /// <summary>Physical units of the samples.</summary>
    public string Units { get; init; } = string.Empty;

    /// <summary>Samples per channel in one step.</summary>
    public int ChunkSamples { get; init; }

    /// <summary>Samples per channel of the previous chunk fed again before each chunk (zeros at the start), e.g. silero-vad's 64.</summary>
    public int ContextSamples { get; init; }

    /// <summary>Axis of the input along which streams are stacked; -1: the input has none (its first dimension is part of one step, e.g. a window of frames).</summary>
    public int BatchAxis { get; init; }

    /// <summary>Per-channel mean subtracted before feeding.</summary>
    public IReadOnlyList<float> Mean { get; init; } = [];

    /// <summary>Per-channel std divided by before feeding.</summary>
    public IReadOnlyList<float> Std { get; init; } = [];

    /// <summary>Audio front end turning the samples into features (STFT, log-mel, MFCC) before the model; none when absent.</summary>
    public ManifestAudioFrontEnd? Frontend { get; init; }

    /// <summary>
    /// How one step's samples lie in the input: <c>auto</c> (the default: guessed from the input's last two
    /// dimensions), <c>feature_time</c> ([channels, samples]), <c>time_feature</c> ([samples, channels]) or
    /// <c>complex_interleaved</c> (two channels, real and imaginary, as the input's last dimension of 2).
    /// Checked against the input's shape at startup and by <c>inspect</c>.
    /// </summary>
    public string Layout { get; init; } = "auto";
}

/// <summary>A manifest is missing, malformed or does not match its model.</summary>
public sealed class ManifestException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ManifestException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public ManifestException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ManifestException()
    {
    }
}
