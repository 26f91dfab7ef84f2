using System.Buffers;
using System.Threading.Channels;
using EdgeRunner.Service.Sensors;

namespace EdgeRunner.Service.Mqtt;

/// <summary>One queued message: its topic, its payload (a pooled or plain array, <see cref="Length"/> bytes used), its producer.</summary>
internal readonly record struct OutgoingMessage(string Topic, byte[] Buffer, int Length, bool Retain, bool Pooled, string Producer)
{
    /// <summary>The message's id in the disk spool (acknowledged there when complete); -1 for a message held in memory.</summary>
    public long SpoolId { get; init; } = -1;

    /// <summary>
    /// When the message was handed to the outbox (<see cref="TimeProvider.GetTimestamp"/>), for the publish timing
    /// (<see cref="PublishTiming"/>); 0 when not known (a message recovered from a spool an earlier run wrote).
    /// </summary>
    public long EnqueuedTimestamp { get; init; }
}

/// <summary>What <see cref="FairOutgoingQueue.TryEnqueue"/> did with a message.</summary>
internal enum EnqueueOutcome
{
    /// <summary>Queued (possibly after dropping older messages, see the drop report).</summary>
    Queued,

    /// <summary>The queue is closed (shutting down).</summary>
    Closed,

    /// <summary>The topic breaks MQTT's rules (<see cref="MqttTopicRules"/>).</summary>
    InvalidTopic,

    /// <summary>The message is larger than the broker's Maximum Packet Size or the queue's byte budget.</summary>
    TooLarge,
}

/// <summary>
/// The publisher's outgoing queue, fair between producers. A producer is a camera or a sensor stream: the
/// topic's parent (<c>{base}/vision/{camera}</c>, <c>{base}/sensors/{stream}</c>), so its result, event, state
/// and snapshot topics share one FIFO and keep their order. Producers are served round-robin, one message
/// each in turn. The queue holds at most <c>capacity</c> messages and <c>maxBytes</c> payload bytes in all;
/// when a new message goes over either, the oldest message of the producer holding the most (messages, or
/// bytes) is dropped, the new message's own producer first on a tie. So a producer flooding the queue drops
/// its own oldest results, while every producer below its fair share loses nothing; a producer alone may use
/// the whole queue (a broker outage with one camera loses nothing more than before).
/// Payloads up to <see cref="PooledPayloadLimit"/> bytes are copied into pooled arrays (no allocation per
/// message in steady state); larger ones into plain arrays, which the GC reclaims after a flood instead of the
/// pool keeping them. The pool is the queue's own, not <see cref="ArrayPool{T}.Shared"/>: the shared pool keeps
/// its arrays in per-thread and per-core caches that it trims at gen-2 collections under memory pressure, and
/// arrays are rented here on the pipelines' threads but returned on the publisher's, so a shared-pool array
/// could be reallocated at any time; the queue's own pool keeps what it was given back.
/// </summary>
internal sealed class FairOutgoingQueue
{
    /// <summary>Largest payload copied into a pooled array.</summary>
    public const int PooledPayloadLimit = 64 * 1024;

    /// <summary>Producers remembered without queued messages before the idle ones are forgotten (dynamic streams come and go).</summary>
    private const int MaxIdleProducers = 1024;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, ProducerQueue> _producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ProducerQueue>.AlternateLookup<ReadOnlySpan<char>> _byKey;
    // Producers with queued messages, in serving order; one may have emptied since (by a drop): skipped when met.
    private readonly Queue<ProducerQueue> _ready = new();
    // An auto-reset signal: one buffered item at most, written after every enqueue.
    private readonly Channel<bool> _signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly int _capacity;
    private readonly long _maxBytes;
    private readonly TimeProvider _timeProvider;
    // Buckets of 128 arrays: the in-flight window plus what a short burst queues; more during an outage are
    // plain allocations that the pool does not keep (as with the shared pool).
    private readonly ArrayPool<byte> _payloadPool = ArrayPool<byte>.Create(PooledPayloadLimit, maxArraysPerBucket: 128);
    private int _count;
    private long _bytes;
    private long _dropped;
    private long _refused;
    private long _maxPacketSize = long.MaxValue;
    private bool _closed;

