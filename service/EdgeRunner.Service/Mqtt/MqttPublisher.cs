using System.Buffers;
using System.Text;
using System.Threading.Channels;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// The one owner of the MQTT connection. Results are queued in memory (bounded; oldest dropped and
/// counted when full) and published in order by a single loop that reconnects with jittered
/// exponential backoff, so a broker outage delays messages instead of losing them. A message that was
/// being sent when the connection broke is sent again after reconnecting (at-least-once).
/// The availability topic is retained "online" after every connect, "offline" on clean stop, and
/// "offline" as the last will when the process dies.
/// It also carries the daemon's subscriptions (sensor ingest, stream commands): they are made again
/// after every connect, since the session is clean-start and a reconnect forgets them.
/// </summary>
public sealed partial class MqttPublisher : IHostedService, IResultPublisher, IMqttSubscriptions, IAsyncDisposable
{
    private static readonly byte[] Online = "online"u8.ToArray();
    private static readonly byte[] Offline = "offline"u8.ToArray();

    private readonly MqttOptions _options;
    private readonly EmbeddedBrokerEndpoint _embeddedBroker;
    private readonly MqttTopics _topics;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<MqttPublisher> _logger;
    private readonly Channel<OutgoingMessage> _queue;

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
    private long _dropped;
    private long _rejected;
    private long _connects;
    private int _disposed;

    /// <summary>Creates the publisher (it connects when started).</summary>
    public MqttPublisher(IOptions<MqttOptions> options, IOptions<DeviceOptions> device, EmbeddedBrokerEndpoint embeddedBroker, MqttTopics topics, TimeProvider timeProvider, ILogger<MqttPublisher> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(device);
        _options = options.Value;
        _embeddedBroker = embeddedBroker;
        _topics = topics;
        _timeProvider = timeProvider;
        _logger = logger;
        _clientId = string.IsNullOrWhiteSpace(_options.ClientId) ? $"edgerunner-{DeviceIdentity.Resolve(device.Value)}" : _options.ClientId;
        _queue = Channel.CreateBounded<OutgoingMessage>(
            new BoundedChannelOptions(_options.QueueCapacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            OnDropped);
        _client = new MqttClientFactory().CreateMqttClient();
        _client.ApplicationMessageReceivedAsync += OnMessageReceivedAsync;
        _client.DisconnectedAsync += _ =>
        {
            lock (_connectionLock)
            {
                _connectionLost.Cancel();
            }

            return Task.CompletedTask;
        };
    }

    /// <summary>Messages the broker acknowledged.</summary>
    public long Published => Interlocked.Read(ref _published);

    /// <summary>Messages dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Successful connections so far.</summary>
    public long Connects => Interlocked.Read(ref _connects);

    /// <summary>Whether the client is connected now.</summary>
    public bool IsConnected => _client.IsConnected;

    /// <summary>Whether every subscription asked for is granted on the current connection (for readiness checks and tests).</summary>
    public bool AllSubscribed => _client.IsConnected && Volatile.Read(ref _subscriptions).All(s => _granted.ContainsKey(s.Filter));

    /// <inheritdoc />
    public bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain = false)
    {
        if (retain && !_stopping.IsCancellationRequested)
        {
            // States are retained and published only when they change: keep the latest per topic so a
            // (re)connect can send it again, even if the bounded queue dropped it during an outage. Under
            // one lock with the re-send, so a state changing meanwhile is always queued after the old one.
            lock (_retainedLock)
            {
                if (_retainedLatest.Count < MaxRetainedTopics || _retainedLatest.ContainsKey(topic))
                {
                    _retainedLatest[topic] = payload.ToArray();
                }

                return Enqueue(topic, payload, retain);
            }
        }

        return Enqueue(topic, payload, retain);
    }

