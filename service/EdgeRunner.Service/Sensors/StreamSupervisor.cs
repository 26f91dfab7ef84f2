using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Hardware.Supervision;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// Runs one stream under supervision. A source's own declared error (<see cref="SensorSourceException"/>:
/// bad data that will not get better by retrying) fails the stream, published and logged. Anything
/// else unexpected (a source throwing what it never should, a failed step) is logged with its stack
/// (rate-limited), counted, published ("restarting" with the reason), and the stream is run again
/// after the code base's one backoff rule; the other streams never notice.
/// </summary>
internal sealed partial class StreamSupervisor(SensorStreamEvents events, TimeProvider timeProvider, ILogger logger)
{
    /// <summary>First wait before a stream that failed unexpectedly runs again; doubled per failure in a row.</summary>
    internal static readonly TimeSpan RestartMinDelay = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between restarts of a stream that keeps failing.</summary>
    internal static readonly TimeSpan RestartMaxDelay = TimeSpan.FromSeconds(60);

    private long _unexpectedErrors;
    private long _streamsFailed;

    /// <summary>Unexpected errors of the streams' loops, each followed by a restart (for tests and metrics).</summary>
    public long UnexpectedErrors => Interlocked.Read(ref _unexpectedErrors);

    /// <summary>Streams failed for good by their source's own error (for tests and metrics).</summary>
    public long StreamsFailed => Interlocked.Read(ref _streamsFailed);

    /// <summary>The errors supervision never catches: the process is in no state to go on.</summary>
    public static bool IsFatal(Exception ex) => ex is OutOfMemoryException or StackOverflowException or AccessViolationException;

    /// <summary>Runs <paramref name="unit"/> until its source ends, it fails for good, or <paramref name="cancellationToken"/> stops it.</summary>
    public async Task RunAsync(StreamRunner unit, CancellationToken cancellationToken)
    {
        var log = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
        var failuresInARow = 0;
        while (true)
        {
            var stepsBefore = unit.Steps;
            try
            {
                await unit.RunAsync(cancellationToken);
                break;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (SensorSourceException ex)
            {
                Interlocked.Increment(ref _streamsFailed);
                LogSourceFailed(logger, unit.StreamId, ex.Message);
                events.Report(unit.StreamId, "failed", ex.Message);
                return;
            }
#pragma warning disable CA1031 // Supervision: whatever a stream throws must not end it for good nor touch the other streams; fatal runtime errors still propagate.
            catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
            {
                // Progress since the last failure starts the backoff over: only failures in a row lengthen it.
                failuresInARow = unit.Steps > stepsBefore ? 1 : failuresInARow + 1;
                var count = unit.RecordUnexpectedError();
                Interlocked.Increment(ref _unexpectedErrors);
                var delay = Backoff.Exponential(RestartMinDelay, RestartMaxDelay, failuresInARow, jitter: 0.2, sample: Random.Shared.NextDouble());
                if (log.TryAcquire(out var suppressed))
                {
                    LogUnexpectedError(logger, unit.StreamId, ex.GetType().Name, ex.Message, count, delay.TotalSeconds, suppressed, ex);
                }

                events.Report(unit.StreamId, "restarting", $"{ex.GetType().Name}: {ex.Message}; restarting in {delay.TotalSeconds:0.#} s");
                try
                {
                    await Task.Delay(delay, timeProvider, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                unit.PrepareRestart($"a restart after an unexpected {ex.GetType().Name}");
                events.Report(unit.StreamId, "streaming", "restarted");
            }
        }

        if (!cancellationToken.IsCancellationRequested && !SensorStreamEvents.IsDynamic(unit.StreamId))
        {
            events.PublishState(unit.StreamId, "ended", "the source ended");
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Sensor {StreamId}: unexpected {ExceptionType}: {Reason} ({Count} so far); restarting the stream in {DelaySeconds:0.#} s, the other streams go on ({Suppressed} not logged since the last line)")]
    private static partial void LogUnexpectedError(ILogger logger, string streamId, string exceptionType, string reason, long count, double delaySeconds, long suppressed, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sensor {StreamId}: the source failed: {Reason}; the stream stops, the other streams go on")]
    private static partial void LogSourceFailed(ILogger logger, string streamId, string reason);
}
