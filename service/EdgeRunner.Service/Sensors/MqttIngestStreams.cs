using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using EdgeRunner.Service.Catalog;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors;

/// <summary>What <see cref="MqttIngestStreams"/> needs of the service that runs the streams.</summary>
internal interface ISensorStreamHost
{
    /// <summary>The streams running now.</summary>
    IReadOnlyList<StreamRunner> Streams { get; }

    /// <summary>The stream's model, or false when it cannot be loaded (the stream is then marked failed).</summary>
    bool TryGetModel(ResolvedModel resolved, string streamId, out SharedSequenceModel loaded);

    /// <summary>Builds one stream as a configured one is built (null: its model cannot be loaded).</summary>
    Task<StreamRunner?> CreateStreamAsync(string streamId, SensorStreamOptions options, CancellationToken cancellationToken);

    /// <summary>Runs a stream created after start under supervision (null: the service is stopping).</summary>
    Task? TryRun(StreamRunner runner);

    /// <summary>Removes an ended stream created after start; false when the service already disposes it.</summary>
    bool TryRemove(StreamRunner runner);
}

/// <summary>
/// The sensor streams' life cycle over MQTT: ingest routes (Kind Mqtt), streams created per matching
/// topic of a wildcard route, reset commands, idle eviction with checkpoint and restore, and the per-route
/// cap. The streams themselves are built and run by the <see cref="ISensorStreamHost"/> (the
/// <see cref="SensorService"/>), the same way for dynamic streams as for configured ones.
/// </summary>
internal sealed partial class MqttIngestStreams
{
    private readonly SensorsOptions _sensors;
    private readonly ModelCatalog _catalog;
    private readonly MqttTopics _topics;
    private readonly IMqttSubscriptions _subscriptions;
    private readonly SensorStreamEvents _events;
    private readonly ISensorStreamHost _host;
    private readonly TimeProvider _timeProvider;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly Lock _ingestLock = new();
    private readonly List<MqttIngestRoute> _routes = [];
    // Both maps hold the active MQTT-fed streams (static and dynamic); guarded by _ingestLock.
    private readonly Dictionary<string, LiveStream> _liveByTopic = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LiveStream> _liveById = new(StringComparer.Ordinal);
    // A stream being evicted, until its last checkpoint is written: a returning stream waits for it before restoring.
    private readonly Dictionary<string, Task> _endingById = new(StringComparer.Ordinal);
    // Sources of dynamic streams handed to the host's stream construction, which looks them up by stream id (MqttSourceFor).
    private readonly Dictionary<string, MqttSensorSource> _pendingDynamicSources = new(StringComparer.Ordinal);
    private readonly List<Task> _lifecycleTasks = [];
    private LogRateLimiter? _dispatchLog;
    private long _dispatchErrors;
    // Set when the service is disposing: the models are about to go, so no new stream may start.
    private bool _ingestClosed;

    public MqttIngestStreams(
        SensorsOptions sensors,
        ModelCatalog catalog,
        MqttTopics topics,
        IMqttSubscriptions subscriptions,
        SensorStreamEvents events,
        ISensorStreamHost host,
        TimeProvider timeProvider,
        ILoggerFactory loggerFactory,
        ILogger logger)
    {
        _sensors = sensors;
        _catalog = catalog;
        _topics = topics;
        _subscriptions = subscriptions;
        _events = events;
        _host = host;
        _timeProvider = timeProvider;
        _loggerFactory = loggerFactory;
        _logger = logger;
        Resets = new SensorResetCommands(topics, DeliverReset, timeProvider, logger);
    }

    /// <summary>The reset commands (delivered here: an MQTT-fed stream takes them in order with its samples).</summary>
    public SensorResetCommands Resets { get; }

    /// <summary>The MQTT ingest routes (for tests and metrics).</summary>
    public IReadOnlyList<MqttIngestRoute> IngestRoutes
    {
        get
        {
            lock (_ingestLock)
            {
                return [.. _routes];
            }
        }
    }

