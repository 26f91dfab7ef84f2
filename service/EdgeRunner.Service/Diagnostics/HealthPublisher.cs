using System.Text.Json.Serialization;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Publishing;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Diagnostics;

/// <summary>
/// Every <c>Metrics:HealthIntervalSeconds</c>, publishes a retained health message on <c>{prefix}/{device}/health</c>
/// (schema <c>edgerunner.health/1</c>, docs/payloads.md): per camera its rates, drops and latency percentiles, per
/// stream its step rate and step-time percentiles, the provider of each model, the MQTT queue, the process's CPU
/// load, RSS, GC counts and uptime. Rates and percentiles are over the interval since the previous message.
/// <c>edgerunner status</c> prints the last one.
/// </summary>
/// <remarks>
/// Reads the counters the pipelines keep and the histograms through <see cref="MetricsCollector"/> (created only
/// when this runs), so the per-frame paths do nothing for it. One message per interval: its JSON is built with the
/// serializer and allocates, which at most once a second is irrelevant.
/// </remarks>
internal sealed partial class HealthPublisher : IHostedService, IDisposable
{
    /// <summary>The health message's schema id (docs/schemas/health.schema.json).</summary>
    public const string SchemaId = "edgerunner.health/1";

    private readonly MetricsOptions _options;
    private readonly IServiceProvider _services;
    private readonly VisionService _vision;
    private readonly SensorService _sensors;
    private readonly MqttPublisher _publisher;
    private readonly PayloadOrigin _origin;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<HealthPublisher> _logger;
    private readonly string _topic;
    private readonly long _started;
    private readonly Dictionary<string, long[]> _fineBefore = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _countersBefore = new(StringComparer.Ordinal);
    private long _lastTimestamp;
    private TimeSpan _lastCpu;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;
    private long _published;
    private long _failures;

    public HealthPublisher(IOptions<MetricsOptions> options, IServiceProvider services, VisionService vision, SensorService sensors, MqttPublisher publisher, MqttTopics topics, PayloadOrigin origin, TimeProvider timeProvider, ILogger<HealthPublisher> logger)
    {
        _logger = logger;
        _options = options.Value;
        _services = services;
        _vision = vision;
        _sensors = sensors;
        _publisher = publisher;
        _origin = origin;
        _timeProvider = timeProvider;
        _topic = HealthTopic(topics);
        _started = timeProvider.GetTimestamp();
        _lastTimestamp = _started;
        _lastCpu = Environment.CpuUsage.TotalTime;
    }

    /// <summary>Health messages handed to the publisher so far.</summary>
    public long Published => Interlocked.Read(ref _published);

