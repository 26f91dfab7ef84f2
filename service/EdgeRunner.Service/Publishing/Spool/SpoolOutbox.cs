using System.Buffers;
using System.Threading.Channels;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Publishing.Spool;

/// <summary>
/// The outbox with store-and-forward: results (messages that are not retained) are appended to a
/// <see cref="DiskSpool"/> and deleted only after the broker acknowledged them, so an outage, a restart or
/// <c>kill -9</c> loses none, and they go out in the order they came. Retained states stay in memory (only the
/// latest of each matters, and it is sent again on every connect). When the disk refuses writes (full,
/// read-only), results wait in memory instead (the in-memory outbox's bounds and fairness), the status says
/// degraded with the reason, and the spool is tried again after its retry wait: the pipelines never stall on
/// the disk. Taken in this order: retained states, then the spool (older), then results kept in memory while
/// the disk was refusing (newer).
/// </summary>
internal sealed partial class SpoolOutbox : IMqttOutbox, IDisposable
{
    private readonly DiskSpool _spool;
    private readonly MemoryOutbox _states;
    private readonly MemoryOutbox _fallback;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly TimeSpan _flushInterval;
    private readonly Channel<bool> _signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly CancellationTokenSource _stopFlusher = new();
    private readonly Task _flusher;
    private readonly Lock _topicLock = new();
    private string? _checkedTopic;
    private int _checkedTopicBytes;
    private long _refusedSpool;
    private long _maxPacketSize = long.MaxValue;
    private volatile bool _closed;
    private volatile string? _problem;

    /// <param name="spool">The opened spool (owned: disposed with this outbox).</param>
    /// <param name="capacity">Messages held in memory at most (states, and results while the disk refuses), per memory part.</param>
    /// <param name="maxBytes">Payload bytes held in memory at most, per memory part.</param>
    /// <param name="flushInterval">Time between fsyncs of the spool (zero: the spool fsyncs every append itself).</param>
    /// <param name="timeProvider">Clock of the flusher and of the log rate limits.</param>
    /// <param name="logger">Logger.</param>
    public SpoolOutbox(DiskSpool spool, int capacity, long maxBytes, TimeSpan flushInterval, TimeProvider timeProvider, ILogger logger)
    {
        _spool = spool;
        _states = new MemoryOutbox(capacity, maxBytes, timeProvider, logger);
        _fallback = new MemoryOutbox(capacity, maxBytes, timeProvider, logger);
        _logger = logger;
        _timeProvider = timeProvider;
        _flushInterval = flushInterval;
        _flusher = flushInterval > TimeSpan.Zero ? Task.Run(() => FlushPeriodicallyAsync(_stopFlusher.Token)) : Task.CompletedTask;
        if (spool.Recovered > 0 || spool.DiscardedBytes > 0)
        {
            LogRecovered(logger, spool.Recovered, spool.Directory, spool.DiscardedBytes);
        }
    }

    /// <summary>The spool behind this outbox.</summary>
    public DiskSpool Spool => _spool;

    /// <inheritdoc />
    public int Count => _states.Count + _spool.PendingCount + _fallback.Count;

    /// <inheritdoc />
    public long Dropped => _states.Dropped + _fallback.Dropped + _spool.DroppedFull + _spool.Expired;

    /// <inheritdoc />
    public long Refused => _states.Refused + _fallback.Refused + Interlocked.Read(ref _refusedSpool);

    /// <inheritdoc />
    public string? Problem => _problem;

    /// <inheritdoc />
    public long MaxPacketSize
    {
        get => Interlocked.Read(ref _maxPacketSize);
        set
        {
            Interlocked.Exchange(ref _maxPacketSize, value);
            _states.MaxPacketSize = value;
            _fallback.MaxPacketSize = value;
        }
    }

    /// <inheritdoc />
    public long DroppedFor(string producer) => _states.DroppedFor(producer) + _fallback.DroppedFor(producer);

    /// <inheritdoc />
    public long RefusedFor(string producer) => _states.RefusedFor(producer) + _fallback.RefusedFor(producer);

    /// <inheritdoc />
    public bool TryAdd(string topic, ReadOnlySpan<byte> payload, bool retain)
    {
        if (_closed)
        {
            return false;
        }

        if (retain)
        {
            return Signal(_states.TryAdd(topic, payload, retain));
        }

        // The same checks as in memory (topic rules, the broker's packet limit), counted for the producer there.
        if (TopicProblem(topic, out var topicBytes) is { } problem)
        {
            Interlocked.Increment(ref _refusedSpool);
            _fallback.RefuseAtSend(new OutgoingMessage(topic, [], 0, false, false, topic), problem);
            return false;
        }

        var packet = MqttTopicRules.PacketSize(topicBytes, payload.Length);
        if (packet > MaxPacketSize)
        {
            Interlocked.Increment(ref _refusedSpool);
            _fallback.RefuseAtSend(new OutgoingMessage(topic, [], 0, false, false, topic), $"a message of {packet} bytes is larger than the broker's Maximum Packet Size ({MaxPacketSize} bytes)");
            return false;
        }

        if (_fallback.Count > 0)
        {
            // Results kept in memory while the disk refused go out before anything spooled after them: keep
            // adding behind them until they are delivered, so each topic stays in order.
            return Signal(_fallback.TryAdd(topic, payload, retain));
        }

        switch (_spool.Append(topic, payload, qos: 1, retain: false))
        {
            case SpoolAppendOutcome.Spooled:
                if (_problem is not null)
                {
                    _problem = null;
                    LogSpoolBack(_logger, _spool.Directory);
                }

                return Signal(true);
            case SpoolAppendOutcome.DroppedNewest:
                // Counted by the spool (DroppedFull); the result is lost, by configuration.
                return false;
            case SpoolAppendOutcome.Closed:
                return false;
            default:
                // Unavailable (the disk refuses), or larger than a segment: memory keeps it.
                if (_spool.LastError is { } error && _problem is null)
                {
                    _problem = $"the spool in {_spool.Directory} cannot be written ({error}); results wait in memory";
                    LogSpoolUnavailable(_logger, _spool.Directory, error);
                }

                return Signal(_fallback.TryAdd(topic, payload, retain));
        }
    }