    private bool Enqueue(string topic, ReadOnlySpan<byte> payload, bool retain)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, payload.Length));
        payload.CopyTo(buffer);
        if (_queue.Writer.TryWrite(new OutgoingMessage(topic, buffer, payload.Length, retain)))
        {
            return true;
        }

        ArrayPool<byte>.Shared.Return(buffer);
        Interlocked.Increment(ref _rejected);
        return false;
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
        _loop = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Stop accepting, then give the loop a bounded time to deliver what is queued.
        _queue.Writer.TryComplete();
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

        var undelivered = _queue.Reader.Count;
        while (_queue.Reader.TryRead(out var leftover))
        {
            ArrayPool<byte>.Shared.Return(leftover.Buffer);
        }

        if (undelivered > 0)
        {
            LogUndelivered(_logger, undelivered);
        }

        if (_client.IsConnected)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(_options.PublishTimeoutSeconds));
                await _client.PublishAsync(BuildMessage(_topics.Status, Offline, Offline.Length, retain: true, MqttQualityOfServiceLevel.AtLeastOnce), timeout.Token);
                await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.NormalDisconnection).Build(), timeout.Token);
            }
            catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or InvalidOperationException)
            {
                LogOfflineFailed(_logger, ex.Message);
            }
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
                    if (!_queue.Reader.TryRead(out var next))
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
                            if (!await _queue.Reader.WaitToReadAsync(wait.Token))
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
                    ArrayPool<byte>.Shared.Return(pending.Value.Buffer);
                    pending = null;
                }
            }
        }
        finally
        {
            if (pending is { } unsent)
            {
                ArrayPool<byte>.Shared.Return(unsent.Buffer);
                LogUndelivered(_logger, 1);
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

            var result = await _client.ConnectAsync(builder.Build(), timeout.Token);
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                LogConnectFailed(_logger, host, EffectivePort, result.ResultCode.ToString());
                return false;
            }

            await _client.PublishAsync(BuildMessage(_topics.Status, Online, Online.Length, retain: true, MqttQualityOfServiceLevel.AtLeastOnce), timeout.Token);
            await SubscribeAsync(Volatile.Read(ref _subscriptions), timeout.Token);
            var count = Interlocked.Increment(ref _connects);
            LogConnected(_logger, host, EffectivePort, count, _queue.Reader.Count);
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

    private async Task<bool> TrySendAsync(OutgoingMessage message, MqttQualityOfServiceLevel qos, CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(_options.PublishTimeoutSeconds));
            var result = await _client.PublishAsync(BuildMessage(message.Topic, message.Buffer, message.Length, message.Retain, qos), timeout.Token);
            if (!result.IsSuccess)
            {
                // The broker refused this message (e.g. not authorised for the topic): retrying would block the queue forever.
                Interlocked.Increment(ref _rejected);
                LogRejected(_logger, message.Topic, result.ReasonCode.ToString());
                return true;
            }

            Interlocked.Increment(ref _published);
            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogPublishFailed(_logger, message.Topic, "timed out");
        }
        catch (Exception ex) when (ex is MqttCommunicationException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            LogPublishFailed(_logger, message.Topic, ex.Message);
        }

        // Treat the connection as broken: reconnect, then resend this message.
        await DisconnectQuietlyAsync();
        return false;
    }

    private async Task DisconnectQuietlyAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), timeout.Token);
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            // Already gone; nothing to clean up.
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

    private void OnDropped(OutgoingMessage message)
    {
        ArrayPool<byte>.Shared.Return(message.Buffer);
        var dropped = Interlocked.Increment(ref _dropped);
        // Log the first drop and then every 1000th, not every one.
        if (dropped == 1 || dropped % 1000 == 0)
        {
            LogQueueFull(_logger, _options.QueueCapacity, dropped);
        }
    }

    private readonly record struct OutgoingMessage(string Topic, byte[] Buffer, int Length, bool Retain);

    private sealed record Subscription(string Filter, MqttMessageHandler Handler);

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

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT queue full ({Capacity} messages): oldest dropped, {Dropped} dropped so far")]
    private static partial void LogQueueFull(ILogger logger, int capacity, long dropped);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT shutdown: {Count} queued messages were not delivered")]
    private static partial void LogUndelivered(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT could not publish offline status on shutdown: {Reason}")]
    private static partial void LogOfflineFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT publisher stopped: {Published} published, {Dropped} dropped")]
    private static partial void LogStopped(ILogger logger, long published, long dropped);
}
