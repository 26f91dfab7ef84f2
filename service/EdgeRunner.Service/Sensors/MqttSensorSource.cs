using System.Buffers;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using EdgeRunner.Hardware.Sensors;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// One MQTT-fed stream's samples, as an <see cref="ISensorSource"/>: the MQTT receive loop enqueues
/// parsed messages (pooled buffers) into a bounded queue that drops the oldest and counts it, so a slow
/// model never stalls the connection every result goes through; the stream's loop reads them in order.
/// Reset commands travel through the same queue, so a reset lands exactly between the samples sent
/// before and after it. Lives in the service (not hardware/) because it is fed by the daemon's MQTT connection.
/// </summary>
internal sealed partial class MqttSensorSource : ISensorSource
{
    /// <summary>Largest sample buffer (floats) given back to the shared pool: 256 KiB, more than a 64 KiB payload needs.</summary>
    private const int LargestPooledSamples = 64 * 1024;

    private readonly Channel<IngestMessage> _queue;
    private readonly TimeProvider _timeProvider;
    private readonly TimeSpan _idleTimeout;
    private readonly Func<bool>? _tryEvict;
    private readonly ILogger _logger;
    private readonly string _streamId;
    private readonly int _channels;
    private readonly LogRateLimiter _dropLog;
    private IngestMessage _current;
    private int _currentOffset;
    private long _nextSampleIndex;
    private long _dropped;
    private string? _droppedReset;
    // The idle timer, reused by every wait (TryReset + CancelAfter): a wildcard stream fed one sample per
    // message waits once per message, and two token sources (one with a timer) per wait added up.
    private CancellationTokenSource? _idle;

