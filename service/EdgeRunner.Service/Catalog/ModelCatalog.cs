using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Preprocessing;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Catalog;

/// <summary>A configured model with its manifest (if any) folded in: everything a pipeline needs to load and run it.</summary>
internal sealed record ResolvedModel
{
    public required string Id { get; init; }

    public required string Path { get; init; }

    public required ModelTask Task { get; init; }

    public required ModelOptions Options { get; init; }

    /// <summary>The manifest, when the model came with one.</summary>
    public ModelManifest? Manifest { get; init; }

    /// <summary>Image models: how frames become the input tensor.</summary>
    public ImagePreprocessingSpec? Image { get; init; }

    /// <summary>Labels from the manifest, or null to read <see cref="ModelOptions.Labels"/>.</summary>
    public IReadOnlyList<string>? Labels { get; init; }

    /// <summary>Detection decoder kind (yolov8, …), empty to infer from the output shapes.</summary>
    public string DetectionDecoder { get; init; } = string.Empty;

    public float ScoreThreshold { get; init; } = 0.25f;

    public float IouThreshold { get; init; } = 0.45f;

    public int MaxDetections { get; init; } = 100;

    /// <summary>YOLOX raw grid: true/false as configured (configuration over manifest), null to infer.</summary>
    public bool? RawGrid { get; init; }

    /// <summary>Where the configuration of this model lives, for error messages.</summary>
    public string ConfigKey => $"Models:{Id}";

    /// <summary>The highest inferred-frame rate of the enabled cameras that use this model; 0 = none or unknown (<see cref="ModelRunRates"/>).</summary>
    public double CameraFramesPerSecond { get; init; }

    /// <summary>How many enabled sensor streams use this model; 0 = none or unknown (<see cref="ModelRunRates"/>).</summary>
    public int SensorStreams { get; init; }
}

/// <summary>Resolves <c>Models</c> entries (and their manifests) once; validation and pipelines share the result.</summary>
internal sealed class ModelCatalog(IOptions<ModelsOptions> models, ModelRunRates rates)
{
    private readonly Dictionary<string, ResolvedModel> _resolved = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The model named <paramref name="name"/>. Throws <see cref="StartupException"/> (exit 78) naming the key when it cannot be resolved.</summary>
    public ResolvedModel Get(string name)
    {
        lock (_resolved)
        {
            if (!_resolved.TryGetValue(name, out var model))
            {
                if (!models.Value.TryGetValue(name, out var options))
                {
                    throw new StartupException($"Models:{name}: no such model", StartupException.ConfigError);
                }

                model = WithRunRates(Resolve(name, options));
                _resolved[name] = model;
            }

            return model;
        }
    }

    /// <summary>After a reload swapped <paramref name="model"/> in: what streams and cameras created from now on get.</summary>
    public void Replace(ResolvedModel model)
    {
        lock (_resolved)
        {
            _resolved[model.Id] = model;
        }
    }

    /// <summary>
    /// <paramref name="model"/> with the load this configuration puts on it (<see cref="ResolvedModel.CameraFramesPerSecond"/>,
    /// <see cref="ResolvedModel.SensorStreams"/>), which the spinning choice needs when it is loaded (again).
    /// </summary>
    public ResolvedModel WithRunRates(ResolvedModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model with { CameraFramesPerSecond = rates.CameraFramesPerSecond(model.Id), SensorStreams = rates.SensorStreams(model.Id) };
    }