    /// <summary>Messages dropped from full ingest queues of the active MQTT streams.</summary>
    public long IngestMessagesDropped
    {
        get
        {
            lock (_ingestLock)
            {
                return _liveById.Values.Sum(l => l.Source.Dropped);
            }
        }
    }

    /// <summary>Whether the entry is an MQTT route whose streams appear at run time, one per matching topic.</summary>
    public static bool IsWildcardIngest(SensorStreamOptions options) =>
        options.Enabled && options.Source.Kind == SensorSourceKind.Mqtt && MqttTopicFilter.HasWildcard(MqttIngestRoute.IngestOf(options).Topic);

    /// <summary>
    /// Checks and registers every wildcard route at startup (its model is loaded now; one that cannot be
    /// loaded marks the route failed); its streams come later. A throwaway processor runs the checks a
    /// configured stream gets at startup (labels against the output, forecast/reconstruction sizes,
    /// trigger settings): without it a misconfigured route started fine and then failed at every message.
    /// </summary>
    public void RegisterWildcardIngests()
    {
        RejectIngestOverCommands();
        foreach (var (configId, options) in _sensors.Where(s => IsWildcardIngest(s.Value)))
        {
            var resolved = _catalog.Get(options.Model);
            if (!_host.TryGetModel(resolved, configId, out var loaded))
            {
                continue;
            }

            var manifest = resolved.Manifest!;
            try
            {
                _ = SequenceProcessorFactory.CreateProcessor(configId, resolved, loaded.Model, loaded.Lock, batcher: null);
            }
            catch (ArgumentException ex)
            {
                // Bad trigger settings (HysteresisTrigger's checks); the other checks throw StartupException already.
                throw new StartupException($"Sensors:{configId}:Model: '{resolved.Id}': {ex.Message}", StartupException.ConfigError, ex);
            }

            AddRoute(configId, options, resolved.Manifest!.Stream!.Channels, resolved.Manifest.Stream.SampleRateHz);
        }
    }

    /// <summary>
    /// An ingest filter must not overlap the daemon's own command subscription (made in <see cref="Subscribe"/>):
    /// the broker would deliver a copy of each such message per subscription, and each copy goes to every
    /// matching handler, so its samples would run twice. Options validation checks the entries against each
    /// other; this check needs the device's topic base, known here.
    /// </summary>
    private void RejectIngestOverCommands()
    {
        var commands = $"{_topics.Base}/sensors/{(_sensors.Any(s => IsWildcardIngest(s.Value)) ? "#" : "+/reset")}";
        foreach (var (configId, options) in _sensors.Where(s => s.Value.Enabled && s.Value.Source.Kind == SensorSourceKind.Mqtt))
        {
            if (MqttFilterOverlap.Overlaps(MqttIngestRoute.IngestOf(options).Topic, commands, out var example))
            {
                throw new StartupException(
                    $"Sensors:{configId}:Source:Topic: overlaps the daemon's command topics '{commands}' (both match '{example}'); publish samples outside {_topics.Base}/sensors/",
                    StartupException.ConfigError);
            }
        }
    }

    private MqttIngestRoute AddRoute(string configId, SensorStreamOptions options, IReadOnlyList<string> channels, double modelRateHz)
    {
        var route = new MqttIngestRoute(configId, options, channels, modelRateHz, _timeProvider, _loggerFactory.CreateLogger($"EdgeRunner.Sensor.{configId}"));
        lock (_ingestLock)
        {
            _routes.Add(route);
        }

        return route;
    }

    /// <summary>The source of an MQTT-fed stream: the one prepared for a dynamic stream, or a new route for a configured exact topic.</summary>
    public MqttSensorSource MqttSourceFor(string streamId, SensorStreamOptions options, IReadOnlyList<string> channels, double modelRateHz)
    {
        lock (_ingestLock)
        {
            if (_pendingDynamicSources.Remove(streamId, out var prepared))
            {
                return prepared;
            }
        }

        var route = AddRoute(streamId, options, channels, modelRateHz);
        var live = new LiveStream(route, streamId, route.Filter);
        live.Source = NewSource(live, idleTimeout: TimeSpan.Zero);
        lock (_ingestLock)
        {
            _liveByTopic[route.Filter] = live;
            _liveById[streamId] = live;
            route.ActiveStreams++;
        }

        return live.Source;
    }

