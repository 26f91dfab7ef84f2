using System.Text;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Diagnostics;
using EdgeRunner.Service.Publishing;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Protocol;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// Delivers results to the broker: the MQTT <see cref="IResultOutput"/>. Split the way MQTTnet's managed client is:
/// <see cref="MqttConnection"/> owns the connection (connect, reconnect with backoff, takeover detection,
/// availability status and last will), <see cref="MqttSubscriptionDispatcher"/> the subscriptions, the outbox
/// (<see cref="IMqttOutbox"/>; <see cref="MemoryOutbox"/> today) holds what waits, and this class runs the one
/// loop between them. Results wait in the outbox, fairly between producers (<see cref="FairOutgoingQueue"/>:
/// bounded in messages and bytes; a producer over its share drops its own oldest, counted per producer), and
/// are published in order per topic, so a broker outage delays messages instead of losing them. A message that
/// was being sent when the connection broke is sent again after reconnecting (at-least-once).
/// Topics and sizes are checked before queueing, so a message MQTT or the broker cannot take is refused
/// for its producer alone. The loop is supervised: a message whose publish throws unexpectedly is logged,
/// counted and dropped, and the loop goes on; a loop that keeps failing ends the process with exit code
/// <see cref="LoopFailedExitCode"/> so systemd restarts it. Messages failing in a row turn the status "degraded".
/// </summary>
public sealed partial class MqttPublisher : IHostedService, IResultOutput, IAsyncDisposable
{
    /// <summary>Exit code (EX_SOFTWARE, sysexits.h) when the publishing loop keeps failing and the daemon stops so that systemd restarts it.</summary>
    public const int LoopFailedExitCode = 70;

    /// <summary>Messages in a row that fail (rejected by the broker, or their publish throws) before the status says degraded.</summary>
    public const int DegradedAfterFailures = 5;

    /// <summary>Failures of the loop itself in a row (no message published or connection made between them) before the process gives up.</summary>
    public const int MaxLoopFailures = 5;

    /// <summary>Loop failures further apart than this do not count as in a row.</summary>
    private static readonly TimeSpan LoopFailureWindow = TimeSpan.FromMinutes(5);

    private readonly MqttOptions _options;
    private readonly MqttConnection _connection;
    private readonly MqttSubscriptionDispatcher _subscriptions;
    private readonly MqttTopics _topics;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<MqttPublisher> _logger;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly IMqttOutbox _outbox;
    private readonly LogRateLimiter _failureLog;
    // The publish stage's histograms (edgerunner.publish.ack.duration, .queue.duration); null in a host without metrics.
    private readonly PublishTiming? _timing;
    private Task? _loop;
    private long _published;
    private long _rejected;
    private long _failed;
    private long _loopFailures;
    private int _consecutiveFailures;
    // Messages taken from the outbox whose delivery is not known (the connection broke, or the loop failed with them
    // in hand): sent again first, in order. Only the loop touches it (one loop at a time).
    private readonly Queue<OutgoingMessage> _resend = new();
    private string? _outboxProblem;
    private int _disposed;

    /// <summary>Creates the publisher (it connects when started).</summary>
    /// <param name="options">The <c>Mqtt</c> section.</param>
    /// <param name="connection">The daemon's MQTT connection.</param>
    /// <param name="subscriptions">The subscriptions, made again on every connect.</param>
    /// <param name="topics">The daemon's topics.</param>
    /// <param name="timeProvider">Clock for backoff and log rate limits.</param>
    /// <param name="lifetime">Stopped (with exit code <see cref="LoopFailedExitCode"/>) when the publishing loop cannot go on.</param>
    /// <param name="logger">Logger.</param>
    public MqttPublisher(
        IOptions<MqttOptions> options,
        MqttConnection connection,
        MqttSubscriptionDispatcher subscriptions,
        MqttTopics topics,
        TimeProvider timeProvider,
        IHostApplicationLifetime lifetime,
        ILogger<MqttPublisher> logger)
        : this(options, connection, subscriptions, topics, timeProvider, lifetime, logger, MemoryOutboxFor(options, timeProvider, logger))
    {
    }