    /// <summary>Builds the resolved view of one entry. Throws <see cref="StartupException"/> naming the key.</summary>
    public static ResolvedModel Resolve(string name, ModelOptions options)
    {
        var key = $"Models:{name}";
        if (string.IsNullOrEmpty(options.Manifest))
        {
            var task = options.Task ?? ModelTask.Classification;
            return new ResolvedModel
            {
                Id = name,
                Path = options.Path,
                Task = task,
                Options = options,
                Image = task.IsSequence() ? null : (options.Preprocess ?? new PreprocessOptions()).ToSpec(),
                DetectionDecoder = options.Detection?.Decoder ?? string.Empty,
                ScoreThreshold = options.Detection?.ScoreThreshold ?? 0.25f,
                IouThreshold = options.Detection?.IouThreshold ?? 0.45f,
                MaxDetections = options.Detection?.MaxDetections ?? 100,
                RawGrid = options.Detection?.RawGrid,
            };
        }

        ModelManifest manifest;
        try
        {
            manifest = ModelManifest.Load(options.Manifest);
        }
        catch (ManifestException ex)
        {
            throw new StartupException($"{key}:Manifest: {ex.Message}", StartupException.ConfigError, ex);
        }

        var manifestTask = manifest.Task.Replace("_", string.Empty, StringComparison.Ordinal).ToLowerInvariant() switch
        {
            "classification" => ModelTask.Classification,
            "detection" => ModelTask.Detection,
            "sequenceclassification" => ModelTask.SequenceClassification,
            "sequencescore" => ModelTask.SequenceScore,
            "sequenceforecast" => ModelTask.SequenceForecast,
            "sequencereconstruction" => ModelTask.SequenceReconstruction,
            _ => throw new StartupException($"{key}:Manifest: '{manifest.ManifestPath}' has unknown task '{manifest.Task}'", StartupException.ConfigError),
        };

        if (manifestTask.IsSequence() && SequenceManifestProblem(manifestTask, manifest) is { } problem)
        {
            throw new StartupException($"{key}:Manifest: '{manifest.ManifestPath}': {problem}", StartupException.ConfigError);
        }

        ImagePreprocessingSpec? image = null;
        if (!manifestTask.IsSequence())
        {
            if (manifest.Preprocess is null)
            {
                throw new StartupException($"{key}:Manifest: '{manifest.ManifestPath}' has no preprocess section for an image model", StartupException.ConfigError);
            }

            try
            {
                image = manifest.Preprocess.ToSpec();
            }
            catch (ManifestException ex)
            {
                throw new StartupException($"{key}:Manifest: '{manifest.ManifestPath}': {ex.Message}", StartupException.ConfigError, ex);
            }
        }

        var post = manifest.Postprocess;
        return new ResolvedModel
        {
            Id = name,
            Path = manifest.ModelPath,
            Task = manifestTask,
            Options = options,
            Manifest = manifest,
            Image = image,
            Labels = manifest.Labels.Count > 0 ? manifest.Labels : null,
            DetectionDecoder = options.Detection?.Decoder is { Length: > 0 } decoder ? decoder : (manifestTask == ModelTask.Detection ? post?.Kind ?? string.Empty : string.Empty),
            ScoreThreshold = options.Detection?.ScoreThreshold ?? post?.ScoreThreshold ?? 0.25f,
            IouThreshold = options.Detection?.IouThreshold ?? post?.IouThreshold ?? 0.45f,
            MaxDetections = options.Detection?.MaxDetections ?? post?.MaxDetections ?? 100,
            RawGrid = options.Detection?.RawGrid ?? post?.RawGrid,
        };
    }

    /// <summary>What is wrong with a sequence model's stream and trigger settings, or null.</summary>
    private static string? SequenceManifestProblem(ModelTask task, ModelManifest manifest)
    {
        // JSON null gets past the serializer's non-nullable declaration.
        if (manifest.StateCompatibleWith is null)
        {
            return "state_compatible_with must be a list of SHA-256 strings";
        }

        foreach (var sha in manifest.StateCompatibleWith)
        {
            if (sha is not { Length: 64 } || !sha.All(char.IsAsciiHexDigit))
            {
                return $"state_compatible_with: '{sha}' is not a SHA-256 (64 hexadecimal digits)";
            }
        }

        if (manifest.Stream is { } stream)
        {
            if (stream.ChunkSamples < 1)
            {
                return $"stream.chunk_samples must be at least 1 (got {stream.ChunkSamples})";
            }

            if (stream.ContextSamples < 0)
            {
                return $"stream.context_samples must not be negative (got {stream.ContextSamples})";
            }

            if (!(stream.SampleRateHz > 0))
            {
                return $"stream.sample_rate_hz must be positive (got {stream.SampleRateHz})";
            }

            // An audio front end's settings, and its fit with the stream (one channel, whole hops per chunk).
            try
            {
                _ = EdgeRunner.Models.Audio.AudioFrontEndSpec.From(stream);
            }
            catch (ManifestException ex)
            {
                return ex.Message;
            }
        }

        if (manifest.Postprocess is not { } post)
        {
            return null;
        }

        if (post.Threshold is { } threshold)
        {
            if (task == ModelTask.SequenceClassification)
            {
                return "postprocess.threshold applies to sequence_score, sequence_forecast and sequence_reconstruction models, not to classification";
            }

            if (!double.IsFinite(threshold))
            {
                return "postprocess.threshold must be a finite number";
            }

            if (post.ClearThreshold is { } clear && !(clear <= threshold))
            {
                return $"postprocess.clear_threshold ({clear}) must not be above postprocess.threshold ({threshold})";
            }
        }
        else if (post.ClearThreshold is not null)
        {
            return "postprocess.clear_threshold needs a postprocess.threshold";
        }

        return post.RaiseSteps < 1 || post.ClearSteps < 1
            ? $"postprocess.raise_steps and clear_steps must be at least 1 (got {post.RaiseSteps} and {post.ClearSteps})"
            : null;
    }
}