    /// <param name="streamId">The stream fed (for logs).</param>
    /// <param name="topic">The MQTT topic it comes from (for logs).</param>
    /// <param name="channels">Channel names in interleaving order.</param>
    /// <param name="sampleRateHz">Rate the samples are taken at (evenly spaced from each message's first sample).</param>
    /// <param name="capacity">Messages queued at most; the oldest is dropped beyond.</param>
    /// <param name="idleTimeout">How long <see cref="ReadAsync"/> waits for a message before asking <paramref name="tryEvict"/>; zero waits forever.</param>
    /// <param name="tryEvict">Called on the reading loop when idle; true ends the source (the stream is evicted).</param>
    /// <param name="timeProvider">Clock for the idle timeout and log rate limits.</param>
    /// <param name="logger">Where queue overflows are logged.</param>
    public MqttSensorSource(
        string streamId, string topic, IReadOnlyList<string> channels, double sampleRateHz, int capacity,
        TimeSpan idleTimeout, Func<bool>? tryEvict, TimeProvider timeProvider, ILogger logger)
    {
        _streamId = streamId;
        Description = $"MQTT {MqttIngestRoute.Printable(topic)} ({sampleRateHz:0.###} Hz)";
        Channels = channels;
        SampleRateHz = sampleRateHz;
        _channels = channels.Count;
        _idleTimeout = idleTimeout;
        _tryEvict = tryEvict;
        _timeProvider = timeProvider;
        _logger = logger;
        _dropLog = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
        _queue = Channel.CreateBounded<IngestMessage>(
            new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = false },
            OnDropped);
    }

    public string Description { get; }

    public IReadOnlyList<string> Channels { get; }

    public double SampleRateHz { get; }

    /// <summary>Messages dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Whether messages are waiting.</summary>
    public bool HasQueued => _queue.Reader.Count > 0;

    /// <summary>Called on the reading loop (inside <see cref="ReadAsync"/>) when a reset command comes out of the queue.</summary>
    public Action<string>? ResetReached { get; set; }

    /// <summary>Queues <paramref name="count"/> samples; the buffer (from <see cref="ArrayPool{T}.Shared"/>) now belongs to the source.</summary>
    public bool TryEnqueue(float[] samples, int count, DateTimeOffset firstSampleTime)
    {
        var used = count * _channels;
        if (samples.Length > LargestPooledSamples && samples.Length > 2 * used)
        {
            // The parser's buffer is sized for the densest text (two bytes a value): a large payload of ordinary
            // numbers fills a quarter of it or less. Queued as is, a backlog of such messages held several times
            // their data (20 payloads of 15 MB pinned 600 MB); keep only what was parsed.
            var compact = used <= LargestPooledSamples ? ArrayPool<float>.Shared.Rent(Math.Max(1, used)) : GC.AllocateUninitializedArray<float>(used);
            samples.AsSpan(0, used).CopyTo(compact);
            ReturnSamples(samples);
            samples = compact;
        }

        if (_queue.Writer.TryWrite(new IngestMessage(samples, count, firstSampleTime, null)))
        {
            return true;
        }

        ReturnSamples(samples);
        return false;
    }

    /// <summary>Queues a reset between the samples before and after it.</summary>
    public bool TryEnqueueReset(string reason) => _queue.Writer.TryWrite(new IngestMessage(null, 0, default, reason));

    /// <summary>No more messages: the reader ends once the queue is empty.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    // Pooled: the read completes asynchronously once per message when the queue runs empty.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        var capacity = destination.Length / _channels;
        while (true)
        {
            if (_current.Samples is { } buffer && _currentOffset < _current.Count)
            {
                var take = Math.Min(capacity, _current.Count - _currentOffset);
                buffer.AsSpan(_currentOffset * _channels, take * _channels).CopyTo(destination.Span);
                // Samples of one message are evenly spaced at the source's rate from its first sample's time.
                var time = _current.FirstSampleTime + TimeSpan.FromSeconds(_currentOffset / SampleRateHz);
                _currentOffset += take;
                var index = _nextSampleIndex;
                _nextSampleIndex += take;
                return new SensorBlock(take, time, index);
            }

            ReleaseCurrent();
            if (Interlocked.Exchange(ref _droppedReset, null) is { } lostReset)
            {
                // The queue overflowed past a reset: still apply it, before the newer samples.
                ResetReached?.Invoke(lostReset);
            }

            if (_queue.Reader.TryRead(out var next))
            {
                if (next.ResetReason is { } reason)
                {
                    ResetReached?.Invoke(reason);
                }
                else
                {
                    _current = next;
                    _currentOffset = 0;
                }

                continue;
            }

            if (!await WaitForMessageAsync(cancellationToken))
            {
                return new SensorBlock(0, _timeProvider.GetUtcNow(), _nextSampleIndex);
            }
        }
    }

    /// <summary>Waits for the next message; false when the source ended (completed, or evicted after the idle timeout).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WaitForMessageAsync(CancellationToken cancellationToken)
    {
        if (_idleTimeout <= TimeSpan.Zero || _tryEvict is null)
        {
            return await _queue.Reader.WaitToReadAsync(cancellationToken);
        }

        while (true)
        {
            var idle = RearmIdle();
            // The caller's token cancels the idle source too: one token to wait on, no linked source per wait
            // (the registration's node is reused by the caller's source once freed).
            using var stop = cancellationToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), idle);
            try
            {
                return await _queue.Reader.WaitToReadAsync(idle.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Idle: the owner decides under its lock, so a message routed at this moment is never lost.
                if (_tryEvict())
                {
                    return false;
                }
            }
        }
    }

    /// <summary>The idle source, reset and set to fire after the idle timeout from now (a fired one is replaced).</summary>
    private CancellationTokenSource RearmIdle()
    {
        if (_idle is null || !_idle.TryReset())
        {
            _idle?.Dispose();
            // Infinite until armed: the timer comes from the injected TimeProvider, and CancelAfter re-arms it.
            _idle = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _timeProvider);
        }

        _idle.CancelAfter(_idleTimeout);
        return _idle;
    }

    public ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        _idle?.Dispose();
        _idle = null;
        ReleaseCurrent();
        while (_queue.Reader.TryRead(out var left))
        {
            if (left.Samples is { } buffer)
            {
                ReturnSamples(buffer);
            }
        }

        return ValueTask.CompletedTask;
    }

    private void ReleaseCurrent()
    {
        if (_current.Samples is { } buffer)
        {
            ReturnSamples(buffer);
        }

        _current = default;
        _currentOffset = 0;
    }

    private void OnDropped(IngestMessage message)
    {
        if (message.Samples is { } buffer)
        {
            ReturnSamples(buffer);
        }
        else if (message.ResetReason is { } reason)
        {
            Volatile.Write(ref _droppedReset, reason);
        }

        var dropped = Interlocked.Increment(ref _dropped);
        if (_dropLog.TryAcquire(out _))
        {
            LogQueueFull(_logger, _streamId, dropped);
        }
    }

    /// <summary>
    /// Gives a message's samples back to the pool, unless the buffer is large (a payload far bigger than a sensor
    /// sends, allowed by a raised <c>MaxPayloadBytes</c>): the shared pool would keep such arrays for good, so after a
    /// flood of large payloads the memory would never come back; the GC reclaims them instead.
    /// </summary>
    private static void ReturnSamples(float[] buffer)
    {
        if (buffer.Length <= LargestPooledSamples)
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
    }

    /// <summary>A parsed message (pooled samples), or a reset command when <see cref="ResetReason"/> is set.</summary>
    private readonly record struct IngestMessage(float[]? Samples, int Count, DateTimeOffset FirstSampleTime, string? ResetReason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor {StreamId}: ingest queue full, oldest message dropped ({Dropped} dropped so far)")]
    private static partial void LogQueueFull(ILogger logger, string streamId, long dropped);
}