    /// <summary>The health topic of the device: <c>{prefix}/{device}/health</c>.</summary>
    public static string HealthTopic(MqttTopics topics)
    {
        ArgumentNullException.ThrowIfNull(topics);
        return $"{topics.Base}/health";
    }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_options.HealthIntervalSeconds > 0)
        {
            _loop = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Not a <see cref="BackgroundService"/>: its StopAsync throws when the host is stopped again after it was disposed
    /// (a test's host disposed by its using, then stopped by its scenario); stopping twice here is harmless.
    /// </remarks>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_loop is null)
        {
            return;
        }

        try
        {
            await _stopping.CancelAsync();
        }
        catch (ObjectDisposedException)
        {
            // Disposed: the loop ended long ago.
        }

        await _loop.WaitAsync(cancellationToken);
    }

    /// <inheritdoc />
    public void Dispose() => _stopping.Dispose();

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        var collector = _services.GetRequiredService<MetricsCollector>();
        // The first figures a second after start, so that `status` soon has something; then at the interval.
        var first = TimeSpan.FromSeconds(Math.Min(1, _options.HealthIntervalSeconds));
        try
        {
            await Task.Delay(first, _timeProvider, stoppingToken);
            Publish(collector);
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(_options.HealthIntervalSeconds), _timeProvider);
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                Publish(collector);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private void Publish(MetricsCollector collector)
    {
        try
        {
            PublishOnce(collector);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A figure that cannot be read now (a client in a bad state, a pipeline going away) costs one health
            // message, never the loop: the next interval tries again.
            if (Interlocked.Increment(ref _failures) == 1)
            {
                LogHealthFailed(_logger, ex.Message);
            }
        }
    }

    private void PublishOnce(MetricsCollector collector)
    {
        var payload = Build(collector.Collect());
        if (_publisher.TryPublish(_topic, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(payload, HealthPayloadContext.Default.HealthPayload), retain: true))
        {
            Interlocked.Increment(ref _published);
        }
    }

    /// <summary>The health message for <paramref name="snapshot"/>: rates and percentiles since the previous one.</summary>
    internal HealthPayload Build(MetricsSnapshot snapshot)
    {
        var now = _timeProvider.GetTimestamp();
        var seconds = Math.Max(1e-3, _timeProvider.GetElapsedTime(_lastTimestamp, now).TotalSeconds);
        _lastTimestamp = now;
        var cpu = Environment.CpuUsage.TotalTime;
        var cpuPercent = (cpu - _lastCpu).TotalSeconds / seconds * 100;
        _lastCpu = cpu;

        var cameras = new List<CameraHealth>();
        foreach (var pipeline in _vision.Pipelines)
        {
            var id = pipeline.CameraId;
            cameras.Add(new CameraHealth(
                id,
                pipeline.Model.Id,
                pipeline.Model.ExecutionProvider,
                Rate($"captured/{id}", pipeline.FramesCaptured, seconds),
                Rate($"inferred/{id}", pipeline.FramesProcessed, seconds),
                pipeline.FramesCaptured,
                pipeline.FramesProcessed,
                pipeline.FramesDropped,
                pipeline.FramesSkippedRate + pipeline.FramesSkippedMotion,
                pipeline.FramesFailed,
                Percentiles(snapshot, "edgerunner.result.latency", EdgeRunnerMetrics.CameraTag, id),
                Percentiles(snapshot, "edgerunner.inference.duration", EdgeRunnerMetrics.CameraTag, id),
                PublishPercentiles(snapshot, PublishTiming.CameraKind, id)));
        }

        var streams = new List<StreamHealth>();
        foreach (var runner in _sensors.Streams)
        {
            var id = runner.StreamId;
            var model = runner.Processor.Model;
            streams.Add(new StreamHealth(
                id,
                model.Id,
                model.ExecutionProvider,
                Rate($"steps/{id}", runner.Steps, seconds),
                runner.Steps,
                runner.StateResets,
                runner.InvalidSamples,
                Percentiles(snapshot, "edgerunner.inference.duration", EdgeRunnerMetrics.StreamTag, id),
                PublishPercentiles(snapshot, PublishTiming.StreamKind, id)));
        }

        return new HealthPayload(
            SchemaId,
            _origin.Device,
            _origin.BootId,
            _timeProvider.GetUtcNow(),
            Math.Round(_timeProvider.GetElapsedTime(_started, now).TotalSeconds, 1),
            Math.Round(seconds, 2),
            Math.Round(cpuPercent, 1),
            Environment.WorkingSet,
            GC.GetTotalMemory(forceFullCollection: false),
            [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)],
            new MqttHealth(_publisher.IsConnected, _publisher.Published, _publisher.Dropped, _publisher.Queued, Math.Max(0, _publisher.Connects - 1))
            {
                AckMilliseconds = AllSeriesPercentiles(snapshot, PublishTiming.AckDurationName),
                QueueMilliseconds = AllSeriesPercentiles(snapshot, PublishTiming.QueueDurationName),
            },
            cameras,
            streams);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Health message not published: {Reason} (logged once; it is tried again at every interval)")]
    private static partial void LogHealthFailed(ILogger logger, string reason);

    /// <summary>Per second since the previous message (0 for the first of a new camera or stream).</summary>
    private double Rate(string key, long count, double seconds)
    {
        var before = _countersBefore.TryGetValue(key, out var b) ? b : count;
        _countersBefore[key] = count;
        return Math.Round((count - before) / seconds, 2);
    }

    private LatencyPercentiles? Percentiles(MetricsSnapshot snapshot, string instrument, string tag, string id)
    {
        if (snapshot.Histogram(instrument, tag, id) is not { } series)
        {
            return null;
        }

        return IntervalPercentiles($"{instrument}/{tag}/{id}", series.Fine, 1);
    }

    /// <summary>The interval's percentiles of <paramref name="fine"/> (a series' fine buckets, in its unit times <paramref name="toMilliseconds"/>), against its copy of the previous message.</summary>
    private LatencyPercentiles? IntervalPercentiles(string key, long[] fine, double toMilliseconds)
    {
        _fineBefore.TryGetValue(key, out var before);
        _fineBefore[key] = fine;
        var p50 = MetricsCollector.Percentile(fine, before, 0.5);
        var p99 = MetricsCollector.Percentile(fine, before, 0.99);
        return p50 is { } a && p99 is { } b ? new LatencyPercentiles(Math.Round(a * toMilliseconds, 3), Math.Round(b * toMilliseconds, 3)) : null;
    }

    /// <summary>Handed to the publisher to acknowledged, for the messages of one camera or stream (<see cref="PublishTiming.AckDurationName"/>, seconds, shown in ms).</summary>
    private LatencyPercentiles? PublishPercentiles(MetricsSnapshot snapshot, string kind, string id)
    {
        var series = snapshot.Histograms.FirstOrDefault(h => h.Instrument.Name == PublishTiming.AckDurationName
            && h.Tag(PublishTiming.KindTag) == kind && h.Tag(PublishTiming.IdTag) == id);
        return series is null ? null : IntervalPercentiles($"{PublishTiming.AckDurationName}/{kind}/{id}", series.Fine, 1000);
    }

    /// <summary>The percentiles of every series of <paramref name="instrument"/> (seconds) together, in ms: all the messages published.</summary>
    private LatencyPercentiles? AllSeriesPercentiles(MetricsSnapshot snapshot, string instrument)
    {
        long[]? fine = null;
        foreach (var series in snapshot.Histograms)
        {
            if (series.Instrument.Name == instrument)
            {
                fine ??= new long[series.Fine.Length];
                for (var i = 0; i < fine.Length; i++)
                {
                    fine[i] += series.Fine[i];
                }
            }
        }

        // The collector keeps every series it has seen (a removed stream's included), so the sum never shrinks.
        return fine is null ? null : IntervalPercentiles($"{instrument}/all", fine, 1000);
    }
}

