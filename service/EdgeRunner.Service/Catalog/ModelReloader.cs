using System.Text;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Diagnostics;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Catalog;

/// <summary>
/// Hot model swap (docs/models.md, "Reloading models"): re-resolves a <c>Models</c> entry (its manifest read again),
/// builds and warms up the new sessions off the pipelines' threads with the same provider selection as at start, checks
/// that every camera and stream using the model can take it, and only then hands them over. Each camera takes its new
/// session at its next frame and each stream at its next step, so the frame or step in flight finishes on the old one,
/// which is disposed once nothing uses it. Anything wrong (a bad file, a failed warm-up, a changed task, a stream
/// whose channels or chunk size differ) disposes what was built and leaves every old model running; the outcome names
/// the file and the reason. A stream's state carries over when the new manifest lists the running model's SHA-256 in
/// <c>state_compatible_with</c> and the state tensors have the same sizes; otherwise it is reset and the reset
/// reported like any other (counted, logged, a <c>reset</c> event).
/// </summary>
internal sealed partial class ModelReloader : IModelReloader, IDisposable
{
    private readonly ModelCatalog _catalog;
    private readonly ModelsOptions _models;
    private readonly IServiceProvider _services;
    private readonly ILoggerFactory _loggerFactory;
    private readonly TimeProvider _timeProvider;
    private readonly EdgeRunnerMetrics? _metrics;
    private readonly ILogger _logger;

