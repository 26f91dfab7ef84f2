namespace EdgeRunner.Service.Catalog;

/// <summary>What one reload request did.</summary>
/// <param name="Succeeded">True when every requested model was rebuilt, warmed up and swapped in (or was unchanged).</param>
/// <param name="Message">For the reply and the log: what was swapped, what was kept and why (a broken new model names its file and reason).</param>
/// <param name="Reloaded">Names of the models swapped in by this request.</param>
internal sealed record ModelReloadOutcome(bool Succeeded, string Message, IReadOnlyList<string> Reloaded);

/// <summary>
/// Rebuilds models while the pipelines run: the new session is built and warmed up in the background, then
/// swapped in atomically; frames and steps in flight finish on the old one. A model that fails to build or warm
/// up leaves the old one running. Used by the <c>reload</c> command and by the model-file watcher.
/// </summary>
internal interface IModelReloader
{
    /// <summary>Reloads the model named <paramref name="modelName"/> (a <c>Models</c> key), or every model in use when null.</summary>
    Task<ModelReloadOutcome> ReloadAsync(string? modelName, CancellationToken cancellationToken);
}
