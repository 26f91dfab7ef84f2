using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// The outbox in memory: a <see cref="FairOutgoingQueue"/> (bounded in messages and bytes; a producer over its
/// share drops its own oldest, counted per producer), plus the latest payload of every retained topic, so a
/// (re)connect can send the states again even if the bounded queue dropped them during an outage.
/// Lost when the process exits.
/// </summary>
internal sealed partial class MemoryOutbox : IMqttOutbox
{
    /// <summary>Most retained topics remembered for re-sending after a reconnect (states, snapshots: a few per camera and stream).</summary>
    private const int MaxRetainedTopics = 4096;

    private readonly FairOutgoingQueue _queue;
    private readonly int _capacity;
    private readonly ILogger _logger;
    private readonly Dictionary<string, byte[]> _retainedLatest = new(StringComparer.Ordinal);
    private readonly Lock _retainedLock = new();

    /// <param name="capacity">Messages held at most, all producers together.</param>
    /// <param name="maxBytes">Payload bytes held at most, all producers together.</param>
    /// <param name="timeProvider">Clock of the per-producer log rate limits.</param>
    /// <param name="logger">Where drops and refusals are logged.</param>
    /// <param name="problem">Why memory holds the results where a spool should (see <see cref="Problem"/>); null when memory is what was asked for.</param>
    public MemoryOutbox(int capacity, long maxBytes, TimeProvider timeProvider, ILogger logger, string? problem = null)
    {
        Problem = problem;
        _queue = new FairOutgoingQueue(capacity, maxBytes, timeProvider);
        _capacity = capacity;
        _logger = logger;
    }

    /// <inheritdoc />
    public int Count => _queue.Count;

    /// <inheritdoc />
    public long Dropped => _queue.Dropped;

    /// <inheritdoc />
    public long Refused => _queue.Refused;

    /// <inheritdoc />
    public long MaxPacketSize
    {
        get => _queue.MaxPacketSize;
        set => _queue.MaxPacketSize = value;
    }

    /// <inheritdoc />
    public long DroppedFor(string producer) => _queue.DroppedFor(producer);

    /// <inheritdoc />
    public long RefusedFor(string producer) => _queue.RefusedFor(producer);

    /// <inheritdoc />
    public bool TryAdd(string topic, ReadOnlySpan<byte> payload, bool retain)
    {
        if (retain)
        {
            // States are retained and published only when they change: keep the latest per topic so a
            // (re)connect can send it again, even if the bounded queue dropped it during an outage. Under
            // one lock with the re-send, so a state changing meanwhile is always queued after the old one.
            // A closed queue refuses, so nothing is remembered once shutdown began.
            lock (_retainedLock)
            {
                if (!Enqueue(topic, payload, retain))
                {
                    return false;
                }

                if (_retainedLatest.Count < MaxRetainedTopics || _retainedLatest.ContainsKey(topic))
                {
                    _retainedLatest[topic] = payload.ToArray();
                }

                return true;
            }
        }

        return Enqueue(topic, payload, retain);
    }

    /// <inheritdoc />
    public void AddRetainedAgain()
    {
        lock (_retainedLock)
        {
            foreach (var (topic, payload) in _retainedLatest)
            {
                Enqueue(topic, payload, retain: true);
            }
        }
    }

    /// <inheritdoc />
    public bool TryTake(out OutgoingMessage message) => _queue.TryDequeue(out message);

    /// <inheritdoc />
    public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken) => _queue.WaitToReadAsync(cancellationToken);

    /// <inheritdoc />
    public void Complete(in OutgoingMessage message) => _queue.Release(message);

    /// <inheritdoc />
    public void Abandon(in OutgoingMessage message) => _queue.Release(message);

    /// <inheritdoc />
    public string? Problem { get; }

    /// <inheritdoc />
    public void RefuseAtSend(in OutgoingMessage message, string reason)
    {
        var report = _queue.RefuseAtSend(message.Topic, reason);
        if (report.Log)
        {
            LogRefused(_logger, MqttTopicRules.Printable(report.Producer), report.Reason!, report.Count, report.Suppressed);
        }
    }

    /// <inheritdoc />
    public void Close() => _queue.Close();

    /// <inheritdoc />
    public int DiscardAll()
    {
        var discarded = _queue.Count;
        while (_queue.TryDequeue(out var leftover))
        {
            _queue.Release(leftover);
        }

        return discarded;
    }

    private bool Enqueue(string topic, ReadOnlySpan<byte> payload, bool retain)
    {
        var outcome = _queue.TryEnqueue(topic, payload, retain, out var report);
        if (report.Log)
        {
            if (outcome == EnqueueOutcome.Queued)
            {
                LogProducerDropped(_logger, MqttTopicRules.Printable(report.Producer), report.Count, _queue.Dropped, _capacity, report.Suppressed);
            }
            else if (report.Reason is { } reason)
            {
                LogRefused(_logger, MqttTopicRules.Printable(report.Producer), reason, report.Count, report.Suppressed);
            }
        }

        return outcome == EnqueueOutcome.Queued;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT queue full: {Producer} holds the most, so its oldest messages are dropped ({ProducerDropped} of its messages dropped so far, {Dropped} of all producers; capacity {Capacity} messages; {Suppressed} such lines not logged since the last one)")]
    private static partial void LogProducerDropped(ILogger logger, string producer, long producerDropped, long dropped, int capacity, long suppressed);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT message of {Producer} refused, never sent: {Reason} ({Refused} of its messages refused so far, {Suppressed} such lines not logged since the last one)")]
    private static partial void LogRefused(ILogger logger, string producer, string reason, long refused, long suppressed);
}
