namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// Where results wait for the broker (MQTTnet's managed client calls this part the messages manager's store):
/// producers add without blocking, <see cref="MqttPublisher"/>'s one loop takes the next message, publishes
/// it, and only then completes it. Today's implementation is <see cref="MemoryOutbox"/> (bounded, fair between
/// producers, lost on exit); a disk spool for store-and-forward is another implementation of this contract:
/// it appends in <see cref="TryAdd"/>, hands messages out in order per producer in <see cref="TryTake"/>, and
/// deletes one only in <see cref="Complete"/> (after its PUBACK), so a message taken but never completed (the
/// process died, the connection broke) is still there on the next take or the next start.
/// </summary>
internal interface IMqttOutbox
{
    /// <summary>Messages waiting now.</summary>
    int Count { get; }

    /// <summary>Messages dropped because the outbox was full, all producers.</summary>
    long Dropped { get; }

    /// <summary>Messages refused (a topic MQTT does not allow, too large), all producers.</summary>
    long Refused { get; }

    /// <summary>The broker's Maximum Packet Size (from CONNACK); <see cref="long.MaxValue"/> when it set none. Larger messages are refused when added.</summary>
    long MaxPacketSize { get; set; }

    /// <summary>Messages of <paramref name="producer"/> dropped to make room.</summary>
    long DroppedFor(string producer);

    /// <summary>Messages of <paramref name="producer"/> refused.</summary>
    long RefusedFor(string producer);

    /// <summary>
    /// Adds a copy of <paramref name="payload"/> for <paramref name="topic"/>; never blocks. False when the
    /// outbox is closed or the message is refused (counted and logged rate-limited per producer).
    /// </summary>
    bool TryAdd(string topic, ReadOnlySpan<byte> payload, bool retain);

    /// <summary>Adds the latest retained message of every retained topic again (after a connect: the broker may have missed them).</summary>
    void AddRetainedAgain();

    /// <summary>The next message to publish; false when none waits. The message stays owed until <see cref="Complete"/>.</summary>
    bool TryTake(out OutgoingMessage message);

    /// <summary>Waits until a message waits: true then, false when the outbox is closed and empty.</summary>
    ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken);

    /// <summary>Done with a taken message: published, or dropped for good. Frees it.</summary>
    void Complete(in OutgoingMessage message);

    /// <summary>
    /// Gives back a taken message that was not delivered (shutdown came first): the in-memory outbox frees it
    /// (lost), a spool keeps it for the next take or the next start.
    /// </summary>
    void Abandon(in OutgoingMessage message);

    /// <summary>Why the outbox cannot do all it should (e.g. the spool's disk refuses writes); null while it can.</summary>
    string? Problem { get; }

    /// <summary>Counts and logs a taken message refused at send time (the broker's limit shrank since it was added); the caller then completes it.</summary>
    void RefuseAtSend(in OutgoingMessage message, string reason);

    /// <summary>Accepts nothing more; what waits can still be taken.</summary>
    void Close();

    /// <summary>Frees every message still waiting (shutdown after the drain time); returns how many there were.</summary>
    int DiscardAll();
}