    /// <summary>Creates the publisher over <paramref name="outbox"/> (the in-memory one, or a spool), timing the publish stage on <paramref name="metrics"/>' meter when given.</summary>
    internal MqttPublisher(
        IOptions<MqttOptions> options,
        MqttConnection connection,
        MqttSubscriptionDispatcher subscriptions,
        MqttTopics topics,
        TimeProvider timeProvider,
        IHostApplicationLifetime lifetime,
        ILogger<MqttPublisher> logger,
        IMqttOutbox outbox,
        EdgeRunnerMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _connection = connection;
        _subscriptions = subscriptions;
        _topics = topics;
        _timeProvider = timeProvider;
        _lifetime = lifetime;
        _logger = logger;
        _outbox = outbox;
        _failureLog = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
        _timing = metrics is null ? null : new PublishTiming(metrics, topics, timeProvider);
    }

    /// <summary>Times the broker ended this client's session without an error and without being asked (another client connected with the same client id).</summary>
    public long SessionsTakenOver => _connection.SessionsTakenOver;

    /// <summary>Messages waiting for the broker now (in memory and, with store-and-forward, in the spool).</summary>
    public int Queued => _outbox.Count;

    /// <summary>Messages the broker acknowledged.</summary>
    public long Published => Interlocked.Read(ref _published);

    /// <summary>Messages dropped because the queue was full (all producers; see <see cref="DroppedFor"/>).</summary>
    public long Dropped => _outbox.Dropped;

    /// <summary>Messages refused before publishing: a topic MQTT does not allow, or larger than the broker's Maximum Packet Size or <c>Mqtt:QueueMaxBytes</c>.</summary>
    public long Refused => _outbox.Refused;

    /// <summary>Messages the broker refused (e.g. not authorised for the topic).</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Messages dropped because their publish threw unexpectedly.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Times the publishing loop itself failed and was restarted.</summary>
    public long LoopFailures => Interlocked.Read(ref _loopFailures);

    /// <summary>Why the status says degraded now; null while publishing works.</summary>
    public string? DegradedReason => _connection.DegradedReason;

    /// <summary>Successful connections so far.</summary>
    public long Connects => _connection.Connects;

    /// <summary>Whether the client is connected now.</summary>
    public bool IsConnected => _connection.IsConnected;

    /// <summary>Whether every subscription asked for is granted on the current connection (for readiness checks and tests).</summary>
    public bool AllSubscribed => _subscriptions.AllSubscribed;

    /// <summary>
    /// Messages of producer <paramref name="producer"/> (a topic without its last level, e.g.
    /// <c>{prefix}/{device}/vision/{camera}</c>) dropped because the queue was full and it held the most.
    /// </summary>
    public long DroppedFor(string producer) => _outbox.DroppedFor(producer);

    /// <summary>Messages of producer <paramref name="producer"/> refused (bad topic, too large).</summary>
    public long RefusedFor(string producer) => _outbox.RefusedFor(producer);

