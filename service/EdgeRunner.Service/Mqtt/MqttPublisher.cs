using System.Buffers;
using System.Text;
using System.Text.Json;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// The one owner of the MQTT connection. Results are queued in memory, fairly between producers
/// (<see cref="FairOutgoingQueue"/>: bounded in messages and bytes; a producer over its share drops its own
/// oldest, counted per producer), and published in order per topic by a single loop that reconnects with
/// jittered exponential backoff, so a broker outage delays messages instead of losing them. A message that
/// was being sent when the connection broke is sent again after reconnecting (at-least-once).
/// Topics and sizes are checked before queueing, so a message MQTT or the broker cannot take is refused
/// for its producer alone. The loop is supervised: a message whose publish throws unexpectedly is logged,
/// counted and dropped, and the loop goes on; a loop that keeps failing ends the process with exit code
/// <see cref="LoopFailedExitCode"/> so systemd restarts it.
/// The availability topic is retained "online" after every connect, "degraded" (with a retained JSON
/// reason on <see cref="MqttTopics.StatusDetail"/>) while results cannot be published, "offline" on clean
/// stop, and "offline" as the last will when the process dies.
/// It also carries the daemon's subscriptions (sensor ingest, stream commands): they are made again
/// after every connect, since the session is clean-start and a reconnect forgets them.
/// </summary>
public sealed partial class MqttPublisher : IHostedService, IResultPublisher, IMqttSubscriptions, IAsyncDisposable
{
    /// <summary>Exit code (EX_SOFTWARE, sysexits.h) when the publishing loop keeps failing and the daemon stops so that systemd restarts it.</summary>
    public const int LoopFailedExitCode = 70;

    /// <summary>Messages in a row that fail (rejected by the broker, or their publish throws) before the status says degraded.</summary>
    public const int DegradedAfterFailures = 5;

    /// <summary>Failures of the loop itself in a row (no message published or connection made between them) before the process gives up.</summary>
    public const int MaxLoopFailures = 5;

    /// <summary>Loop failures further apart than this do not count as in a row.</summary>
    private static readonly TimeSpan LoopFailureWindow = TimeSpan.FromMinutes(5);

    private static readonly byte[] Online = "online"u8.ToArray();
    private static readonly byte[] Offline = "offline"u8.ToArray();
    private static readonly byte[] Degraded = "degraded"u8.ToArray();

    private readonly MqttOptions _options;
    private readonly EmbeddedBrokerEndpoint _embeddedBroker;
    private readonly MqttTopics _topics;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<MqttPublisher> _logger;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly FairOutgoingQueue _queue;
    private readonly LogRateLimiter _failureLog;

    /// <summary>Most retained topics remembered for re-sending after a reconnect (states, snapshots: a few per camera and stream).</summary>
    private const int MaxRetainedTopics = 4096;

    private readonly Dictionary<string, byte[]> _retainedLatest = new(StringComparer.Ordinal);
    private readonly Lock _retainedLock = new();
    private readonly IMqttClient _client;
    private readonly string _clientId;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _subscriptionsLock = new();
    // Copy-on-write: the receive loop reads it without a lock on every message.
    private Subscription[] _subscriptions = [];
    // Filters the broker granted on the current connection.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _granted = new(StringComparer.Ordinal);
    private readonly Lock _connectionLock = new();
    // Cancelled when the current connection drops: an idle loop (nothing to publish) must still notice,
    // reconnect and subscribe again, or an ingest-only daemon would stop receiving for good.
    private CancellationTokenSource _connectionLost = new();
    private Task? _loop;
    private long _published;
    private long _rejected;
    private long _failed;
    private long _loopFailures;
    private long _connects;
    private long _sessionsTakenOver;
    // Set while this side closes the connection (shutdown, or after a failed publish), so that close is not taken for a takeover.
    private bool _disconnectRequested;
    private int _consecutiveFailures;
    // Null while publishing works; the reason while the status says degraded. Only the loop writes it.
    private volatile string? _degradedReason;
    private int _disposed;

