using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// The streams' checkpoints in <c>State:Directory</c>: where each stream's goes, restoring it at the
/// stream's start (for this model or a compatible one), and pruning those of dynamic streams not seen
/// for <see cref="StateOptions.DynamicStreamRetentionDays"/>. The writing is the stream's own
/// (<see cref="StreamRunner"/>, through <see cref="StreamCheckpoint"/>).
/// </summary>
internal sealed partial class StreamCheckpoints(StateOptions state, TimeProvider timeProvider, ILogger logger)
{
    /// <summary>
    /// A board without a real-time clock boots in 1970 until NTP sets it: file times before this are
    /// not trusted (for pruning, or as a checkpoint's last-sample time).
    /// </summary>
    private static readonly DateTime PlausibleClock = new(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    /// <summary>
    /// Deletes checkpoints of dynamic streams (ids with a '/', escaped %2F in the file name) that nothing
    /// has written for <see cref="StateOptions.DynamicStreamRetentionDays"/>: each MQTT topic that ever
    /// published leaves one, and on a gateway whose devices come and go they would fill the disk.
    /// Configured streams' checkpoints are never pruned.
    /// </summary>
    public void PruneDynamic()
    {
        if (string.IsNullOrEmpty(state.Directory) || state.DynamicStreamRetentionDays <= 0 || !Directory.Exists(state.Directory))
        {
            return;
        }

        // A board without a real-time clock boots in 1970 until NTP sets it: ages measured across that are
        // meaningless, so nothing is pruned on such a clock, nor a file written while it was wrong.
        var now = timeProvider.GetUtcNow().UtcDateTime;
        if (now < PlausibleClock)
        {
            return;
        }

        var cutoff = now - TimeSpan.FromDays(state.DynamicStreamRetentionDays);
        var pruned = 0;
        foreach (var file in Directory.EnumerateFiles(state.Directory, "*%2F*.state"))
        {
            try
            {
                var written = File.GetLastWriteTimeUtc(file);
                if (written < cutoff && written >= PlausibleClock)
                {
                    File.Delete(file);
                    pruned++;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                LogPruneFailed(logger, file, ex.Message);
            }
        }

        if (pruned > 0)
        {
            LogPruned(logger, pruned, state.DynamicStreamRetentionDays, state.Directory);
        }
    }

    /// <summary>
    /// The stream's checkpointing (null without <c>State:Directory</c>), having restored its checkpoint
    /// into <paramref name="processor"/> when there is one for this exact model or a compatible one; says why not otherwise.
    /// </summary>
    public StreamCheckpointing? Restore(string streamId, SequenceStreamProcessor processor, string modelSha256, IReadOnlyList<string> compatibleSha256)
    {
        if (string.IsNullOrEmpty(state.Directory))
        {
            return null;
        }

        try
        {
            StreamCheckpoint.EnsureDirectory(state.Directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // At startup this stops the daemon naming the key; a dynamic stream fails alone (its "failed" event says why).
            throw new StartupException($"State:Directory: cannot create '{state.Directory}': {ex.Message}", StartupException.ConfigError, ex);
        }

        var path = StreamCheckpoint.PathFor(state.Directory, streamId);
        long resume = 0;
        DateTimeOffset? lastSampleTime = null;
        double[]? runnerState = null;
        if (StreamCheckpoint.TryRead(path, [modelSha256, .. compatibleSha256], processor.State, out var position, out lastSampleTime, out runnerState, out var writtenBy, out var reason))
        {
            resume = position;
            processor.StateRestored();

            // An older checkpoint has no last-sample time: when it was written is the next best thing for the gap rule.
            var written = File.GetLastWriteTimeUtc(path);
            lastSampleTime ??= written >= PlausibleClock ? new DateTimeOffset(written, TimeSpan.Zero) : null;
            if (string.Equals(writtenBy, modelSha256, StringComparison.OrdinalIgnoreCase))
            {
                LogRestored(logger, streamId, processor.State.Steps, path);
            }
            else
            {
                LogRestoredFromCompatible(logger, streamId, processor.State.Steps, path, writtenBy);
            }
        }
        else if (File.Exists(path))
        {
            LogNotRestored(logger, streamId, path, reason);
        }

        return new StreamCheckpointing(path, TimeSpan.FromSeconds(state.CheckpointIntervalSeconds), resume, lastSampleTime, runnerState);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted {Count} checkpoints of dynamic streams not seen for {Days} days from {Directory}")]
    private static partial void LogPruned(ILogger logger, int count, double days, string directory);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot delete the old checkpoint {Path}: {Reason}")]
    private static partial void LogPruneFailed(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: state restored at step {Steps} from {Path}, written by the compatible model sha256 {WrittenBy} (manifest state_compatible_with)")]
    private static partial void LogRestoredFromCompatible(ILogger logger, string streamId, long steps, string path, string writtenBy);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: state restored at step {Steps} from {Path}")]
    private static partial void LogRestored(ILogger logger, string streamId, long steps, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor {StreamId}: checkpoint {Path} not used ({Reason}); the state starts fresh")]
    private static partial void LogNotRestored(ILogger logger, string streamId, string path, string reason);
}