/// <summary>The health message (<c>edgerunner.health/1</c>).</summary>
internal sealed record HealthPayload(
    [property: JsonPropertyName("schema")] string Schema,
    [property: JsonPropertyName("device")] string Device,
    [property: JsonPropertyName("boot_id")] string BootId,
    [property: JsonPropertyName("timestamp")] DateTimeOffset Timestamp,
    [property: JsonPropertyName("uptime_s")] double UptimeSeconds,
    [property: JsonPropertyName("interval_s")] double IntervalSeconds,
    [property: JsonPropertyName("cpu_percent")] double CpuPercent,
    [property: JsonPropertyName("rss_bytes")] long RssBytes,
    [property: JsonPropertyName("managed_heap_bytes")] long ManagedHeapBytes,
    [property: JsonPropertyName("gc_collections")] IReadOnlyList<int> GcCollections,
    [property: JsonPropertyName("mqtt")] MqttHealth Mqtt,
    [property: JsonPropertyName("cameras")] IReadOnlyList<CameraHealth> Cameras,
    [property: JsonPropertyName("streams")] IReadOnlyList<StreamHealth> Streams);

/// <summary>The publisher's part of the health message.</summary>
internal sealed record MqttHealth(
    [property: JsonPropertyName("connected")] bool Connected,
    [property: JsonPropertyName("published")] long Published,
    [property: JsonPropertyName("dropped")] long Dropped,
    [property: JsonPropertyName("queued")] long Queued,
    [property: JsonPropertyName("reconnects")] long Reconnects)
{
    /// <summary>Handed to the publisher to acknowledged by the broker (QoS 1; sent, QoS 0), all messages, over the interval.</summary>
    [JsonPropertyName("ack_ms")]
    public LatencyPercentiles? AckMilliseconds { get; init; }

    /// <summary>Handed to the publisher to its send starting (the wait in the outbox), all messages, over the interval.</summary>
    [JsonPropertyName("queue_ms")]
    public LatencyPercentiles? QueueMilliseconds { get; init; }
}

/// <summary>One camera's part of the health message.</summary>
internal sealed record CameraHealth(
    [property: JsonPropertyName("camera")] string Camera,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("provider")] string Provider,
    [property: JsonPropertyName("capture_fps")] double CaptureFps,
    [property: JsonPropertyName("inference_fps")] double InferenceFps,
    [property: JsonPropertyName("frames_captured")] long FramesCaptured,
    [property: JsonPropertyName("frames_inferred")] long FramesInferred,
    [property: JsonPropertyName("frames_dropped")] long FramesDropped,
    [property: JsonPropertyName("frames_skipped")] long FramesSkipped,
    [property: JsonPropertyName("frames_failed")] long FramesFailed,
    [property: JsonPropertyName("latency_ms")] LatencyPercentiles? LatencyMilliseconds,
    [property: JsonPropertyName("inference_ms")] LatencyPercentiles? InferenceMilliseconds,
    [property: JsonPropertyName("publish_ack_ms")] LatencyPercentiles? PublishAckMilliseconds);

/// <summary>One sensor stream's part of the health message.</summary>
internal sealed record StreamHealth(
    [property: JsonPropertyName("stream")] string Stream,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("provider")] string Provider,
    [property: JsonPropertyName("steps_per_s")] double StepsPerSecond,
    [property: JsonPropertyName("steps")] long Steps,
    [property: JsonPropertyName("state_resets")] long StateResets,
    [property: JsonPropertyName("invalid_samples")] long InvalidSamples,
    [property: JsonPropertyName("step_ms")] LatencyPercentiles? StepMilliseconds,
    [property: JsonPropertyName("publish_ack_ms")] LatencyPercentiles? PublishAckMilliseconds);

/// <summary>Percentiles over the interval, in milliseconds (within 8 %: the upper bound of the fine bucket).</summary>
internal sealed record LatencyPercentiles(
    [property: JsonPropertyName("p50")] double P50,
    [property: JsonPropertyName("p99")] double P99);

[JsonSerializable(typeof(HealthPayload))]
internal sealed partial class HealthPayloadContext : JsonSerializerContext;