    /// <summary>Creates the publisher (it connects when started).</summary>
    /// <param name="options">The <c>Mqtt</c> section.</param>
    /// <param name="device">The device section (for the default client id).</param>
    /// <param name="embeddedBroker">Where and as whom to connect when the daemon runs its own broker.</param>
    /// <param name="topics">The daemon's topics.</param>
    /// <param name="timeProvider">Clock for backoff and log rate limits.</param>
    /// <param name="lifetime">Stopped (with exit code <see cref="LoopFailedExitCode"/>) when the publishing loop cannot go on.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="createClient">Creates the MQTT client; null for MQTTnet's. A seam to wrap the client (fault injection in tests).</param>
    public MqttPublisher(
        IOptions<MqttOptions> options,
        IOptions<DeviceOptions> device,
        EmbeddedBrokerEndpoint embeddedBroker,
        MqttTopics topics,
        TimeProvider timeProvider,
        IHostApplicationLifetime lifetime,
        ILogger<MqttPublisher> logger,
        Func<IMqttClient>? createClient = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(device);
        _options = options.Value;
        _embeddedBroker = embeddedBroker;
        _topics = topics;
        _timeProvider = timeProvider;
        _lifetime = lifetime;
        _logger = logger;
        _clientId = string.IsNullOrWhiteSpace(_options.ClientId) ? $"edgerunner-{DeviceIdentity.Resolve(device.Value)}" : _options.ClientId;
        _queue = new FairOutgoingQueue(_options.QueueCapacity, _options.QueueMaxBytes, timeProvider);
        _failureLog = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
        _client = createClient?.Invoke() ?? new MqttClientFactory().CreateMqttClient();
        _client.ApplicationMessageReceivedAsync += OnMessageReceivedAsync;
        _client.DisconnectedAsync += e =>
        {
            lock (_connectionLock)
            {
                _connectionLost.Cancel();
            }

            if (e.ClientWasConnected && !_stopping.IsCancellationRequested)
            {
                var reason = e.Reason.ToString();
                var detail = e.ReasonString ?? e.Exception?.Message ?? string.Empty;
                LogConnectionLost(_logger, reason, detail);
            }

            // Another client connecting with our client id takes the session over: MQTT 5 brokers may say so
            // (reason 0x8E), while mosquitto simply closes the old connection, which reaches us as a normal
            // disconnect we did not ask for. On a shared broker two daemons (or a daemon and a tool) with one id
            // cut each other off in turn: say so plainly, with the fix.
            if (e.ClientWasConnected && !_stopping.IsCancellationRequested && !Volatile.Read(ref _disconnectRequested)
                && e.Reason is MqttClientDisconnectReason.SessionTakenOver or MqttClientDisconnectReason.NormalDisconnection && e.Exception is null)
            {
                Interlocked.Increment(ref _sessionsTakenOver);
                LogSessionTakenOver(_logger, _clientId, e.Reason.ToString());
            }

            return Task.CompletedTask;
        };
    }

    /// <summary>Times the broker ended this client's session without an error and without being asked (another client connected with the same client id).</summary>
    public long SessionsTakenOver => Interlocked.Read(ref _sessionsTakenOver);

    /// <summary>Messages the broker acknowledged.</summary>
    public long Published => Interlocked.Read(ref _published);

    /// <summary>Messages dropped because the queue was full (all producers; see <see cref="DroppedFor"/>).</summary>
    public long Dropped => _queue.Dropped;

    /// <summary>Messages refused before publishing: a topic MQTT does not allow, or larger than the broker's Maximum Packet Size or <c>Mqtt:QueueMaxBytes</c>.</summary>
    public long Refused => _queue.Refused;

    /// <summary>Messages the broker refused (e.g. not authorised for the topic).</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Messages dropped because their publish threw unexpectedly.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Times the publishing loop itself failed and was restarted.</summary>
    public long LoopFailures => Interlocked.Read(ref _loopFailures);

    /// <summary>Why the status says degraded now; null while publishing works.</summary>
    public string? DegradedReason => _degradedReason;

    /// <summary>Successful connections so far.</summary>
    public long Connects => Interlocked.Read(ref _connects);

    /// <summary>Whether the client is connected now.</summary>
    public bool IsConnected => _client.IsConnected;

    /// <summary>Whether every subscription asked for is granted on the current connection (for readiness checks and tests).</summary>
    public bool AllSubscribed => _client.IsConnected && Volatile.Read(ref _subscriptions).All(s => _granted.ContainsKey(s.Filter));

    /// <summary>
    /// Messages of producer <paramref name="producer"/> (a topic without its last level, e.g.
    /// <c>{prefix}/{device}/vision/{camera}</c>) dropped because the queue was full and it held the most.
    /// </summary>
    public long DroppedFor(string producer) => _queue.DroppedFor(producer);