    private MqttSensorSource NewSource(LiveStream live, TimeSpan idleTimeout) => new(
        live.StreamId,
        live.Topic,
        live.Route.Channels,
        live.Route.SampleRateHz,
        live.Route.Ingest.QueueCapacity,
        idleTimeout,
        idleTimeout > TimeSpan.Zero ? () => TryEvict(live) : null,
        _timeProvider,
        _loggerFactory.CreateLogger($"EdgeRunner.Sensor.{live.Route.ConfigId}"));

    /// <summary>Every runner gets the reset acknowledgement; MQTT-fed ones take resets from their queue, in order with the samples.</summary>
    public async IAsyncEnumerable<StreamRunner> WithLifecycle(IAsyncEnumerable<StreamRunner> runners, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var runner in runners.WithCancellation(cancellationToken))
        {
            Attach(runner);
            yield return runner;
        }
    }

    private void Attach(StreamRunner runner)
    {
        runner.ResetApplied = OnResetApplied;
        LiveStream? live;
        lock (_ingestLock)
        {
            _liveById.TryGetValue(runner.StreamId, out live);
        }

        if (live is not null)
        {
            // Runs inside the source's ReadAsync, i.e. on the stream's own loop: the reset is applied at once.
            live.Source.ResetReached = reason =>
            {
                runner.RequestReset(reason);
                runner.ApplyRequestedReset();
            };
        }
    }

    /// <summary>Subscribes the ingest routes and, when there are streams, the command topics.</summary>
    public void Subscribe()
    {
        // Subscribed only now that every configured stream runs: a message never finds a stream that is not there yet.
        _dispatchLog = new LogRateLimiter(_timeProvider, TimeSpan.FromSeconds(10));
        foreach (var route in IngestRoutes)
        {
            _subscriptions.Subscribe(route.Filter, (topic, payload) => OnIngestMessage(route, topic, payload));
        }

        if (_host.Streams.Count > 0 || _routes.Count > 0)
        {
            // Stream ids of wildcard routes span levels, so their reset topics need '#'; no-local keeps the
            // daemon's own results under sensors/ from coming back to it.
            var anyDynamic = IngestRoutes.Any(r => r.IsWildcard);
            _subscriptions.Subscribe($"{_topics.Base}/sensors/{(anyDynamic ? "#" : "+/reset")}", OnCommand);
        }
    }

    /// <summary>Unexpected errors dispatching an ingest message or a command (each message dropped, the receive loop going on).</summary>
    public long DispatchErrors => Interlocked.Read(ref _dispatchErrors);

    /// <summary>
    /// A handler of the MQTT receive loop failed unexpectedly: that one message is dropped, logged with its
    /// stack (rate-limited) and counted, and the loop goes on with the next.
    /// </summary>
    private void DispatchFailed(string topic, Exception ex)
    {
        var count = Interlocked.Increment(ref _dispatchErrors);
        long suppressed = 0;
        if (_dispatchLog is null || _dispatchLog.TryAcquire(out suppressed))
        {
            LogDispatchFailed(_logger, topic, count, suppressed, ex);
        }
    }

    /// <summary>One ingest message, on the MQTT receive loop: parse into a pooled buffer, route to its stream's queue, return.</summary>
    private void OnIngestMessage(MqttIngestRoute route, string topic, ReadOnlySequence<byte> payload)
    {
        try
        {
            DispatchIngestMessage(route, topic, payload);
        }
#pragma warning disable CA1031 // One message must not take the receive loop, and with it every stream, down.
        catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
        {
            DispatchFailed(topic, ex);
        }
    }

    private void DispatchIngestMessage(MqttIngestRoute route, string topic, ReadOnlySequence<byte> payload)
    {
        var arrival = _timeProvider.GetUtcNow();
        var length = (int)Math.Min(payload.Length, int.MaxValue / 4);
        byte[]? copied = null;
        ReadOnlySpan<byte> bytes;
        if (payload.IsSingleSegment)
        {
            bytes = payload.FirstSpan;
        }
        else
        {
            copied = ArrayPool<byte>.Shared.Rent(length);
            payload.Slice(0, length).CopyTo(copied);
            bytes = copied.AsSpan(0, length);
        }

        var samples = ArrayPool<float>.Shared.Rent(route.Parser.MaxSamples(bytes.Length) * route.Parser.Channels);
        var parsed = route.Parser.TryParse(bytes, samples, out var count, out var firstSampleTime, out var error);
        if (copied is not null)
        {
            ArrayPool<byte>.Shared.Return(copied);
        }

        if (!parsed)
        {
            ArrayPool<float>.Shared.Return(samples);
            route.RejectMalformed(topic, error);
            return;
        }

        lock (_ingestLock)
        {
            // Only a stream of the route whose handler runs: when another route's filter also matches the
            // topic (startup rejects that, but the broker may still deliver one copy per matching
            // subscription), that route's own handler feeds its stream, and a sample must run once.
            if (_liveByTopic.TryGetValue(topic, out var live)
                ? live.Route != route
                : !(route.IsWildcard && TryAdmit(route, topic, out live)))
            {
                ArrayPool<float>.Shared.Return(samples);
                return;
            }

            live!.Source.TryEnqueue(samples, count, firstSampleTime ?? arrival);
        }
    }

    /// <summary>A new topic of a wildcard route: a new stream, unless the route's cap is reached. Under <see cref="_ingestLock"/>.</summary>
    private bool TryAdmit(MqttIngestRoute route, string topic, out LiveStream? live)
    {
        live = null;
        if (_ingestClosed || !route.TryGetStreamId(topic, out var streamId))
        {
            return false;
        }

        if (route.ActiveStreams >= route.Ingest.MaxStreams)
        {
            if (route.RejectOverCap(streamId))
            {
                LogStreamRejected(_logger, topic, route.ConfigId, route.Ingest.MaxStreams, route.StreamsRejected);
                PublishEvent(streamId, "rejected", $"Sensors:{route.ConfigId}:Source:MaxStreams ({route.Ingest.MaxStreams}) streams are active", topic, extra: null);
            }

            return false;
        }

        live = new LiveStream(route, streamId, topic);
        live.Source = NewSource(live, TimeSpan.FromSeconds(route.Ingest.IdleTimeoutSeconds));
        _liveByTopic[topic] = live;
        _liveById[streamId] = live;
        route.ActiveStreams++;
        route.Admitted(streamId);
        var previous = _endingById.GetValueOrDefault(streamId);
        _lifecycleTasks.RemoveAll(t => t.IsCompleted);
        _lifecycleTasks.Add(RunDynamicStreamAsync(live, previous, CancellationToken.None));
        return true;
    }

    /// <summary>Creates, runs and finally removes one dynamic stream. Never throws.</summary>
    private async Task RunDynamicStreamAsync(LiveStream live, Task? previous, CancellationToken cancellationToken)
    {
        // Off the MQTT receive loop (and out of the ingest lock) before any real work.
        await Task.Yield();
        try
        {
            if (previous is not null)
            {
                // The same stream's previous incarnation is still writing its checkpoint: restore what it wrote.
                await previous.WaitAsync(cancellationToken);
            }

            StreamRunner? runner = null;
            Exception? failure = null;
            try
            {
                lock (_ingestLock)
                {
                    _pendingDynamicSources[live.StreamId] = live.Source;
                }

                // A model that cannot be loaded yields no runner (its failure is logged and published by TryGetModel).
                runner = await _host.CreateStreamAsync(live.StreamId, live.Route.Options, cancellationToken)
                    ?? throw new InvalidOperationException($"model '{live.Route.Options.Model}' could not be loaded");
            }
#pragma warning disable CA1031 // Anything creating one stream can throw (a damaged checkpoint, an unwritable state folder, a bad setting) must fail that stream only: an escaping exception left it routed, its slot taken and the service's disposal throwing.
            catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
            {
                failure = ex;
            }
            finally
            {
                if (runner is null)
                {
                    // Never created: free the slot and the queued samples; the next message of the topic tries again.
                    lock (_ingestLock)
                    {
                        if (_pendingDynamicSources.TryGetValue(live.StreamId, out var pending) && pending == live.Source)
                        {
                            _pendingDynamicSources.Remove(live.StreamId);
                        }
                    }

                    Forget(live);
                    await live.Source.DisposeAsync();
                }
            }

            if (runner is null)
            {
                // Reported once the slot is free: whoever sees the event sees the route as it is after it.
                DynamicStreamFailed(live, failure!);
                return;
            }

            live.Route.Created(live.StreamId);
            Attach(runner);
            LogStreamAdded(_logger, live.StreamId, live.Topic, live.Route.ConfigId, live.Route.ActiveStreams, live.Route.Ingest.MaxStreams);
            var running = _host.TryRun(runner);
            if (running is null)
            {
                // The daemon is stopping.
                Forget(live);
                await runner.DisposeAsync();
                return;
            }

            await running;
            // The final checkpoint is written as the loop ends: whether it was, not whether one was configured.
            var checkpointed = runner.LastCheckpointWritten;
            if (_host.TryRemove(runner))
            {
                await runner.DisposeAsync();
            }

            Forget(live);
            if (live.Evicted)
            {
                LogEvicted(_logger, live.StreamId, live.Route.Ingest.IdleTimeoutSeconds, checkpointed);
                PublishEvent(live.StreamId, "evicted", $"no samples for {live.Route.Ingest.IdleTimeoutSeconds:0.###} s", live.Topic, w => w.WriteBoolean("checkpointed", checkpointed));
            }
        }
#pragma warning disable CA1031 // The lifecycle task must not fault: the service's disposal awaits it before releasing the models.
        catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
        {
            LogDynamicStreamEndFailed(_logger, live.StreamId, ex);
        }
        finally
        {
            // Whatever happened, the stream leaves the routing tables (a no-op when it already has).
            Forget(live);
            live.Ended.TrySetResult();
            lock (_ingestLock)
            {
                if (_endingById.TryGetValue(live.StreamId, out var ending) && ending == live.Ended.Task)
                {
                    _endingById.Remove(live.StreamId);
                }
            }
        }
    }

    private static bool IsFatal(Exception ex) => StreamSupervisor.IsFatal(ex);

    /// <summary>
    /// Counts a dynamic stream that could not be created; logs it rate-limited per route and publishes a
    /// "failed" event the first time that stream fails: the topic's every message tries again, so a
    /// lasting failure must not log or publish per message.
    /// </summary>
    private void DynamicStreamFailed(LiveStream live, Exception ex)
    {
        var route = live.Route;
        var first = route.StreamFailed(live.StreamId, out var count);
        if (route.FailureLog.TryAcquire(out var suppressed))
        {
            LogDynamicStreamFailed(_logger, live.StreamId, live.Topic, ex.Message, count, suppressed);
        }

        if (first)
        {
            PublishEvent(live.StreamId, "failed", ex.Message, live.Topic, extra: null);
        }
    }

    /// <summary>Idle timeout of a dynamic stream, on its own loop: evict it unless a message arrived meanwhile.</summary>
    private bool TryEvict(LiveStream live)
    {
        lock (_ingestLock)
        {
            if (live.Source.HasQueued)
            {
                return false;
            }

            live.Evicted = true;
            Forget(live);
            // Until its loop has written the last checkpoint, a returning stream of this id waits.
            _endingById[live.StreamId] = live.Ended.Task;
            live.Source.Complete();
            return true;
        }
    }

    /// <summary>Takes a stream out of the routing tables (once) and frees its slot.</summary>
    private void Forget(LiveStream live)
    {
        lock (_ingestLock)
        {
            if (_liveById.TryGetValue(live.StreamId, out var current) && current == live)
            {
                _liveById.Remove(live.StreamId);
                _liveByTopic.Remove(live.Topic);
                live.Route.ActiveStreams--;
            }
        }
    }

    /// <summary>A message under the command filter: reset commands are handled, anything else ignored.</summary>
    private void OnCommand(string topic, ReadOnlySequence<byte> payload)
    {
        try
        {
            Resets.Handle(topic, payload);
        }
#pragma warning disable CA1031 // One command must not take the receive loop down.
        catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
        {
            DispatchFailed(topic, ex);
        }
    }

    /// <summary>Hands a reset command to its stream: an MQTT-fed one in order with its samples, any other before its next block. False: no such stream.</summary>
    internal bool DeliverReset(string streamId, string reason)
    {
        lock (_ingestLock)
        {
            if (_liveById.TryGetValue(streamId, out var live))
            {
                live.Source.TryEnqueueReset(reason);
                return true;
            }
        }

        var runner = _host.Streams.FirstOrDefault(u => string.Equals(u.StreamId, streamId, StringComparison.Ordinal));
        runner?.RequestReset(reason);
        return runner is not null;
    }

    private void OnResetApplied(StreamRunner runner, string reason) =>
        PublishEvent(runner.StreamId, "reset", reason, topic: null, w => w.WriteNumber("state_resets", runner.StateResets));

    private void PublishEvent(string streamId, string eventName, string reason, string? topic, Action<Utf8JsonWriter>? extra) =>
        _events.PublishEvent(streamId, eventName, reason, topic, extra);

    /// <summary>Waits for dynamic streams being created or removed, before the models they use are disposed.</summary>
    public async Task DrainAsync()
    {
        Task[] pending;
        lock (_ingestLock)
        {
            _ingestClosed = true;
            pending = [.. _lifecycleTasks];
        }

        await Task.WhenAll(pending);
    }

    /// <summary>An active MQTT-fed stream: its route, id, topic and queue.</summary>
    private sealed class LiveStream(MqttIngestRoute route, string streamId, string topic)
    {
        public MqttIngestRoute Route => route;

        public string StreamId => streamId;

        public string Topic => topic;

        public MqttSensorSource Source { get; set; } = null!;

        public bool Evicted { get; set; }

        public TaskCompletionSource Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: new stream for topic {Topic} (Sensors:{ConfigId}, {Active} of at most {MaxStreams} active)")]
    private static partial void LogStreamAdded(ILogger logger, string streamId, string topic, string configId, int active, int maxStreams);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor stream for topic {Topic} rejected: Sensors:{ConfigId}:Source:MaxStreams = {MaxStreams} streams are already active ({Rejected} streams rejected so far)")]
    private static partial void LogStreamRejected(ILogger logger, string topic, string configId, int maxStreams, long rejected);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: evicted after {IdleSeconds} s without samples (state checkpointed: {Checkpointed})")]
    private static partial void LogEvicted(ILogger logger, string streamId, double idleSeconds, bool checkpointed);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sensor {StreamId}: cannot create the stream for topic {Topic}: {Reason} ({Count} failed so far, {Suppressed} not logged since the last line)")]
    private static partial void LogDynamicStreamFailed(ILogger logger, string streamId, string topic, string reason, long count, long suppressed);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT message on {Topic} dropped after an unexpected error ({Count} so far, {Suppressed} not logged since the last line); the other messages go on")]
    private static partial void LogDispatchFailed(ILogger logger, string topic, long count, long suppressed, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sensor {StreamId}: ending the stream failed")]
    private static partial void LogDynamicStreamEndFailed(ILogger logger, string streamId, Exception exception);
}
