using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors;

/// <summary>One sensor stream's loop: read a chunk, step the model with this stream's state, publish.</summary>
internal sealed partial class StreamRunner(
    string streamId,
    ISensorSource source,
    SensorStreamProcessor processor,
    SensorResultWriter writer,
    IResultPublisher publisher,
    string topic,
    TimeSpan logInterval,
    TimeProvider timeProvider,
    ILogger logger) : IAsyncDisposable
{
    private readonly float[] _block = new float[processor.ChunkSamples * processor.Channels];
    private long _lastLog = long.MinValue / 2;
    private long _steps;

    public string StreamId => streamId;

    public SensorStreamProcessor Processor => processor;

    /// <summary>Steps run (results published).</summary>
    public long Steps => Interlocked.Read(ref _steps);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        LogStarted(logger, streamId, source.Description, processor.Model.Id, topic);
        var period = TimeSpan.FromSeconds(1.0 / source.SampleRateHz);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                // Sources deliver whole chunks here (the simulated source is asked for exactly one);
                // a partial block is completed from the next reads.
                var filled = 0;
                SensorBlock first = default;
                while (filled < processor.ChunkSamples)
                {
                    var block = await source.ReadAsync(_block.AsMemory(filled * processor.Channels), cancellationToken);
                    if (block.Samples == 0)
                    {
                        LogSourceEnded(logger, streamId);
                        return;
                    }

                    if (filled == 0)
                    {
                        first = block;
                    }

                    filled += block.Samples;
                }

                var latency = processor.Step(_block);
                var sequence = Interlocked.Increment(ref _steps) - 1;
                var end = first.FirstSampleTime + (period * processor.ChunkSamples);
                publisher.TryPublish(topic, writer.Write(sequence, first.FirstSampleTime, end, processor.ChunkSamples, processor, latency));
                MaybeLog(sequence, latency);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await source.DisposeAsync();
        writer.Dispose();
    }

    private void MaybeLog(long sequence, double latencyMs)
    {
        var now = timeProvider.GetTimestamp();
        if ((now - _lastLog) < (long)(logInterval.TotalSeconds * timeProvider.TimestampFrequency) || !logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        _lastLog = now;
        LogResult(logger, streamId, sequence, processor.Labels[processor.TopClass], processor.Result[processor.TopClass], latencyMs);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: {Source} → model {ModelId} → {Topic}")]
    private static partial void LogStarted(ILogger logger, string streamId, string source, string modelId, string topic);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId} step {Sequence}: {Label} {Score:0.000} ({LatencyMs:0.00} ms)")]
    private static partial void LogResult(ILogger logger, string streamId, long sequence, string label, float score, double latencyMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: source ended")]
    private static partial void LogSourceEnded(ILogger logger, string streamId);
}