    /// <summary>Messages of producer <paramref name="producer"/> refused (bad topic, too large).</summary>
    public long RefusedFor(string producer) => _queue.RefusedFor(producer);

    /// <inheritdoc />
    public bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain = false)
    {
        ArgumentNullException.ThrowIfNull(topic);
        if (retain && !_stopping.IsCancellationRequested)
        {
            // States are retained and published only when they change: keep the latest per topic so a
            // (re)connect can send it again, even if the bounded queue dropped it during an outage. Under
            // one lock with the re-send, so a state changing meanwhile is always queued after the old one.
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

    private bool Enqueue(string topic, ReadOnlySpan<byte> payload, bool retain)
    {
        var outcome = _queue.TryEnqueue(topic, payload, retain, out var report);
        if (report.Log)
        {
            if (outcome == EnqueueOutcome.Queued)
            {
                LogProducerDropped(_logger, Printable(report.Producer), report.Count, _queue.Dropped, _options.QueueCapacity, report.Suppressed);
            }
            else if (report.Reason is { } reason)
            {
                LogRefused(_logger, Printable(report.Producer), reason, report.Count, report.Suppressed);
            }
        }

        return outcome == EnqueueOutcome.Queued;
    }

    /// <inheritdoc />
    public void Subscribe(string topicFilter, MqttMessageHandler handler)
    {
        ArgumentException.ThrowIfNullOrEmpty(topicFilter);
        ArgumentNullException.ThrowIfNull(handler);
        var subscription = new Subscription(topicFilter, handler);
        lock (_subscriptionsLock)
        {
            _subscriptions = [.. _subscriptions, subscription];
        }

        // Already connected: subscribe now. Otherwise (or if the connection drops meanwhile) the
        // connect path subscribes everything; subscribing twice to one filter is harmless in MQTT.
        if (_client.IsConnected && !_stopping.IsCancellationRequested)
        {
            _ = SubscribeNowAsync([subscription], _stopping.Token);
        }
    }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        LogStarting(_logger, _options.Host is { Length: > 0 } h ? h : _options.EmbeddedBroker.BindAddress, EffectivePort, _clientId, _topics.Status);
        _loop = Task.Run(() => SuperviseAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Stop accepting, then give the loop a bounded time to deliver what is queued.
        _queue.Close();
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

            await _stopping.CancelAsync();
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
                // Expected on stop.
            }
        }

        var undelivered = _queue.Count;
        while (_queue.TryDequeue(out var leftover))
        {
            FairOutgoingQueue.Release(leftover);
        }

        if (undelivered > 0)
        {
            LogUndelivered(_logger, undelivered);
        }

        try
        {
            if (_client.IsConnected)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(_options.PublishTimeoutSeconds));
                await _client.PublishAsync(BuildMessage(_topics.Status, Offline, Offline.Length, retain: true, MqttQualityOfServiceLevel.AtLeastOnce), timeout.Token);
                Volatile.Write(ref _disconnectRequested, true);
                await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.NormalDisconnection).Build(), timeout.Token);
            }
        }
