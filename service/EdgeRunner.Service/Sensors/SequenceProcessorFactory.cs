using EdgeRunner.Hardware.Supervision;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Catalog;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// Loads a sequence model and builds its per-stream processors and its step batcher from the
/// configuration (as <see cref="Vision.VisionProcessorFactory"/> does for image models): the
/// algorithms live in <c>models/</c>; this turns their errors into startup errors naming the key.
/// </summary>
internal static class SequenceProcessorFactory
{
    /// <summary>
    /// A processor for stream <paramref name="streamId"/> on the loaded <paramref name="model"/>. A model
    /// that does not fit its manifest's stream or labels throws <see cref="StartupException"/> (exit 78);
    /// bad trigger settings throw <see cref="ArgumentException"/> (the caller names the key).
    /// </summary>
    public static SequenceStreamProcessor CreateProcessor(string streamId, ResolvedModel resolved, SequenceModel model, object modelLock, StepBatcher? batcher)
    {
        var manifest = resolved.Manifest!;
        return CreateProcessor(streamId, model, modelLock, manifest.Stream!, manifest.Labels, batcher, SequenceOutputSpec.From(resolved.Task, manifest.Postprocess));
    }

    /// <summary>As <see cref="CreateProcessor(string, ResolvedModel, SequenceModel, object, StepBatcher?)"/>, from the manifest's parts.</summary>
    public static SequenceStreamProcessor CreateProcessor(string streamId, SequenceModel model, object modelLock, ManifestStreamInput stream, IReadOnlyList<string> labels, StepBatcher? batcher = null, SequenceOutputSpec? output = null)
    {
        try
        {
            return new SequenceStreamProcessor(streamId, model, modelLock, stream, labels, batcher, output);
        }
        catch (ManifestException ex)
        {
            // The message already names the model and both sizes.
            throw new StartupException(ex.Message, StartupException.ConfigError, ex);
        }
    }