    /// <summary>
    /// Queues <paramref name="payload"/> (copied) for <paramref name="topic"/>. Returns false when the
    /// publisher is shutting down, or when the message is refused (a topic MQTT does not allow, or too large
    /// for the broker; counted and logged rate-limited per producer); a full queue drops the oldest message
    /// of the producer holding the most instead (counted per producer).
    /// </summary>
    public bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain = false)
    {
        ArgumentNullException.ThrowIfNull(topic);
        return _outbox.TryAdd(topic, payload, retain);
    }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        LogStarting(_logger, _options.Host is { Length: > 0 } h ? h : _options.EmbeddedBroker.BindAddress, _connection.Port, _connection.ClientId, _topics.Status);
        var stopping = _connection.Stopping;
        _loop = Task.Run(() => SuperviseAsync(stopping), CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Stop accepting, then give the loop a bounded time to deliver what is queued.
        _outbox.Close();
        if (_loop is not null)
        {
            using var drain = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            drain.CancelAfter(TimeSpan.FromSeconds(_options.DrainTimeoutSeconds));
            try
            {
                await _loop.WaitAsync(drain.Token);
            }
            catch (OperationCanceledException)
            {
                // Drain time is up.
            }

            await _connection.BeginStoppingAsync();
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
                // Expected on stop.
            }
        }

        var undelivered = _outbox.DiscardAll();
        if (undelivered > 0)
        {
            LogUndelivered(_logger, undelivered);
        }

        await _connection.SayOfflineAndDisconnectAsync();
        LogStopped(_logger, Published, Dropped);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        // The container may hand this instance out under several service types; dispose once.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // The connection (a singleton of its own) is disposed by the container; stop this loop before it goes.
        await _connection.BeginStoppingAsync();
    }

    private static MemoryOutbox MemoryOutboxFor(IOptions<MqttOptions> options, TimeProvider timeProvider, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new MemoryOutbox(options.Value.QueueCapacity, options.Value.QueueMaxBytes, timeProvider, logger);
    }

    private StatusCounters Counters => new(Failed, Rejected, Refused, Dropped);

    private static bool IsFatal(Exception ex) => MqttConnection.IsFatal(ex);

    /// <summary>
    /// Runs the publishing loop and restarts it when it fails: the failure is logged with its stack and
    /// counted; after <see cref="MaxLoopFailures"/> failures in a row without progress (no message published, each within five
    /// minutes of the last) the daemon stops with exit code <see cref="LoopFailedExitCode"/>, so systemd restarts it
    /// rather than it running on and publishing nothing. Never throws but for cancellation.
    /// </summary>
    private async Task SuperviseAsync(CancellationToken cancellationToken)
    {
        var inRow = 0;
        var published = Published;
        var lastFailure = _timeProvider.GetTimestamp();
        while (true)
        {
            try
            {
                await RunAsync(cancellationToken);
                return;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // Whatever the loop throws must be logged and acted on; an escaping exception silenced all publishing.
            catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
            {
                var total = Interlocked.Increment(ref _loopFailures);
                // In a row: nothing published since the last failure, and not long ago (a rare failure of an idle daemon is no reason to stop it).
                var now = _timeProvider.GetTimestamp();
                inRow = Published == published && (inRow == 0 || _timeProvider.GetElapsedTime(lastFailure, now) < LoopFailureWindow) ? inRow + 1 : 1;
                published = Published;
                lastFailure = now;
                LogLoopFailed(_logger, total, inRow, MaxLoopFailures, ex);
                if (inRow >= MaxLoopFailures)
                {
                    await _connection.EnterDegradedAsync($"the publishing loop failed {inRow} times in a row: {ex.Message}", Counters, cancellationToken);
                    LogLoopGivingUp(_logger, inRow, LoopFailedExitCode);
                    Environment.ExitCode = LoopFailedExitCode;
                    _lifetime.StopApplication();
                    return;
                }

                await _connection.DisconnectQuietlyAsync();
                try
                {
                    await Task.Delay(_connection.ReconnectDelay(inRow), _timeProvider, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var qos = (MqttQualityOfServiceLevel)_options.QualityOfService;
        // Several publishes in flight at once (the broker's PUBACKs come back in order on one connection): one
        // awaited publish at a time caps QoS 1 at one round trip per message.
        var window = qos == MqttQualityOfServiceLevel.AtMostOnce ? 1 : _options.MaxInFlight;
        var inFlight = new Queue<InFlightPublish>(window);
        try
        {
            while (true)
            {
                if (!_connection.IsConnected)
                {
                    await _connection.ConnectWithBackoffAsync(OnConnectedAsync, cancellationToken);
                    LogConnected(_logger, _connection.Host, _connection.Port, _connection.Connects, _outbox.Count);
                    // On every connect, the first included (the broker may have been down since boot and the queue
                    // may have dropped the start-up states): behind whatever is still queued, so the latest state
                    // is the one the broker keeps. Sending a state twice is harmless.
                    _outbox.AddRetainedAgain();
                }

                await ReportOutboxProblemAsync(cancellationToken);

                // Fill the window: first what must be sent again (in its order), then new messages.
                while (inFlight.Count < window)
                {
                    var resent = _resend.TryDequeue(out var next);
                    if (!resent && !_outbox.TryTake(out next))
                    {
                        break;
                    }

                    var packet = MqttTopicRules.PacketSize(Encoding.UTF8.GetByteCount(next.Topic), next.Length);
                    if (packet > _outbox.MaxPacketSize)
                    {
                        // The limit may have shrunk at a reconnect since the message was queued.
                        _outbox.RefuseAtSend(next, $"a message of {packet} bytes is larger than the broker's Maximum Packet Size ({_outbox.MaxPacketSize} bytes)");
                        _outbox.Complete(next);
                        continue;
                    }

                    if (!resent)
                    {
                        // Its wait in the outbox, once: a message sent again is timed by its acknowledgement alone.
                        _timing?.SendStarting(next);
                    }

                    inFlight.Enqueue(StartPublish(next, qos, cancellationToken));
                }

                if (inFlight.Count == 0)
                {
                    var lost = _connection.ConnectionLostToken();
                    using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lost);
                    try
                    {
                        if (!await _outbox.WaitToReadAsync(wait.Token))
                        {
                            return; // Completed and empty: everything delivered.
                        }
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        // The connection dropped while idle: reconnect (and subscribe again) now.
                    }

                    continue;
                }

                var oldest = inFlight.Peek();
                if (await FinishPublishAsync(oldest, cancellationToken))
                {
                    inFlight.Dequeue();
                    oldest.Dispose();
                    _outbox.Complete(oldest.Message);
                    continue;
                }

                // The connection broke: whatever is still in flight is sent again after reconnecting, in order.
                // Wait for every publish to end first (they fail fast once disconnected): their buffers are in use until then.
                await _connection.DisconnectQuietlyAsync();
                while (inFlight.TryDequeue(out var publish))
                {
                    var delivered = await EndedAsync(publish);
                    publish.Dispose();
                    if (delivered)
                    {
                        _timing?.Acknowledged(publish.Message);
                        Interlocked.Increment(ref _published);
                        _outbox.Complete(publish.Message);
                    }
                    else
                    {
                        _resend.Enqueue(publish.Message);
                    }
                }
            }
        }
        catch (Exception) when (inFlight.Count > 0 && !cancellationToken.IsCancellationRequested)
        {
            // The loop failed with messages in hand: the oldest (the one it was finishing) is dropped, counted, so that
            // the restarted loop does not fail on it again; the others are sent again by the restarted loop.
            var culprit = inFlight.Dequeue();
            await EndedAsync(culprit);
            culprit.Dispose();
            Interlocked.Increment(ref _failed);
            LogMessageDroppedByLoopFailure(_logger, MqttTopicRules.Printable(culprit.Message.Topic));
            _outbox.Complete(culprit.Message);
            while (inFlight.TryDequeue(out var publish))
            {
                await EndedAsync(publish);
                publish.Dispose();
                _resend.Enqueue(publish.Message);
            }

            throw;
        }
        finally
        {
            if (cancellationToken.IsCancellationRequested)
            {
                // Stopping: what was not delivered is given back (a spool keeps it for the next start).
                var undelivered = 0;
                while (inFlight.TryDequeue(out var publish))
                {
                    await EndedAsync(publish);
                    publish.Dispose();
                    _resend.Enqueue(publish.Message);
                }

                while (_resend.TryDequeue(out var message))
                {
                    _outbox.Abandon(message);
                    undelivered += message.SpoolId < 0 ? 1 : 0;
                }

                if (undelivered > 0)
                {
                    LogUndelivered(_logger, undelivered);
                }
            }
        }
    }

    /// <summary>On every new connection: the broker's packet limit, the status detail, the subscriptions, then the retained states again.</summary>
    private async Task OnConnectedAsync(CancellationToken cancellationToken)
    {
        _outbox.MaxPacketSize = _connection.MaxPacketSize;
        await _connection.PublishDetailAtConnectAsync(Counters, cancellationToken);
        await _subscriptions.SubscribeAllAsync(cancellationToken);
    }

    private InFlightPublish StartPublish(OutgoingMessage message, MqttQualityOfServiceLevel qos, CancellationToken cancellationToken)
    {
        var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(_options.PublishTimeoutSeconds));
        Task<MqttClientPublishResult> task;
        try
        {
            task = _connection.PublishAsync(message.Topic, message.Buffer, message.Length, message.Retain, qos, timeout.Token);
        }
#pragma warning disable CA1031 // A publish that throws before it starts is finished like one that fails: see FinishPublishAsync.
        catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
        {
            task = Task.FromException<MqttClientPublishResult>(ex);
        }

        return new InFlightPublish(message, task, timeout);
    }

    /// <summary>Waits for a publish to end, whatever its outcome; true when the broker acknowledged it.</summary>
    private static async Task<bool> EndedAsync(InFlightPublish publish)
    {
        try
        {
            return (await publish.Task).IsSuccess;
        }
#pragma warning disable CA1031 // Only whether it was delivered matters here; the failure was or will be handled for the oldest.
        catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
        {
            return false;
        }
    }

    /// <summary>
    /// Waits for the oldest publish in flight. True when it is done with (published, or dropped for good: refused by
    /// the broker, or its publish threw unexpectedly); false when the connection broke and it is to be resent.
    /// </summary>
    private async Task<bool> FinishPublishAsync(InFlightPublish publish, CancellationToken cancellationToken)
    {
        var message = publish.Message;
        try
        {
            var result = await publish.Task;
            if (!result.IsSuccess)
            {
                // The broker refused this message (e.g. not authorised for the topic): retrying would block the queue forever.
                Interlocked.Increment(ref _rejected);
                LogRejected(_logger, MqttTopicRules.Printable(message.Topic), result.ReasonCode.ToString());
                await CountFailureAsync($"the broker rejects messages ({result.ReasonCode} on {MqttTopicRules.Printable(message.Topic)})", cancellationToken);
                return true;
            }

            _timing?.Acknowledged(message);
            Interlocked.Increment(ref _published);
            _consecutiveFailures = 0;
            if (_connection.DegradedReason is not null && _outboxProblem is null)
            {
                await _connection.LeaveDegradedAsync(Counters, cancellationToken);
            }

            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogPublishFailed(_logger, MqttTopicRules.Printable(message.Topic), "timed out");
        }
        catch (Exception ex) when (ex is MqttCommunicationException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            LogPublishFailed(_logger, MqttTopicRules.Printable(message.Topic), ex.Message);
        }
        catch (OperationCanceledException)
        {
            throw;
        }
#pragma warning disable CA1031 // One message must never silence the daemon: whatever its publish throws drops that message alone.
        catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
        {
            var failed = Interlocked.Increment(ref _failed);
            if (_failureLog.TryAcquire(out var suppressed))
            {
                LogPublishThrew(_logger, MqttTopicRules.Printable(message.Topic), failed, suppressed, ex);
            }

            await CountFailureAsync($"publishing throws {ex.GetType().Name}: {ex.Message}", cancellationToken);
            return true;
        }

        return false;
    }

    /// <summary>Says degraded while the outbox cannot do all it should (a spool the disk refuses), and online again when it can.</summary>
    private async Task ReportOutboxProblemAsync(CancellationToken cancellationToken)
    {
        var problem = _outbox.Problem;
        if (ReferenceEquals(problem, _outboxProblem))
        {
            return;
        }

        _outboxProblem = problem;
        if (problem is not null)
        {
            await _connection.EnterDegradedAsync(problem, Counters, cancellationToken);
        }
        else if (_connection.DegradedReason is not null)
        {
            await _connection.LeaveDegradedAsync(Counters, cancellationToken);
        }
    }

    /// <summary>A publish in flight: the message (its buffer in use until the publish ends), the publish, and its timeout.</summary>
    private readonly record struct InFlightPublish(OutgoingMessage Message, Task<MqttClientPublishResult> Task, CancellationTokenSource Timeout) : IDisposable
    {
        public void Dispose() => Timeout.Dispose();
    }

    /// <summary>One more message in a row that could not be published; enough of them and the status says degraded.</summary>
    private async Task CountFailureAsync(string reason, CancellationToken cancellationToken)
    {
        if (++_consecutiveFailures >= DegradedAfterFailures && _connection.DegradedReason is null)
        {
            await _connection.EnterDegradedAsync($"{_consecutiveFailures} messages in a row could not be published; last: {reason}", Counters, cancellationToken);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT publisher for {Host}:{Port} as {ClientId}, availability on {StatusTopic}")]
    private static partial void LogStarting(ILogger logger, string host, int port, string clientId, string statusTopic);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT connected to {Host}:{Port} (connection #{ConnectCount}, {Queued} messages queued)")]
    private static partial void LogConnected(ILogger logger, string host, int port, long connectCount, int queued);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT publish to {Topic} failed: {Reason}; will reconnect and resend")]
    private static partial void LogPublishFailed(ILogger logger, string topic, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT broker rejected a message on {Topic}: {ReasonCode}; message discarded")]
    private static partial void LogRejected(ILogger logger, string topic, string reasonCode);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT publish to {Topic} threw; the message is dropped and publishing goes on ({Failed} dropped so far, {Suppressed} such lines not logged since the last one)")]
    private static partial void LogPublishThrew(ILogger logger, string topic, long failed, long suppressed, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT publishing loop failed ({Total} failures in all, {InRow} in a row of at most {Max}); restarting it")]
    private static partial void LogLoopFailed(ILogger logger, long total, int inRow, int max, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT publishing loop failed with a message to {Topic} in hand: that message is dropped")]
    private static partial void LogMessageDroppedByLoopFailure(ILogger logger, string topic);

    [LoggerMessage(Level = LogLevel.Critical, Message = "MQTT publishing loop failed {InRow} times in a row without publishing anything: stopping the daemon (exit code {ExitCode}) so that it is restarted")]
    private static partial void LogLoopGivingUp(ILogger logger, int inRow, int exitCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT shutdown: {Count} queued messages were not delivered")]
    private static partial void LogUndelivered(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT publisher stopped: {Published} published, {Dropped} dropped")]
    private static partial void LogStopped(ILogger logger, long published, long dropped);
}