    /// <param name="capacity">Messages queued at most, all producers together.</param>
    /// <param name="maxBytes">Payload bytes queued at most, all producers together.</param>
    /// <param name="timeProvider">Clock of the per-producer log rate limits and of each message's enqueue time.</param>
    public FairOutgoingQueue(int capacity, long maxBytes, TimeProvider timeProvider)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        _capacity = capacity;
        _maxBytes = maxBytes;
        _timeProvider = timeProvider;
        _byKey = _producers.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Messages queued now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>Payload bytes queued now.</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    /// <summary>Messages dropped to make room, all producers.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Messages refused (bad topic, too large), all producers.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>The broker's Maximum Packet Size (from CONNACK); <see cref="long.MaxValue"/> when it set none.</summary>
    public long MaxPacketSize
    {
        get => Interlocked.Read(ref _maxPacketSize);
        set => Interlocked.Exchange(ref _maxPacketSize, value);
    }

    /// <summary>The producer (fairness key) of <paramref name="topic"/>: the topic without its last level.</summary>
    public static ReadOnlySpan<char> ProducerOf(string topic)
    {
        var slash = topic.LastIndexOf('/');
        return slash <= 0 ? topic : topic.AsSpan(0, slash);
    }

    /// <summary>Frees a message's payload (back to the pool when it came from there).</summary>
    public void Release(in OutgoingMessage message)
    {
        if (message.Pooled)
        {
            _payloadPool.Return(message.Buffer);
        }
    }

    /// <summary>
    /// Checks and copies <paramref name="payload"/> for <paramref name="topic"/>. On <see cref="EnqueueOutcome.Queued"/>,
    /// <paramref name="report"/> names the producer whose oldest messages were dropped to make room, if any; on a refusal
    /// it names the message's own producer and the reason.
    /// </summary>
    public EnqueueOutcome TryEnqueue(string topic, ReadOnlySpan<byte> payload, bool retain, out QueueReport report)
    {
        report = default;
        ProducerQueue producer;
        lock (_lock)
        {
            if (_closed)
            {
                return EnqueueOutcome.Closed;
            }

            producer = ProducerFor(topic);
            if (!ReferenceEquals(producer.CheckedTopic, topic))
            {
                if (MqttTopicRules.Problem(topic, out var topicBytes) is { } problem)
                {
                    report = Refuse(producer, problem);
                    return EnqueueOutcome.InvalidTopic;
                }

                // Remember the last topic that passed (by reference: pipelines reuse their topic strings), so the check runs once.
                producer.CheckedTopic = topic;
                producer.CheckedTopicBytes = topicBytes;
            }

            var packet = MqttTopicRules.PacketSize(producer.CheckedTopicBytes, payload.Length);
            if (packet > MaxPacketSize || payload.Length > _maxBytes)
            {
                report = Refuse(producer, packet > MaxPacketSize
                    ? $"a message of {packet} bytes is larger than the broker's Maximum Packet Size ({MaxPacketSize} bytes)"
                    : $"a payload of {payload.Length} bytes is larger than Mqtt:QueueMaxBytes ({_maxBytes})");
                return EnqueueOutcome.TooLarge;
            }

            var pooled = payload.Length <= PooledPayloadLimit;
            var buffer = pooled ? _payloadPool.Rent(Math.Max(1, payload.Length)) : GC.AllocateUninitializedArray<byte>(payload.Length);
            payload.CopyTo(buffer);
            producer.Messages.Enqueue(new OutgoingMessage(topic, buffer, payload.Length, retain, pooled, producer.Key) { EnqueuedTimestamp = _timeProvider.GetTimestamp() });
            producer.Bytes += payload.Length;
            _count++;
            _bytes += payload.Length;
            if (!producer.InReady)
            {
                producer.InReady = true;
                _ready.Enqueue(producer);
            }

            while (_count > _capacity || _bytes > _maxBytes)
            {
                var victim = Largest(producer, byBytes: _count <= _capacity);
                var dropped = victim.Messages.Dequeue();
                victim.Bytes -= dropped.Length;
                _count--;
                _bytes -= dropped.Length;
                Release(dropped);
                victim.Dropped++;
                Interlocked.Increment(ref _dropped);
                report = new QueueReport(victim.Key, victim.Dropped, null, victim.Log.TryAcquire(out var suppressed), suppressed);
            }
        }

        _signal.Writer.TryWrite(true);
        return EnqueueOutcome.Queued;
    }

