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

    // Models replaced by a reload, disposed once every stream has left them (or at the end, for a stream that never did).
    private readonly List<SharedSequenceModel> _retiring = [];

    // A reload replaces models from its own task while the service's lifecycle tasks look them up.
    private readonly Lock _gate = new();

    /// <summary>One step batcher per loaded model (for tests and metrics).</summary>
    public IEnumerable<StepBatcher> Batchers
    {
        get
        {
            lock (_gate)
            {
                return [.. _models.Values.Select(m => m.Batcher)];
            }
        }
    }

    /// <summary>
    /// The stream's model, or false with the reason when it cannot be loaded (a bad file, a state input
    /// without its output, a changed SHA-256). Other configuration errors throw <see cref="StartupException"/>.
    /// </summary>
    public bool TryGet(ResolvedModel resolved, string streamId, out SharedSequenceModel loaded, out string failure)
    {
        lock (_gate)
        {
            return TryGetLocked(resolved, streamId, out loaded, out failure);
        }
    }

    private bool TryGetLocked(ResolvedModel resolved, string streamId, out SharedSequenceModel loaded, out string failure)
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

        SharedSequenceModel[] retiring;
        lock (_gate)
        {
            retiring = [.. _retiring];
            _retiring.Clear();
        }

        foreach (var old in retiring)
        {
            await DisposeSharedAsync(old);
        }
    }

    /// <summary>
    /// Loads a new version of a model for a reload, with its own lock and batcher (not yet shared with any stream).
    /// Throws <see cref="StartupException"/> naming the file and the reason, as at start.
    /// </summary>
    public SharedSequenceModel LoadReplacement(ResolvedModel resolved, string owner, TimeProvider clock)
    {
        var model = SequenceProcessorFactory.LoadModel(resolved, owner, loggerFactory);
        return new SharedSequenceModel(model, new object(), SequenceProcessorFactory.CreateBatcher(model, resolved, clock));
    }

    /// <summary>
    /// Makes <paramref name="replacement"/> the model that streams starting from now get, in place of the one they
    /// had; returns that one (now retiring: see <see cref="RetireAsync"/>), or null when none was loaded.
    /// </summary>
    public SharedSequenceModel? Replace(string modelId, SharedSequenceModel replacement)
    {
        lock (_gate)
        {
            _failedModels.Remove(modelId);
            var had = _models.TryGetValue(modelId, out var old);
            _models[modelId] = replacement;
            if (!had)
            {
                return null;
            }

            _retiring.Add(old);
            return old;
        }
    }

    /// <summary>Disposes a replaced model once no stream steps it any more (at most once; <see cref="DisposeAsync"/> takes the rest).</summary>
    public async ValueTask RetireAsync(SharedSequenceModel old)
    {
        lock (_gate)
        {
            if (!_retiring.Remove(old))
            {
                return;
            }
        }

        await DisposeSharedAsync(old);
    }

    /// <summary>Disposes a model that is used by no stream (a replacement refused before it was shared, a retired one).</summary>
    public static async ValueTask DisposeSharedAsync(SharedSequenceModel shared)
    {
        await shared.Batcher.DisposeAsync();
        shared.Model.Dispose();
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
