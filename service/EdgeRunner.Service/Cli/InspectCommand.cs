using System.CommandLine;
using System.Globalization;
using System.Text;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Models.Sequence;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.Service.Cli;

/// <summary>
/// <c>edgerunner inspect MODEL</c>: what a field engineer needs before writing a configuration for an
/// ONNX file — whether this ONNX Runtime can load it at all (and if not, its reason, verbatim), its
/// inputs and outputs, the recurrent state pairs the runner would infer, and the inputs that need a
/// constant value.
/// </summary>
internal static class InspectCommand
{
    /// <summary>Exit code when the model cannot be read or loaded (sysexits EX_DATAERR).</summary>
    public const int ModelError = 65;

    public static Command Create()
    {
        var model = new Argument<FileInfo>("model") { Description = "An .onnx file, or a model manifest (model.json)." };
        var command = new Command("inspect", "Load a model with this ONNX Runtime and print its inputs, outputs and inferred state pairs, or why it cannot be loaded.")
        {
            model,
        };
        command.SetAction(parse =>
        {
            var (code, text) = Run(parse.GetValue(model)!.FullName);
            (code == 0 ? Console.Out : Console.Error).Write(text);
            return code;
        });
        return command;
    }

    /// <summary>The report (or the error) and the exit code.</summary>
    internal static (int ExitCode, string Text) Run(string path)
    {
        var text = new StringBuilder();
        var modelPath = path;
        string? manifestDecoder = null;
        ModelManifest? sequenceManifest = null;
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                var manifest = ModelManifest.Load(path);
                manifestDecoder = string.Equals(manifest.Task, "detection", StringComparison.OrdinalIgnoreCase) ? manifest.Postprocess?.Kind : null;
                manifest.VerifySha256();
                sequenceManifest = manifest is { Stream: not null, Postprocess.Output: not null } ? manifest : null;
                modelPath = manifest.ModelPath;
                text.AppendLine(CultureInfo.InvariantCulture, $"manifest: {manifest.ManifestPath} (task {manifest.Task}, SHA-256 verified)");
            }
            catch (ManifestException ex)
            {
                return (ModelError, $"edgerunner: {ex.Message}\n");
            }
        }

        // A device or a FIFO is refused before it is opened: /dev/zero would otherwise be hashed forever.
        if (ModelFiles.Problem(modelPath, ModelFiles.MaxModelBytes) is { } problem)
        {
            return (ModelError, $"edgerunner: model file '{modelPath}' {problem}\n");
        }

        string sha256;
        try
        {
            sha256 = ModelFiles.Sha256(modelPath, ModelFiles.MaxModelBytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (ModelError, $"edgerunner: cannot read '{modelPath}': {ex.Message}\n");
        }

        text.AppendLine(CultureInfo.InvariantCulture, $"model: {modelPath}");
        text.AppendLine(CultureInfo.InvariantCulture, $"sha256: {sha256}");
        InferenceSession session;
        try
        {
            // ONNX Runtime's own log line would repeat the error this command prints.
            OnnxRuntimeLog.EnsureEnvironment();
            using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
            session = new InferenceSession(modelPath, options);
        }
        catch (OnnxRuntimeException ex)
        {
            // ONNX Runtime's own reason (e.g. "Batchwise recurrent operations (layout == 1) are not supported") is the useful part.
            return (ModelError, $"edgerunner: ONNX Runtime {OrtEnv.Instance().GetVersionString()} cannot load '{modelPath}' on the CPU provider: {ex.Message}\n");
        }

        using (session)
        {
            var metadata = session.ModelMetadata;
            text.AppendLine(CultureInfo.InvariantCulture, $"producer: {metadata.ProducerName}, graph {metadata.GraphName}");
            text.AppendLine("inputs:");
            foreach (var (name, meta) in session.InputMetadata)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"  {name}: {Describe(meta)}");
            }

            text.AppendLine("outputs:");
            foreach (var (name, meta) in session.OutputMetadata)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"  {name}: {Describe(meta)}");
            }

            if (ImageInputSize(session) is var (width, height))
            {
                text.Append(DecoderSuggestion(session, width, height, manifestDecoder));
            }

            // State pairs by name only (as the runner tries them first): without a configuration it is
            // unknown which input takes the samples, so the shape fallback is not attempted here.
            var outputs = session.OutputMetadata.Select(o => new TensorDeclaration(o.Key, o.Value.Dimensions)).ToList();
            var pairs = new List<string>();
            var constants = new List<string>();
            foreach (var (name, meta) in session.InputMetadata)
            {
                if (meta.ElementDataType != Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float)
                {
                    constants.Add($"{name} ({meta.ElementDataType} {Shape(meta)})");
                    continue;
                }

                try
                {
                    if (StatePairInference.MatchByName(new TensorDeclaration(name, meta.Dimensions), outputs, [], modelPath) is { } pair)
                    {
                        var fixedBatch = meta.Dimensions.All(d => d > 0) ? ", fixed batch: one stream per run" : string.Empty;
                        pairs.Add($"{pair.Input} → {pair.Output} (batch axis {pair.BatchAxis}{fixedBatch}; rule {pair.Rule})");
                    }
                }
                catch (EdgeRunner.Models.Inference.ModelLoadException ex)
                {
                    pairs.Add($"{name}: {ex.Message}");
                }
            }

            text.AppendLine(pairs.Count > 0 ? "state pairs by name:" : "state pairs by name: none (stateless, or name them in the manifest)");
            foreach (var pair in pairs)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"  {pair}");
            }

            if (constants.Count > 0)
            {
                text.AppendLine("non-float inputs (give them constant_inputs in the manifest):");
                foreach (var constant in constants)
                {
                    text.AppendLine(CultureInfo.InvariantCulture, $"  {constant}");
                }
            }
        }

        // A sequence manifest: its stream input as the daemon would feed it (batch axis, layout), or why it cannot be.
        if (sequenceManifest is not null)
        {
            var (fits, stream) = Sensors.SequenceProcessorFactory.DescribeStream(sequenceManifest);
            text.AppendLine(stream);
            if (!fits)
            {
                return (ModelError, text.ToString());
            }
        }

        return (0, text.ToString());
    }

    /// <summary>
    /// Which detection decoder the output shapes point to (for the image input's size, which tells YOLOX from
    /// YOLOv5), so a configuration can name it; with a manifest that names another, both are shown.
    /// </summary>
    private static string DecoderSuggestion(InferenceSession session, int width, int height, string? manifestDecoder)
    {
        var shapes = session.OutputMetadata.Select(o => (IReadOnlyList<long>)Array.ConvertAll(o.Value.Dimensions, d => d > 0 ? (long)d : 1L)).ToList();
        var inferred = DetectionDecoders.InferKind(shapes, [.. session.OutputMetadata.Keys], width, height);
        var text = new StringBuilder();
        text.AppendLine(inferred.Kind is { } kind
            ? $"detection decoder: {kind} ({inferred.Explanation})"
            : $"detection decoder: none inferred, if this is a detector ({inferred.Explanation})");
        if (manifestDecoder is { Length: > 0 } && inferred.Kind is { } suggested && !string.Equals(manifestDecoder, suggested, StringComparison.OrdinalIgnoreCase))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  note: the manifest's postprocess.kind is '{manifestDecoder}', the shapes suggest '{suggested}'");
        }

        return text.ToString();
    }

    /// <summary>Width and height of the first rank-4 input with 1 or 3 channels (NCHW, else NHWC), or null for a non-image model.</summary>
    private static (int Width, int Height)? ImageInputSize(InferenceSession session)
    {
        foreach (var meta in session.InputMetadata.Values)
        {
            var d = meta.Dimensions;
            if (d.Length != 4)
            {
                continue;
            }

            if (d[1] is 1 or 3 && d[2] > 0 && d[3] > 0)
            {
                return (d[3], d[2]);
            }

            if (d[3] is 1 or 3 && d[1] > 0 && d[2] > 0)
            {
                return (d[2], d[1]);
            }
        }

        return null;
    }

    private static string Describe(NodeMetadata meta) => $"{meta.ElementDataType} {Shape(meta)}";

    private static string Shape(NodeMetadata meta) =>
        "[" + string.Join(", ", meta.Dimensions.Select((d, i) => d > 0
            ? d.ToString(CultureInfo.InvariantCulture)
            : (meta.SymbolicDimensions is { } symbolic && i < symbolic.Length && symbolic[i].Length > 0 ? symbolic[i] : "?"))) + "]";
}