    /// <summary>The batcher of one model's streams, restarting its worker after the code base's one backoff rule.</summary>
    public static StepBatcher CreateBatcher(SequenceModel model, ResolvedModel resolved, TimeProvider timeProvider) =>
        new(
            model,
            resolved.Options.MaxBatch,
            TimeSpan.FromMilliseconds(resolved.Options.BatchWaitMilliseconds),
            timeProvider,
            failuresInARow => Backoff.Exponential(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10), failuresInARow));

    /// <summary>Loads a sequence model from its manifest. Throws <see cref="StartupException"/> naming <paramref name="owner"/>.</summary>
    public static SequenceModel LoadModel(ResolvedModel resolved, string owner, ILoggerFactory loggerFactory)
    {
        var manifest = resolved.Manifest;
        if (!resolved.Task.IsSequence() || manifest?.Stream is null || manifest.Postprocess?.Output is null)
        {
            throw new StartupException(
                $"{owner}:Model: '{resolved.Id}' is not a sequence model with a manifest 'stream' section and postprocess output",
                StartupException.ConfigError);
        }

        try
        {
            manifest.VerifySha256();
            var stream = manifest.Stream;

            // Sources at another rate are resampled to the model's: each stream steps at the manifest's rate / chunk.
            var stepsPerSecond = resolved.SensorStreams * (stream.ChunkSamples > 0 ? stream.SampleRateHz / stream.ChunkSamples : 0);
            return SpinningPolicy.Load(
                resolved.Id,
                resolved.Options.Spinning,
                stepsPerSecond > 0 ? stepsPerSecond : null,
                allowSpinning => SequenceModel.Load(
                new SequenceModelOptions
                {
                    AllowSpinning = allowSpinning,
                    Id = resolved.Id,
                    Path = resolved.Path,
                    StreamInput = stream.Input,
                    StreamBatchAxis = stream.BatchAxis,
                    // Frames × features when the stream declares an audio front end.
                    ValuesPerStep = EdgeRunner.Models.Audio.AudioFrontEndSpec.ValuesPerStep(stream),
                    ResultOutput = manifest.Postprocess.Output,
                    ResultBatchAxis = manifest.Postprocess.BatchAxis,
                    State = manifest.State is { } state ? [.. state.Select(p => (p.Input, p.Output, p.BatchAxis))] : null,
                    ConstantInputs = ConstantValues(manifest),
                    ExecutionProviders = resolved.Options.ExecutionProviders ?? ["cpu"],
                    AllowFallback = resolved.Options.AllowFallback,
                    DeviceId = resolved.Options.DeviceId,
                    ProviderSettings = resolved.Options.ProviderOptions.ToSettings(),
                    IntraOpThreads = resolved.Options.IntraOpThreads,
                },
                loggerFactory.CreateLogger<SequenceModel>()),
                static model =>
                {
                    var state = model.CreateState("spinning-probe");
                    model.Step(state, new float[model.ChunkLength], new float[model.ResultLength]);
                },
                loggerFactory.CreateLogger("EdgeRunner.Sensors"));
        }
        catch (Exception ex) when (ex is ModelLoadException or ManifestException)
        {
            throw new StartupException($"{owner}: {ex.Message}", StartupException.ConfigError, ex);
        }
    }

    /// <summary>
    /// For <c>inspect</c>: how the daemon would feed a sequence manifest's stream input (on the CPU) — the
    /// values per step and the layout in effect — or why it cannot (a fixed dimension on the batch axis, a
    /// layout that does not fit the input's shape, sizes that disagree): (false, the reason).
    /// </summary>
    internal static (bool Fits, string Text) DescribeStream(ModelManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var stream = manifest.Stream!;
        var task = manifest.Task.Replace("_", string.Empty, StringComparison.Ordinal).ToLowerInvariant() switch
        {
            "sequencescore" => ModelTask.SequenceScore,
            "sequenceforecast" => ModelTask.SequenceForecast,
            "sequencereconstruction" => ModelTask.SequenceReconstruction,
            _ => ModelTask.SequenceClassification,
        };
        try
        {
            using var model = SequenceModel.Load(
                new SequenceModelOptions
                {
                    Id = manifest.Id,
                    Path = manifest.ModelPath,
                    StreamInput = stream.Input,
                    StreamBatchAxis = stream.BatchAxis,
                    ValuesPerStep = stream.Channels.Count * (stream.ChunkSamples + stream.ContextSamples),
                    ResultOutput = manifest.Postprocess!.Output!,
                    ResultBatchAxis = manifest.Postprocess.BatchAxis,
                    State = manifest.State is { } state ? [.. state.Select(p => (p.Input, p.Output, p.BatchAxis))] : null,
                    ConstantInputs = ConstantValues(manifest),
                },
                Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            var processor = new SequenceStreamProcessor("inspect", model, new object(), stream, manifest.Labels, output: SequenceOutputSpec.From(task, manifest.Postprocess));
            var batch = stream.BatchAxis < 0 ? "no batch axis (one stream per run)" : model.MaxBatch == 1 ? $"batch axis {stream.BatchAxis}, fixed batch: one stream per run" : $"batch axis {stream.BatchAxis}";
            return (true, string.Create(
                System.Globalization.CultureInfo.InvariantCulture,
                $"stream: input '{stream.Input}' takes {model.ChunkLength} values per step ({processor.Channels} channels × {stream.ChunkSamples + stream.ContextSamples} samples, step shape [{string.Join(", ", model.ChunkShape)}]), {batch}, layout {StreamLayouts.Describe(processor.Layout, processor.LayoutGuessed)}"));
        }
        catch (Exception ex) when (ex is ModelLoadException or ManifestException)
        {
            return (false, $"stream: {ex.Message}");
        }
    }

    /// <summary>The manifest's constant inputs as numbers (a JSON number, boolean, or array of them).</summary>
    private static Dictionary<string, double[]> ConstantValues(ModelManifest manifest)
    {
        var constants = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var (name, value) in manifest.ConstantInputs ?? new Dictionary<string, System.Text.Json.JsonElement>())
        {
            static double Number(System.Text.Json.JsonElement e, string name, string path) => e.ValueKind switch
            {
                System.Text.Json.JsonValueKind.Number => e.GetDouble(),
                System.Text.Json.JsonValueKind.True => 1,
                System.Text.Json.JsonValueKind.False => 0,
                _ => throw new ManifestException($"Manifest '{path}': constant_inputs.{name} must be a number, a boolean or an array of them."),
            };

            constants[name] = value.ValueKind == System.Text.Json.JsonValueKind.Array
                ? [.. value.EnumerateArray().Select(e => Number(e, name, manifest.ManifestPath))]
                : [Number(value, name, manifest.ManifestPath)];
        }

        return constants;
    }
}