    /// <inheritdoc />
    public void AddRetainedAgain()
    {
        _states.AddRetainedAgain();
        Signal(true);
    }

    /// <inheritdoc />
    public bool TryTake(out OutgoingMessage message)
    {
        if (_states.TryTake(out message))
        {
            return true;
        }

        if (_spool.TryTake(out var spooled))
        {
            // The payload goes into its own pooled buffer (the spool's holds the whole record).
            var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, spooled.PayloadLength));
            spooled.Payload.Span.CopyTo(buffer);
            message = new OutgoingMessage(spooled.Topic, buffer, spooled.PayloadLength, spooled.Retain, Pooled: true, spooled.Topic)
            {
                SpoolId = spooled.Id,
                // Timed from its append, its wait through an outage included; a record an earlier run appended has 0
                // (not timed): its wait would include the time the daemon was not running.
                EnqueuedTimestamp = spooled.EnqueuedTimestamp,
            };
            DiskSpool.Return(spooled);
            return true;
        }

        return _fallback.TryTake(out message);
    }

    /// <inheritdoc />
    public async ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (HasMessages())
            {
                return true;
            }

            if (_closed)
            {
                return false;
            }

            _signal.Reader.TryRead(out _);
            if (HasMessages())
            {
                return true;
            }

            if (!await _signal.Reader.WaitToReadAsync(cancellationToken))
            {
                return HasMessages();
            }
        }
    }

    /// <inheritdoc />
    public void Complete(in OutgoingMessage message)
    {
        if (message.SpoolId >= 0)
        {
            _spool.Acknowledge(message.SpoolId);
            ArrayPool<byte>.Shared.Return(message.Buffer);
        }
        else if (message.Retain)
        {
            _states.Complete(message);
        }
        else
        {
            _fallback.Complete(message);
        }
    }

    /// <inheritdoc />
    public void Abandon(in OutgoingMessage message)
    {
        if (message.SpoolId >= 0)
        {
            // Not delivered: it stays in the spool, and is sent first on the next take or the next start.
            ArrayPool<byte>.Shared.Return(message.Buffer);
            _spool.RewindInFlight();
        }
        else
        {
            Complete(message);
        }
    }

    /// <inheritdoc />
    public void RefuseAtSend(in OutgoingMessage message, string reason)
    {
        if (message.SpoolId >= 0)
        {
            Interlocked.Increment(ref _refusedSpool);
        }

        _fallback.RefuseAtSend(message, reason);
    }

    /// <inheritdoc />
    public void Close()
    {
        _closed = true;
        _states.Close();
        _fallback.Close();
        _signal.Writer.TryComplete();
    }

    /// <inheritdoc />
    public int DiscardAll()
    {
        var kept = _spool.PendingCount;
        if (kept > 0)
        {
            LogKeptForNextStart(_logger, kept, _spool.Directory);
        }

        return _states.DiscardAll() + _fallback.DiscardAll();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _stopFlusher.Cancel();
        try
        {
            _flusher.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The flusher ends by cancellation.
        }

        _stopFlusher.Dispose();
        _spool.Dispose();
    }

    private bool HasMessages() => _states.Count > 0 || _spool.HasUntaken || _fallback.Count > 0;

    private bool Signal(bool added)
    {
        if (added)
        {
            _signal.Writer.TryWrite(true);
        }

        return added;
    }

    // Pipelines reuse their topic strings: remember the last that passed (by reference), so the rules run once per topic.
    private string? TopicProblem(string topic, out int topicBytes)
    {
        lock (_topicLock)
        {
            if (ReferenceEquals(_checkedTopic, topic))
            {
                topicBytes = _checkedTopicBytes;
                return null;
            }
        }

        if (MqttTopicRules.Problem(topic, out topicBytes) is { } problem)
        {
            return problem;
        }

        lock (_topicLock)
        {
            _checkedTopic = topic;
            _checkedTopicBytes = topicBytes;
        }

        return null;
    }

    private async Task FlushPeriodicallyAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(_flushInterval, _timeProvider, cancellationToken);
                _spool.FlushIfDue();
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed; the spool's own dispose flushes last.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT spool {Directory}: {Recovered} undelivered results from before the start will be sent first ({Discarded} bytes of a torn write cut off)")]
    private static partial void LogRecovered(ILogger logger, long recovered, string directory, long discarded);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT spool {Directory} cannot be written ({Reason}): results wait in memory (bounded, lost on exit) until it can; the status says degraded")]
    private static partial void LogSpoolUnavailable(ILogger logger, string directory, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT spool {Directory} is written again")]
    private static partial void LogSpoolBack(ILogger logger, string directory);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT shutdown: {Count} undelivered results stay in the spool {Directory} and are sent after the next start")]
    private static partial void LogKeptForNextStart(ILogger logger, int count, string directory);
}