    // One reload at a time: two at once could swap in the older of two new versions last.
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);

    public ModelReloader(ModelCatalog catalog, IOptions<ModelsOptions> models, IServiceProvider services, ILoggerFactory loggerFactory, TimeProvider timeProvider, EdgeRunnerMetrics? metrics = null)
    {
        _catalog = catalog;
        _models = models.Value;
        _services = services;
        _loggerFactory = loggerFactory;
        _timeProvider = timeProvider;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger<ModelReloader>();
    }

    public async Task<ModelReloadOutcome> ReloadAsync(string? modelName, CancellationToken cancellationToken)
    {
        var vision = _services.GetService<VisionService>();
        var sensors = _services.GetService<SensorService>();
        string[] names;
        if (modelName is null)
        {
            names = [.. InUse(vision, sensors)];
        }
        else if (_models.Keys.FirstOrDefault(k => string.Equals(k, modelName, StringComparison.OrdinalIgnoreCase)) is { } key)
        {
            names = [key];
        }
        else
        {
            return new ModelReloadOutcome(false, $"Models:{modelName}: no such model", []);
        }

        await _oneAtATime.WaitAsync(cancellationToken);
        try
        {
            var succeeded = true;
            var reloaded = new List<string>();
            var message = new StringBuilder();
            foreach (var name in names)
            {
                cancellationToken.ThrowIfCancellationRequested();

                // Loading and warming up take long on a small board: never on the caller's (an MQTT receive loop's) thread.
                var result = await Task.Run(() => ReloadOneAsync(name, vision, sensors, cancellationToken), cancellationToken);
                succeeded &= result.Outcome != Failed;
                if (result.Outcome == Swapped)
                {
                    reloaded.Add(name);
                }

                message.Append(message.Length > 0 ? "; " : string.Empty).Append(result.Message);
            }

            return new ModelReloadOutcome(succeeded, names.Length == 0 ? "no model is in use" : message.ToString(), reloaded);
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    public void Dispose() => _oneAtATime.Dispose();

    private const string Swapped = "swapped";
    private const string Failed = "failed";
    private const string NotInUse = "not_in_use";

    private readonly record struct ModelResult(string Outcome, string Message);

    /// <summary>The models the cameras and streams run now.</summary>
    private static IEnumerable<string> InUse(VisionService? vision, SensorService? sensors) =>
        (vision?.Pipelines.Select(p => p.Model.Id) ?? [])
            .Concat(sensors?.Streams.Select(s => s.Processor.Model.Id) ?? [])
            .Distinct(StringComparer.OrdinalIgnoreCase);

    private async Task<ModelResult> ReloadOneAsync(string name, VisionService? vision, SensorService? sensors, CancellationToken cancellationToken)
    {
        var cameras = vision?.Pipelines.Where(p => string.Equals(p.Model.Id, name, StringComparison.OrdinalIgnoreCase)).ToList() ?? [];
        var streams = sensors?.Streams.Where(s => string.Equals(s.Processor.Model.Id, name, StringComparison.OrdinalIgnoreCase)).ToList() ?? [];
        if (cameras.Count == 0 && streams.Count == 0)
        {
            return new ModelResult(NotInUse, $"model '{name}' is used by no running camera or stream: nothing to swap");
        }

        var options = _models[name];
        var file = string.IsNullOrEmpty(options.Manifest) ? options.Path : options.Manifest;
        LogReloadStarted(_logger, name, file, cameras.Count, streams.Count);

        var built = new List<VisionFrameProcessor>();
        SharedSequenceModel? shared = null;
        var swaps = new List<(StreamRunner Runner, SequenceStreamProcessor Processor, SensorResultWriter Writer, string? ResetReason)>();
        ResolvedModel resolved;
        try
        {
            resolved = _catalog.WithRunRates(ModelCatalog.Resolve(name, options));
            file = resolved.Path;
            foreach (var camera in cameras)
            {
                var processor = BuildCameraProcessor(resolved, camera.CameraId);
                built.Add(processor);
                var (before, after) = (camera.Processor.Head.Task.Value, processor.Head.Task.Value);
                if (!string.Equals(before, after, StringComparison.Ordinal))
                {
                    throw new InvalidOperationException($"camera {camera.CameraId} runs a {before} model and the new one is a {after} model (restart the daemon to change a camera's task)");
                }
            }

            if (streams.Count > 0)
            {
                var pool = sensors!.Models;
                shared = pool.LoadReplacement(resolved, $"Models:{name}", _timeProvider);
                WarmUp(shared.Value.Model);
                var oldRate = _catalog.Get(name).Manifest?.Stream?.SampleRateHz;
                foreach (var runner in streams)
                {
                    swaps.Add(PrepareStreamSwap(runner, resolved, shared.Value, oldRate));
                }
            }

            // Cancelled (the daemon stopping) before the swap: what was built goes, the old models stay.
            cancellationToken.ThrowIfCancellationRequested();
        }
#pragma warning disable CA1031 // Whatever building the new model threw, the old one goes on; the reason goes to the caller and the log.
        catch (Exception ex) when (ex is not (OutOfMemoryException or StackOverflowException or AccessViolationException))
#pragma warning restore CA1031
        {
            foreach (var processor in built)
            {
                processor.Dispose();
            }

            foreach (var swap in swaps)
            {
                swap.Writer.Dispose();
            }

            if (shared is { } refused)
            {
                await SequenceModelPool.DisposeSharedAsync(refused);
            }

            var reason = ex is Microsoft.ML.OnnxRuntime.OnnxRuntimeException ? $"warm-up failed: {ex.Message}" : ex.Message;
            LogReloadFailed(_logger, name, file, reason);
            _metrics?.RecordModelReload(name, Failed);
            return new ModelResult(Failed, $"model '{name}' not reloaded, the old one keeps running: '{file}': {reason}");
        }

        // Everything built and checked: hand it over. Nothing below can fail for a reason of the new model's.
        for (var i = 0; i < cameras.Count; i++)
        {
            cameras[i].Processor.Offer(built[i]);
        }

        var details = new List<string>();
        if (shared is { } replacement)
        {
            var retired = sensors!.Models.Replace(name, replacement);
            if (retired is { } replaced)
            {
                // A dynamic (MQTT wildcard) stream that started on the old model while the new one was being built.
                foreach (var late in sensors.Streams.Where(s => ReferenceEquals(s.Processor.Model, replaced.Model) && !streams.Contains(s)))
                {
                    try
                    {
                        swaps.Add(PrepareStreamSwap(late, resolved, replacement, _catalog.Get(name).Manifest?.Stream?.SampleRateHz));
                        streams.Add(late);
                    }
#pragma warning disable CA1031 // It stays on the old model, which is then kept until the service stops (RetireWhenUnusedAsync).
                    catch (Exception ex) when (ex is not (OutOfMemoryException or StackOverflowException or AccessViolationException))
#pragma warning restore CA1031
                    {
                        LogStreamLeftOnOldModel(_logger, name, late.StreamId, ex.Message);
                    }
                }
            }

            var remaining = swaps.Count;
            foreach (var (runner, processor, writer, resetReason) in swaps)
            {
                details.Add(resetReason is null ? $"stream {runner.StreamId}: state kept" : $"stream {runner.StreamId}: state reset ({resetReason})");
                runner.OfferModel(new StreamModelSwap(processor, writer, resetReason, (taker, taken) =>
                {
                    if (taken)
                    {
                        if (resetReason is not null)
                        {
                            ReportReset(sensors.Events, taker, resetReason);
                        }

                        // The retained state names the model and its provider: say which one runs now.
                        sensors.Events.SetModel(taker.StreamId, RunningModelStatus.Of(processor.Model));
                        sensors.Events.Report(taker.StreamId, "streaming", $"model {name} reloaded (sha256 {processor.Model.Sha256[..12]}…, {processor.Model.ExecutionProvider})");
                    }

                    if (Interlocked.Decrement(ref remaining) == 0 && retired is { } old)
                    {
                        // Not on the stream's loop: stopping the old batcher waits for its worker.
                        _ = Task.Run(() => RetireWhenUnusedAsync(sensors, name, old));
                    }
                }));
            }
        }

        _catalog.Replace(resolved);
        var provider = cameras.Count > 0 ? built[0].Model.ExecutionProvider : shared!.Value.Model.ExecutionProvider;
        var sha = cameras.Count > 0 ? built[0].Model.Sha256 : shared!.Value.Model.Sha256;
        var summary = $"model '{name}' swapped in from '{resolved.Path}' (sha256 {sha[..12]}…, {provider}) for {cameras.Count} camera(s) and {streams.Count} stream(s)"
            + (details.Count > 0 ? $": {string.Join(", ", details)}" : string.Empty);
        LogReloadSucceeded(_logger, name, resolved.Path, sha, provider, summary);
        _metrics?.RecordModelReload(name, Swapped);
        return new ModelResult(Swapped, summary);
    }

    /// <summary>
    /// A stream's processor on the new model, after checking the stream can take it (channels, chunk, rate), and
    /// whether its state carries over. Throws (the caller keeps the old model) when it cannot.
    /// </summary>
    private (StreamRunner Runner, SequenceStreamProcessor Processor, SensorResultWriter Writer, string? ResetReason) PrepareStreamSwap(
        StreamRunner runner, ResolvedModel resolved, SharedSequenceModel shared, double? oldRate)
    {
        var old = runner.Processor;
        var processor = SequenceProcessorFactory.CreateProcessor(runner.StreamId, resolved, shared.Model, shared.Lock, shared.Batcher);
        var newRate = resolved.Manifest!.Stream!.SampleRateHz;
        if (processor.Channels != old.Channels || processor.ChunkSamples != old.ChunkSamples || newRate != oldRate)
        {
            throw new InvalidOperationException(
                $"stream {runner.StreamId} takes {old.Channels} channels × {old.ChunkSamples} samples at {oldRate} Hz and the new model {processor.Channels} × {processor.ChunkSamples} at {newRate} Hz (restart the daemon to change them)");
        }

        var writer = new SensorResultWriter(
            _services.GetRequiredService<PayloadOrigin>(), runner.StreamId, resolved.Id, shared.Model.Sha256, processor.Labels, processor.Task, shared.Model.ExecutionProvider);
        return (runner, processor, writer, StateResetReason(old, processor, resolved.Manifest));
    }

    /// <summary>Disposes the replaced model once every stream has left it; one still on it keeps it until the service stops.</summary>
    private async Task RetireWhenUnusedAsync(SensorService sensors, string name, SharedSequenceModel old)
    {
        if (sensors.Streams.FirstOrDefault(s => ReferenceEquals(s.Processor.Model, old.Model)) is { } straggler)
        {
            LogOldModelKept(_logger, name, straggler.StreamId);
            return;
        }

        await sensors.Models.RetireAsync(old);
    }

    private VisionFrameProcessor BuildCameraProcessor(ResolvedModel resolved, string cameraId)
    {
        // The same builder as at start (tests may wrap it), which loads, selects the provider and warms up.
        var builder = _services.GetService<VisionProcessorBuilder>() ?? VisionProcessorFactory.Create;
        return builder(resolved, $"Camera {cameraId}", _loggerFactory);
    }

    /// <summary>One step on zeros with a scratch state: a model that loads but cannot run fails here, not on a stream.</summary>
    private static void WarmUp(SequenceModel model)
    {
        var state = model.CreateState("reload-warm-up");
        model.Step(state, new float[model.ChunkLength], new float[model.ResultLength]);
    }

    /// <summary>Null when the stream's state can carry over to <paramref name="next"/>; else why not.</summary>
    private static string? StateResetReason(SequenceStreamProcessor old, SequenceStreamProcessor next, ModelManifest manifest)
    {
        var oldSha = old.Model.Sha256;
        if (!string.Equals(oldSha, next.Model.Sha256, StringComparison.OrdinalIgnoreCase)
            && !manifest.StateCompatibleWith.Contains(oldSha, StringComparer.OrdinalIgnoreCase))
        {
            return $"the new manifest's state_compatible_with does not list the running model's sha256 {oldSha[..12]}…";
        }

        if (old.State.Count != next.State.Count)
        {
            return $"the new model has {next.State.Count} state tensors, the old one {old.State.Count}";
        }

        for (var i = 0; i < old.State.Count; i++)
        {
            if (old.State.Tensor(i).Length != next.State.Tensor(i).Length)
            {
                return $"state tensor {i} has {next.State.Tensor(i).Length} values in the new model, {old.State.Tensor(i).Length} in the old one";
            }
        }

        return null;
    }

    /// <summary>On the stream's loop, once its reset took effect: the <c>reset</c> event, as a reset command's.</summary>
    private static void ReportReset(SensorStreamEvents events, StreamRunner runner, string reason) =>
        events.PublishEvent(runner.StreamId, "reset", $"model reload: {reason}", topic: null, w => w.WriteNumber("state_resets", runner.StateResets));

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {ModelId}: reloading from {File} for {Cameras} camera(s) and {Streams} stream(s)")]
    private static partial void LogReloadStarted(ILogger logger, string modelId, string file, int cameras, int streams);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {ModelId}: reloaded from {File} (sha256 {Sha256}, {ExecutionProvider}): {Summary}")]
    private static partial void LogReloadSucceeded(ILogger logger, string modelId, string file, string sha256, string executionProvider, string summary);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {ModelId}: stream {StreamId} started while the new version was being built and cannot take it ({Reason}); it stays on the old version")]
    private static partial void LogStreamLeftOnOldModel(ILogger logger, string modelId, string streamId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {ModelId}: stream {StreamId} still runs the old version; it is kept loaded until the sensors stop")]
    private static partial void LogOldModelKept(ILogger logger, string modelId, string streamId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Model {ModelId}: reload from {File} failed, the old model keeps running: {Reason}")]
    private static partial void LogReloadFailed(ILogger logger, string modelId, string file, string reason);
}
