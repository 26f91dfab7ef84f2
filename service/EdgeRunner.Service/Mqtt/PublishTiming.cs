using System.Diagnostics.Metrics;
using EdgeRunner.Service.Diagnostics;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// Times the publishing stage on the daemon's meter: <see cref="AckDurationName"/> from a message handed to the
/// outbox to its PUBACK (QoS 1; with QoS 0, to its send completing), and <see cref="QueueDurationName"/> from
/// handed over to its send starting (the wait in the outbox). Both in seconds, tagged <c>kind</c> (<c>camera</c>,
/// <c>stream</c> or <c>other</c>: the health message, states of no camera or stream) and, for a camera or a
/// stream, <c>id</c> (its key). A message sent again after a reconnect is timed from when it was first handed
/// over, so an outage shows in the histograms as the wait it caused; so is a spooled result (from its append).
/// A result recovered from a spool an earlier run wrote is not timed: its wait includes the time the daemon did
/// not run.
/// </summary>
/// <remarks>
/// Used by the publisher's one loop only, so the topic-to-tags cache needs no lock. Looked up by the topic's span,
/// so a message allocates nothing once its producer is known; the histogram records allocate nothing either (two
/// tags) and return at once while nothing listens.
/// </remarks>
internal sealed class PublishTiming
{
    /// <summary>Seconds from a message handed to the outbox to its PUBACK (QoS 1) or its send completing (QoS 0).</summary>
    public const string AckDurationName = "edgerunner.publish.ack.duration";

    /// <summary>Seconds from a message handed to the outbox to its send starting.</summary>
    public const string QueueDurationName = "edgerunner.publish.queue.duration";

    /// <summary>The tag saying what produced the message: <see cref="CameraKind"/>, <see cref="StreamKind"/> or <see cref="OtherKind"/>.</summary>
    public const string KindTag = "kind";

    /// <summary>The tag naming the camera or the stream (absent for <see cref="OtherKind"/>).</summary>
    public const string IdTag = "id";

    /// <summary>A camera's result, state or snapshot.</summary>
    public const string CameraKind = "camera";

    /// <summary>A sensor stream's result, event or state.</summary>
    public const string StreamKind = "stream";

    /// <summary>Anything else (the health message).</summary>
    public const string OtherKind = "other";

    /// <summary>Producers remembered at most; more (dynamic streams coming and going) clear the cache.</summary>
    private const int MaxProducers = 1024;

    // Seconds: a fraction of a millisecond to a local broker, seconds to a slow one, up to an hour through an outage.
    private static readonly InstrumentAdvice<double> SecondBuckets = new()
    {
        HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
    };

    private static readonly KeyValuePair<string, object?> Other = new(KindTag, OtherKind);

    private readonly Histogram<double> _ackDuration;
    private readonly Histogram<double> _queueDuration;
    private readonly TimeProvider _timeProvider;
    private readonly string _visionPrefix;
    private readonly string _sensorsPrefix;
    private readonly Dictionary<string, Origin> _origins = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Origin>.AlternateLookup<ReadOnlySpan<char>> _byProducer;

    /// <summary>Creates the two histograms on <paramref name="metrics"/>' meter.</summary>
    /// <param name="metrics">The daemon's meter.</param>
    /// <param name="topics">The daemon's topics (a camera's and a stream's topics lie under them).</param>
    /// <param name="timeProvider">The clock the outbox stamps messages with.</param>
    public PublishTiming(EdgeRunnerMetrics metrics, MqttTopics topics, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(topics);
        _timeProvider = timeProvider;
        _visionPrefix = topics.Base + "/vision/";
        _sensorsPrefix = topics.Base + "/sensors/";
        _byProducer = _origins.GetAlternateLookup<ReadOnlySpan<char>>();
        _ackDuration = metrics.Meter.CreateHistogram(
            AckDurationName,
            "s",
            "Time from a message handed to the MQTT outbox to its PUBACK (QoS 1) or its send completing (QoS 0), outage waits included",
            advice: SecondBuckets);
        _queueDuration = metrics.Meter.CreateHistogram(
            QueueDurationName,
            "s",
            "Time a message waited in the MQTT outbox: handed over to its send starting",
            advice: SecondBuckets);
    }

    /// <summary>Records the outbox wait of <paramref name="message"/>, whose send starts now.</summary>
    public void SendStarting(in OutgoingMessage message) => Record(_queueDuration, message);

    /// <summary>Records the time to the broker's acknowledgement of <paramref name="message"/>, which just came.</summary>
    public void Acknowledged(in OutgoingMessage message) => Record(_ackDuration, message);

    private void Record(Histogram<double> histogram, in OutgoingMessage message)
    {
        if (!histogram.Enabled || message.EnqueuedTimestamp == 0)
        {
            return;
        }

        var seconds = _timeProvider.GetElapsedTime(message.EnqueuedTimestamp).TotalSeconds;
        var origin = Lookup(message.Topic);
        if (origin.Id.Key is null)
        {
            histogram.Record(seconds, origin.Kind);
        }
        else
        {
            histogram.Record(seconds, origin.Kind, origin.Id);
        }
    }

    private Origin Lookup(string topic)
    {
        var producer = FairOutgoingQueue.ProducerOf(topic);
        if (_byProducer.TryGetValue(producer, out var origin))
        {
            return origin;
        }

        if (_origins.Count >= MaxProducers)
        {
            _origins.Clear();
        }

        origin = Classify(producer.ToString());
        _origins[origin.Producer] = origin;
        return origin;
    }

    /// <summary>A camera's producer is <c>{base}/vision/{camera}</c>, a stream's <c>{base}/sensors/{stream}</c> (a stream id may span levels).</summary>
    private Origin Classify(string producer)
    {
        if (producer.Length > _visionPrefix.Length && producer.StartsWith(_visionPrefix, StringComparison.Ordinal))
        {
            return new Origin(producer, new(KindTag, CameraKind), new(IdTag, producer[_visionPrefix.Length..]));
        }

        if (producer.Length > _sensorsPrefix.Length && producer.StartsWith(_sensorsPrefix, StringComparison.Ordinal))
        {
            return new Origin(producer, new(KindTag, StreamKind), new(IdTag, producer[_sensorsPrefix.Length..]));
        }

        return new Origin(producer, Other, default);
    }

    /// <summary>The tags of one producer's messages (<see cref="Id"/> default for <see cref="OtherKind"/>).</summary>
    private readonly record struct Origin(string Producer, KeyValuePair<string, object?> Kind, KeyValuePair<string, object?> Id);
}
