using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Catalog;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors;

/// <summary>A loaded sequence model as its streams share it: the session, the lock of its unbatched steps, and its step batcher.</summary>
internal readonly record struct SharedSequenceModel(SequenceModel Model, object Lock, StepBatcher Batcher);

/// <summary>
/// The sequence models of the sensor streams, each loaded once and shared by every stream that uses it
/// (each stream keeps its own state), with one <see cref="StepBatcher"/> per model. A model that cannot
/// be loaded is remembered with its reason, so the streams that use it fail alike without retrying.
/// Used from the service's start and its lifecycle tasks (one at a time, as before the split).
/// </summary>
internal sealed class SequenceModelPool(TimeProvider timeProvider, ILoggerFactory loggerFactory) : IAsyncDisposable
{
    private readonly Dictionary<string, SharedSequenceModel> _models = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, string> _failedModels = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>One step batcher per loaded model (for tests and metrics).</summary>
    public IEnumerable<StepBatcher> Batchers => _models.Values.Select(m => m.Batcher);

    /// <summary>
    /// The stream's model, or false with the reason when it cannot be loaded (a bad file, a state input
    /// without its output, a changed SHA-256). Other configuration errors throw <see cref="StartupException"/>.
    /// </summary>
    public bool TryGet(ResolvedModel resolved, string streamId, out SharedSequenceModel loaded, out string failure)
    {
        if (_failedModels.TryGetValue(resolved.Id, out var known))
        {
            failure = known;
            loaded = default;
            return false;
        }

        try
        {
            loaded = Get(resolved, streamId);
            failure = string.Empty;
            return true;
        }
        catch (StartupException ex) when (ex.InnerException is ModelLoadException or ManifestException)
        {
            failure = ex.InnerException!.Message;
            _failedModels[resolved.Id] = failure;
            loaded = default;
            return false;
        }
    }

    /// <summary>Stops the batchers and releases the models (after every stream has ended).</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var (model, _, batcher) in _models.Values)
        {
            await batcher.DisposeAsync();
            model.Dispose();
        }
    }

    private SharedSequenceModel Get(ResolvedModel resolved, string streamId)
    {
        if (!_models.TryGetValue(resolved.Id, out var loaded))
        {
            var model = SequenceProcessorFactory.LoadModel(resolved, $"Sensors:{streamId}", loggerFactory);
            var batcher = SequenceProcessorFactory.CreateBatcher(model, resolved, timeProvider);
            loaded = new SharedSequenceModel(model, new object(), batcher);
            _models[resolved.Id] = loaded;
        }

        return loaded;
    }
}