#pragma warning disable CA1031 // Stopping must never fail over the goodbye: SIGTERM exits 0; the last will says offline anyway.
        catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
        {
            LogOfflineFailed(_logger, ex.Message);
        }

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

        await _stopping.CancelAsync();
        _client.Dispose();
        _stopping.Dispose();
        lock (_connectionLock)
        {
            _connectionLost.Dispose();
        }
    }

    private int EffectivePort => string.IsNullOrWhiteSpace(_options.Host) ? _options.EmbeddedBroker.Port : _options.Port;

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
                    await EnterDegradedAsync($"the publishing loop failed {inRow} times in a row: {ex.Message}", cancellationToken);
                    LogLoopGivingUp(_logger, inRow, LoopFailedExitCode);
                    Environment.ExitCode = LoopFailedExitCode;
                    _lifetime.StopApplication();
                    return;
                }

                await DisconnectQuietlyAsync();
                try
                {
                    await Task.Delay(NextBackoff(inRow - 1), _timeProvider, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private static bool IsFatal(Exception ex) => ex is OutOfMemoryException or StackOverflowException or AccessViolationException;

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        OutgoingMessage? pending = null;
        var failures = 0;
        var qos = (MqttQualityOfServiceLevel)_options.QualityOfService;
        try
        {
            while (true)
            {
                if (!_client.IsConnected)
                {
                    if (!await TryConnectAsync(cancellationToken))
                    {
                        await Task.Delay(NextBackoff(failures++), _timeProvider, cancellationToken);
                        continue;
                    }

                    failures = 0;
                }

                if (pending is null)
                {
                    if (!_queue.TryDequeue(out var next))
                    {
                        CancellationToken lost;
                        lock (_connectionLock)
                        {
                            if (_connectionLost.IsCancellationRequested && _client.IsConnected)
                            {
                                // A late signal of an earlier connection: this one is up, so wait on a fresh token (never spin).
                                _connectionLost.Dispose();
                                _connectionLost = new CancellationTokenSource();
                            }

                            lost = _connectionLost.Token;
                        }

                        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lost);
                        try
                        {
                            if (!await _queue.WaitToReadAsync(wait.Token))
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

                    pending = next;
                }

                if (await TrySendAsync(pending.Value, qos, cancellationToken))
                {
                    FairOutgoingQueue.Release(pending.Value);
                    pending = null;
                }
            }
        }
        catch (Exception) when (pending is { } unsent && !cancellationToken.IsCancellationRequested)
        {
            // The loop failed with this message in hand: it is dropped (counted) so that the restarted loop does not fail on it again.
            Interlocked.Increment(ref _failed);
            LogMessageDroppedByLoopFailure(_logger, Printable(unsent.Topic));
            throw;
        }
        finally
        {
            if (pending is { } unsent)
            {
                FairOutgoingQueue.Release(unsent);
                if (cancellationToken.IsCancellationRequested)
                {
                    LogUndelivered(_logger, 1);
                }
            }
        }
    }

    private async Task<bool> TryConnectAsync(CancellationToken cancellationToken)
    {
        var host = string.IsNullOrWhiteSpace(_options.Host) ? _embeddedBroker.Host : _options.Host;
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(host, EffectivePort)
            .WithClientId(_clientId)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithCleanStart(true)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(_options.KeepAliveSeconds))
            .WithTimeout(TimeSpan.FromSeconds(_options.ConnectTimeoutSeconds))
            .WithWillTopic(_topics.Status)
            .WithWillPayload(Offline)
            .WithWillRetain(true)
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce);
        if (string.IsNullOrWhiteSpace(_options.Host) && _embeddedBroker.DaemonCredentials is { } daemon)
        {
            // The embedded broker knows the daemon by this per-process secret.
            builder.WithCredentials(daemon.Username, daemon.Password);
        }
        else if (!string.IsNullOrEmpty(_options.Username))
        {
            builder.WithCredentials(_options.Username, ReadPassword());
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(_options.ConnectTimeoutSeconds));
            _granted.Clear();
            lock (_connectionLock)
            {
                if (_connectionLost.IsCancellationRequested)
                {
                    _connectionLost.Dispose();
                    _connectionLost = new CancellationTokenSource();
                }
            }

            // MQTT 5: the broker must not send this client larger packets (it discards them): a flood of huge
            // ingest messages is never read into memory here, the receive loop stays free for acknowledgements.
            builder.WithMaximumPacketSize((uint)_options.MaxIncomingPacketBytes);
            Volatile.Write(ref _disconnectRequested, false);
            var result = await _client.ConnectAsync(builder.Build(), timeout.Token);
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                LogConnectFailed(_logger, host, EffectivePort, result.ResultCode.ToString());
                return false;
            }

            // MQTT 5: the broker may cap the packets it takes; a message over it is refused for its producer, never sent.
            _queue.MaxPacketSize = result.MaximumPacketSize is > 0 and var max ? max : long.MaxValue;
            var status = _degradedReason is null ? Online : Degraded;
            await _client.PublishAsync(BuildMessage(_topics.Status, status, status.Length, retain: true, MqttQualityOfServiceLevel.AtLeastOnce), timeout.Token);
            await SubscribeAsync(Volatile.Read(ref _subscriptions), timeout.Token);
            var count = Interlocked.Increment(ref _connects);
            LogConnected(_logger, host, EffectivePort, count, _queue.Count);
            // On every connect, the first included (the broker may have been down since boot and the queue
            // may have dropped the start-up states): behind whatever is still queued, so the latest state
            // is the one the broker keeps. Sending a state twice is harmless.
            lock (_retainedLock)
            {
                foreach (var (topic, payload) in _retainedLatest)
                {
                    Enqueue(topic, payload, retain: true);
                }
            }

            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogConnectFailed(_logger, host, EffectivePort, "timed out");
        }
        catch (Exception ex) when (ex is MqttCommunicationException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            LogConnectFailed(_logger, host, EffectivePort, ex.Message);
        }

        await DisconnectQuietlyAsync();
        return false;
    }

    /// <summary>Subscribes (QoS 1, no-local); throws when the connection fails, logs filters the broker refuses.</summary>
    private async Task SubscribeAsync(Subscription[] subscriptions, CancellationToken cancellationToken)
    {
        if (subscriptions.Length == 0)
        {
            return;
        }

        var builder = new MqttClientSubscribeOptionsBuilder();
        foreach (var subscription in subscriptions)
        {
            // No-local: a filter that overlaps the daemon's own topics (commands under sensors/#) must not echo its results back.
            builder.WithTopicFilter(f => f.WithTopic(subscription.Filter).WithAtLeastOnceQoS().WithNoLocal(true));
        }

        var result = await _client.SubscribeAsync(builder.Build(), cancellationToken);
        foreach (var item in result.Items)
        {
            if (item.ResultCode is MqttClientSubscribeResultCode.GrantedQoS0 or MqttClientSubscribeResultCode.GrantedQoS1 or MqttClientSubscribeResultCode.GrantedQoS2)
            {
                _granted[item.TopicFilter.Topic] = true;
                LogSubscribed(_logger, item.TopicFilter.Topic);
            }
            else
            {
                LogSubscribeRefused(_logger, item.TopicFilter.Topic, item.ResultCode.ToString());
            }
        }
    }

    /// <summary>A subscription added while connected; a failure here is repaired by the next reconnect.</summary>
    private async Task SubscribeNowAsync(Subscription[] subscriptions, CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(_options.PublishTimeoutSeconds));
            await SubscribeAsync(subscriptions, timeout.Token);
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            LogSubscribeFailed(_logger, subscriptions[0].Filter, ex.Message);
        }
    }

    private Task OnMessageReceivedAsync(MqttApplicationMessageReceivedEventArgs e)
    {
        var message = e.ApplicationMessage;
        foreach (var subscription in Volatile.Read(ref _subscriptions))
        {
            if (MqttTopicFilterComparer.Compare(message.Topic, subscription.Filter) != MqttTopicFilterCompareResult.IsMatch)
            {
                continue;
            }

            try
            {
                subscription.Handler(message.Topic, message.Payload);
            }
#pragma warning disable CA1031 // A handler's bug must not take down the connection that every result goes through.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                LogHandlerFailed(_logger, message.Topic, ex);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Publishes one message. True when it is done with (published, or dropped for good: refused by the broker,
    /// too large for it, or its publish threw unexpectedly); false when the connection broke and it is to be resent.
    /// </summary>
    private async Task<bool> TrySendAsync(OutgoingMessage message, MqttQualityOfServiceLevel qos, CancellationToken cancellationToken)
    {
        // The limit may have shrunk at a reconnect since the message was queued.
        var packet = MqttTopicRules.PacketSize(Encoding.UTF8.GetByteCount(message.Topic), message.Length);
        if (packet > _queue.MaxPacketSize)
        {
            var report = _queue.RefuseAtSend(message.Topic, $"a message of {packet} bytes is larger than the broker's Maximum Packet Size ({_queue.MaxPacketSize} bytes)");
            if (report.Log)
            {
                LogRefused(_logger, Printable(report.Producer), report.Reason!, report.Count, report.Suppressed);
            }

            return true;
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(_options.PublishTimeoutSeconds));
            var result = await _client.PublishAsync(BuildMessage(message.Topic, message.Buffer, message.Length, message.Retain, qos), timeout.Token);
            if (!result.IsSuccess)
            {
                // The broker refused this message (e.g. not authorised for the topic): retrying would block the queue forever.
                Interlocked.Increment(ref _rejected);
                LogRejected(_logger, Printable(message.Topic), result.ReasonCode.ToString());
                await CountFailureAsync($"the broker rejects messages ({result.ReasonCode} on {Printable(message.Topic)})", cancellationToken);
                return true;
            }

            Interlocked.Increment(ref _published);
            _consecutiveFailures = 0;
            if (_degradedReason is not null)
            {
                await LeaveDegradedAsync(cancellationToken);
            }

            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogPublishFailed(_logger, Printable(message.Topic), "timed out");
        }
        catch (Exception ex) when (ex is MqttCommunicationException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            LogPublishFailed(_logger, Printable(message.Topic), ex.Message);
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
                LogPublishThrew(_logger, Printable(message.Topic), failed, suppressed, ex);
            }

            await CountFailureAsync($"publishing throws {ex.GetType().Name}: {ex.Message}", cancellationToken);
            return true;
        }

        // Treat the connection as broken: reconnect, then resend this message.
        await DisconnectQuietlyAsync();
        return false;
    }

    /// <summary>One more message in a row that could not be published; enough of them and the status says degraded.</summary>
    private async Task CountFailureAsync(string reason, CancellationToken cancellationToken)
    {
        if (++_consecutiveFailures >= DegradedAfterFailures && _degradedReason is null)
        {
            await EnterDegradedAsync($"{_consecutiveFailures} messages in a row could not be published; last: {reason}", cancellationToken);
        }
    }

    /// <summary>Says "degraded" on the status topic, with the reason on its detail topic (both retained; best effort).</summary>
    private async Task EnterDegradedAsync(string reason, CancellationToken cancellationToken)
    {
        _degradedReason = reason;
        LogDegraded(_logger, reason);
        await PublishStatusAsync(Degraded, reason, cancellationToken);
    }

    /// <summary>Messages go out again: "online" on the status topic and its detail.</summary>
    private async Task LeaveDegradedAsync(CancellationToken cancellationToken)
    {
        _degradedReason = null;
        LogRecovered(_logger);
        await PublishStatusAsync(Online, null, cancellationToken);
    }

    private async Task PublishStatusAsync(byte[] status, string? reason, CancellationToken cancellationToken)
    {
        var detail = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(detail))
        {
            writer.WriteStartObject();
            writer.WriteString("status", Encoding.UTF8.GetString(status));
            if (reason is not null)
            {
                writer.WriteString("reason", reason);
            }

            writer.WriteString("time", _timeProvider.GetUtcNow());
            writer.WriteNumber("failed", Failed);
            writer.WriteNumber("rejected", Rejected);
            writer.WriteNumber("refused", Refused);
            writer.WriteNumber("dropped", Dropped);
            writer.WriteEndObject();
        }

        try
        {
            if (!_client.IsConnected)
            {
                return; // The next connect publishes the status as it is then.
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(_options.PublishTimeoutSeconds));
            await _client.PublishAsync(BuildMessage(_topics.StatusDetail, detail.WrittenMemory.ToArray(), detail.WrittenCount, retain: true, MqttQualityOfServiceLevel.AtLeastOnce), timeout.Token);
            await _client.PublishAsync(BuildMessage(_topics.Status, status, status.Length, retain: true, MqttQualityOfServiceLevel.AtLeastOnce), timeout.Token);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // Best effort: the status may be unpublishable for the very reason it changes; the next connect publishes it again.
        catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
        {
            LogStatusFailed(_logger, Encoding.UTF8.GetString(status), ex.Message);
        }
    }

    /// <summary>A topic or producer for a log line: long ones (up to 64k characters) shortened.</summary>
    private static string Printable(string? topic) =>
        topic is null ? string.Empty : topic.Length <= 200 ? topic : $"{topic[..160]}...({topic.Length} characters)";

    private async Task DisconnectQuietlyAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            Volatile.Write(ref _disconnectRequested, true);
            await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), timeout.Token);
        }