    /// <summary>The next message, round-robin over producers; false when the queue is empty.</summary>
    public bool TryDequeue(out OutgoingMessage message)
    {
        lock (_lock)
        {
            while (_ready.TryDequeue(out var producer))
            {
                if (!producer.Messages.TryDequeue(out message))
                {
                    // Emptied by drops since it was queued.
                    producer.InReady = false;
                    continue;
                }

                producer.Bytes -= message.Length;
                _count--;
                _bytes -= message.Length;
                if (producer.Messages.Count > 0)
                {
                    _ready.Enqueue(producer);
                }
                else
                {
                    producer.InReady = false;
                }

                return true;
            }

            message = default;
            return false;
        }
    }

    /// <summary>Waits until a message is queued: true then, false when the queue is closed and empty.</summary>
    public async ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (HasMessagesOrClosed(out var hasMessages))
            {
                return hasMessages;
            }

            // Consume a stale signal, then look again: a message queued after this look signals anew.
            _signal.Reader.TryRead(out _);
            if (HasMessagesOrClosed(out hasMessages))
            {
                return hasMessages;
            }

            if (!await _signal.Reader.WaitToReadAsync(cancellationToken))
            {
                return Count > 0;
            }
        }
    }

    /// <summary>Accepts nothing more; what is queued can still be read.</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
        }

        _signal.Writer.TryComplete();
    }

    /// <summary>Counts a message of <paramref name="producerTopic"/>'s producer refused after it was queued (at send time); the report says whether to log it.</summary>
    public QueueReport RefuseAtSend(string producerTopic, string reason)
    {
        lock (_lock)
        {
            return Refuse(ProducerFor(producerTopic), reason);
        }
    }

    /// <summary>Messages of <paramref name="producer"/> dropped to make room (0 for an unknown or forgotten producer).</summary>
    public long DroppedFor(string producer)
    {
        lock (_lock)
        {
            return _producers.TryGetValue(producer, out var p) ? p.Dropped : 0;
        }
    }

    /// <summary>Messages of <paramref name="producer"/> refused (bad topic, too large).</summary>
    public long RefusedFor(string producer)
    {
        lock (_lock)
        {
            return _producers.TryGetValue(producer, out var p) ? p.Refused : 0;
        }
    }

    private bool HasMessagesOrClosed(out bool hasMessages)
    {
        lock (_lock)
        {
            hasMessages = _count > 0;
            return hasMessages || _closed;
        }
    }

    private QueueReport Refuse(ProducerQueue producer, string reason)
    {
        producer.Refused++;
        Interlocked.Increment(ref _refused);
        return new QueueReport(producer.Key, producer.Refused, reason, producer.Log.TryAcquire(out var suppressed), suppressed);
    }

    private ProducerQueue ProducerFor(string topic)
    {
        var key = ProducerOf(topic);
        if (_byKey.TryGetValue(key, out var producer))
        {
            return producer;
        }

        if (_producers.Count >= MaxIdleProducers)
        {
            // Bounded memory when many streams come and go: forget producers with nothing queued (their counters with them).
            foreach (var idle in _producers.Values.Where(p => !p.InReady && p.Messages.Count == 0).ToList())
            {
                _producers.Remove(idle.Key);
            }
        }

        producer = new ProducerQueue(key.ToString(), new LogRateLimiter(_timeProvider, TimeSpan.FromSeconds(10)));
        _producers.Add(producer.Key, producer);
        return producer;
    }

    /// <summary>The producer holding the most messages (or bytes); <paramref name="incoming"/> on a tie.</summary>
    private ProducerQueue Largest(ProducerQueue incoming, bool byBytes)
    {
        var largest = incoming;
        foreach (var producer in _ready)
        {
            if (byBytes ? producer.Bytes > largest.Bytes : producer.Messages.Count > largest.Messages.Count)
            {
                largest = producer;
            }
        }

        return largest;
    }

    private sealed class ProducerQueue(string key, LogRateLimiter log)
    {
        public string Key { get; } = key;

        public Queue<OutgoingMessage> Messages { get; } = new();

        public LogRateLimiter Log { get; } = log;

        public long Bytes { get; set; }

        public long Dropped { get; set; }

        public long Refused { get; set; }

        public bool InReady { get; set; }

        public string? CheckedTopic { get; set; }

        public int CheckedTopicBytes { get; set; }
    }
}

/// <summary>
/// What happened to a producer on an enqueue: its messages dropped (<see cref="Reason"/> null) or refused so far,
/// and whether a log line is due now (rate-limited per producer) with the lines held back since the last one.
/// </summary>
internal readonly record struct QueueReport(string? Producer, long Count, string? Reason, bool Log, long Suppressed);
