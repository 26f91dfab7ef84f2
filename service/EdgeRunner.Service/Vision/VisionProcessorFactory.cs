using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Models.Preprocessing;
using EdgeRunner.Service.Catalog;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Vision;

/// <summary>Loads an image model and builds the matching processor (classification or detection head).</summary>
internal static partial class VisionProcessorFactory
{
    /// <summary>Throws <see cref="StartupException"/> (exit 78) naming the model, file and reason.</summary>
    public static VisionFrameProcessor Create(ResolvedModel resolved, string owner, ILoggerFactory loggerFactory)
    {
        var logger = loggerFactory.CreateLogger("EdgeRunner.Vision");
        var spec = resolved.Image ?? throw new StartupException($"{resolved.ConfigKey}: {owner} needs an image model, but the model's task is {resolved.Task}", StartupException.ConfigError);
        ModelSession model;
        try
        {
            if (resolved.Manifest is { } manifest)
            {
                manifest.VerifySha256();
            }

            var rate = resolved.CameraFramesPerSecond;
            model = SpinningPolicy.Load(
                resolved.Id,
                resolved.Options.Spinning,
                rate > 0 ? rate : null,
                allowSpinning => ModelSession.Load(
                new ModelSessionOptions
                {
                    AllowSpinning = allowSpinning,
                    Id = resolved.Id,
                    Path = resolved.Path,
                    ExecutionProviders = resolved.Options.ExecutionProviders ?? ["cpu"],
                    AllowFallback = resolved.Options.AllowFallback,
                    DeviceId = resolved.Options.DeviceId,
                    ProviderSettings = resolved.Options.ProviderOptions.ToSettings(),
                    IntraOpThreads = resolved.Options.IntraOpThreads,
                    ExpectedInputShape = spec.TensorShape(),
                    ExpectedInputDescription = resolved.Manifest is null
                        ? $"{resolved.ConfigKey}:Preprocess ({spec.Width}x{spec.Height} {spec.Layout})"
                        : $"its manifest's preprocessing ({spec.Width}x{spec.Height} {spec.Layout})",
                },
                loggerFactory.CreateLogger<ModelSession>()),
                static session => session.Run(),
                logger);
        }
        catch (Exception ex) when (ex is ModelLoadException or EdgeRunner.Models.Manifests.ManifestException)
        {
            throw new StartupException($"{owner}: {ex.Message}", StartupException.ConfigError, ex);
        }

        try
        {
            IVisionHead head = resolved.Task switch
            {
                ModelTask.Classification => new ClassificationHead(new ClassificationDecoder(
                    Labels(resolved, (int)model.OutputShape(0)[^1], model.OutputNames[0]),
                    resolved.Options.Classification.TopK,
                    resolved.Options.Classification.Softmax,
                    resolved.Options.Classification.MinScore)),
                ModelTask.Detection => CreateDetectionHead(resolved, spec, model, logger),
                _ => throw new StartupException($"{resolved.ConfigKey}: task {resolved.Task} cannot run on a camera", StartupException.ConfigError),
            };
            return new VisionFrameProcessor(model, new ImagePreprocessor(spec), head);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static DetectionHead CreateDetectionHead(ResolvedModel resolved, ImagePreprocessingSpec spec, ModelSession model, ILogger logger)
    {
        var kind = resolved.DetectionDecoder;
        if (string.IsNullOrEmpty(kind))
        {
            var inferred = DetectionDecoders.InferKind(model, spec.Width, spec.Height);
            if (inferred.Kind is null)
            {
                throw new StartupException($"{resolved.ConfigKey}:Detection:Decoder: not set and {inferred.Explanation}", StartupException.ConfigError);
            }

            kind = inferred.Kind;
            LogDecoderInferred(logger, resolved.Id, kind, inferred.Explanation);
        }

        var options = new DetectionDecoderOptions
        {
            ScoreThreshold = resolved.ScoreThreshold,
            IouThreshold = resolved.IouThreshold,
            MaxDetections = resolved.MaxDetections,
            RawGrid = resolved.RawGrid,
        };
        IDetectionDecoder decoder;
        try
        {
            decoder = DetectionDecoders.Create(kind, options, spec.Width, spec.Height, model);
        }
        catch (ArgumentException ex)
        {
            throw new StartupException($"{resolved.ConfigKey}: model '{resolved.Path}' does not fit decoder '{kind}': {ex.Message}", StartupException.ConfigError, ex);
        }

        var labels = resolved.Labels is { } names ? LabelSet.FromNames(names) : Labels(resolved, decoder.ClassCount, model.OutputNames[0]);
        if (decoder is YoloXDecoder yolox)
        {
            LogRawGrid(logger, resolved.Id, yolox.RawGridDecision);
        }

        return new DetectionHead(decoder, labels, resolved.MaxDetections, resolved.Id, logger);
    }

    private static LabelSet Labels(ResolvedModel resolved, int classes, string outputName)
    {
        LabelSet labels;
        if (resolved.Labels is { } names)
        {
            labels = LabelSet.FromNames(names);
        }
        else if (string.IsNullOrEmpty(resolved.Options.Labels))
        {
            return LabelSet.Numbered(classes);
        }
        else
        {
            labels = LabelSet.Load(resolved.Options.Labels);
        }

        if (labels.Count != classes)
        {
            throw new StartupException(
                $"{resolved.ConfigKey}:Labels: {labels.Count} labels but model output '{outputName}' has {classes} classes",
                StartupException.ConfigError);
        }

        return labels;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {ModelId}: no decoder configured; inferred {Kind}: {Explanation}")]
    private static partial void LogDecoderInferred(ILogger logger, string modelId, string kind, string explanation);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {ModelId}: YOLOX {RawGridDecision}")]
    private static partial void LogRawGrid(ILogger logger, string modelId, string rawGridDecision);
}