#pragma warning disable CA1031 // Called while handling failures: it must not add one of its own.
        catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
        {
            // Already gone (or the client is broken); nothing to clean up.
        }
    }

    private TimeSpan NextBackoff(int failures)
    {
        var min = _options.ReconnectMinDelaySeconds;
        var capped = Math.Min(_options.ReconnectMaxDelaySeconds, min * Math.Pow(2, Math.Min(failures, 30)));
        // Full jitter on the upper half, so a fleet does not reconnect in lockstep after a broker restart.
        var jittered = (capped / 2) + (Random.Shared.NextDouble() * capped / 2);
        return TimeSpan.FromSeconds(Math.Max(min, jittered));
    }

    private string ReadPassword()
    {
        if (string.IsNullOrEmpty(_options.PasswordFile))
        {
            return _options.Password;
        }

        using var reader = new StreamReader(_options.PasswordFile, Encoding.UTF8);
        return reader.ReadLine() ?? string.Empty;
    }

    private static MqttApplicationMessage BuildMessage(string topic, byte[] buffer, int length, bool retain, MqttQualityOfServiceLevel qos) =>
        new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(new ReadOnlySequence<byte>(buffer, 0, length))
            .WithQualityOfServiceLevel(qos)
            .WithRetainFlag(retain)
            .Build();

    private sealed record Subscription(string Filter, MqttMessageHandler Handler);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT session taken over ({Reason}): the broker closed this daemon's connection unasked, which is what it does when another client connects with the same client id {ClientId}. If this repeats, two daemons (or a daemon and another tool) share the id: give each a unique Mqtt:ClientId (or Device:Id). Reconnecting")]
    private static partial void LogSessionTakenOver(ILogger logger, string clientId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT connection lost: {Reason} {Detail}")]
    private static partial void LogConnectionLost(ILogger logger, string reason, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT subscribed to {TopicFilter}")]
    private static partial void LogSubscribed(ILogger logger, string topicFilter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT broker refused the subscription to {TopicFilter}: {ResultCode}")]
    private static partial void LogSubscribeRefused(ILogger logger, string topicFilter, string resultCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT subscribe to {TopicFilter} failed: {Reason}; it is made again after the next reconnect")]
    private static partial void LogSubscribeFailed(ILogger logger, string topicFilter, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT handler for a message on {Topic} failed; the connection goes on")]
    private static partial void LogHandlerFailed(ILogger logger, string topic, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT publisher for {Host}:{Port} as {ClientId}, availability on {StatusTopic}")]
    private static partial void LogStarting(ILogger logger, string host, int port, string clientId, string statusTopic);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT connected to {Host}:{Port} (connection #{ConnectCount}, {Queued} messages queued)")]
    private static partial void LogConnected(ILogger logger, string host, int port, long connectCount, int queued);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT connect to {Host}:{Port} failed: {Reason}; retrying with backoff")]
    private static partial void LogConnectFailed(ILogger logger, string host, int port, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT publish to {Topic} failed: {Reason}; will reconnect and resend")]
    private static partial void LogPublishFailed(ILogger logger, string topic, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT broker rejected a message on {Topic}: {ReasonCode}; message discarded")]
    private static partial void LogRejected(ILogger logger, string topic, string reasonCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT queue full: {Producer} holds the most, so its oldest messages are dropped ({ProducerDropped} of its messages dropped so far, {Dropped} of all producers; capacity {Capacity} messages; {Suppressed} such lines not logged since the last one)")]
    private static partial void LogProducerDropped(ILogger logger, string producer, long producerDropped, long dropped, int capacity, long suppressed);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT message of {Producer} refused, never sent: {Reason} ({Refused} of its messages refused so far, {Suppressed} such lines not logged since the last one)")]
    private static partial void LogRefused(ILogger logger, string producer, string reason, long refused, long suppressed);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT publish to {Topic} threw; the message is dropped and publishing goes on ({Failed} dropped so far, {Suppressed} such lines not logged since the last one)")]
    private static partial void LogPublishThrew(ILogger logger, string topic, long failed, long suppressed, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT publishing loop failed ({Total} failures in all, {InRow} in a row of at most {Max}); restarting it")]
    private static partial void LogLoopFailed(ILogger logger, long total, int inRow, int max, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT publishing loop failed with a message to {Topic} in hand: that message is dropped")]
    private static partial void LogMessageDroppedByLoopFailure(ILogger logger, string topic);

    [LoggerMessage(Level = LogLevel.Critical, Message = "MQTT publishing loop failed {InRow} times in a row without publishing anything: stopping the daemon (exit code {ExitCode}) so that it is restarted")]
    private static partial void LogLoopGivingUp(ILogger logger, int inRow, int exitCode);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT status degraded: {Reason}")]
    private static partial void LogDegraded(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT messages are published again: status online")]
    private static partial void LogRecovered(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT could not publish status {Status}: {Reason}; the next connect publishes it")]
    private static partial void LogStatusFailed(ILogger logger, string status, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT shutdown: {Count} queued messages were not delivered")]
    private static partial void LogUndelivered(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT could not publish offline status on shutdown: {Reason}")]
    private static partial void LogOfflineFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT publisher stopped: {Published} published, {Dropped} dropped")]
    private static partial void LogStopped(ILogger logger, long published, long dropped);
}
