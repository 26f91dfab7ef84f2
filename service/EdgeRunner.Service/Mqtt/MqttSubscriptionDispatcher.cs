using System.Collections.Concurrent;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Exceptions;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// The daemon's subscriptions over its one connection (MQTTnet's managed client calls this part the
/// subscriptions manager): keeps every filter asked for, subscribes to all of them again after every connect
/// (the session is clean-start, so a reconnect forgets them), and hands each received message to the handlers
/// whose filter matches. A handler that throws is logged; the connection goes on.
/// </summary>
public sealed partial class MqttSubscriptionDispatcher : IMqttSubscriptions
{
    private readonly MqttConnection _connection;
    // A subscribe made while connected is bounded like a publish.
    private readonly TimeSpan _subscribeTimeout;
    private readonly ILogger<MqttSubscriptionDispatcher> _logger;
    private readonly Lock _subscriptionsLock = new();
    // Copy-on-write: the receive loop reads it without a lock on every message.
    private Subscription[] _subscriptions = [];
    // Filters the broker granted on the current connection.
    private readonly ConcurrentDictionary<string, bool> _granted = new(StringComparer.Ordinal);

    /// <summary>Creates the dispatcher over <paramref name="connection"/>.</summary>
    /// <param name="connection">The daemon's connection.</param>
    /// <param name="options">The <c>Mqtt</c> section (the publish timeout bounds a subscribe made while connected).</param>
    /// <param name="logger">Logger.</param>
    public MqttSubscriptionDispatcher(MqttConnection connection, IOptions<MqttOptions> options, ILogger<MqttSubscriptionDispatcher> logger)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(options);
        _connection = connection;
        _subscribeTimeout = TimeSpan.FromSeconds(options.Value.PublishTimeoutSeconds);
        _logger = logger;
        connection.Client.ApplicationMessageReceivedAsync += OnMessageReceivedAsync;
        connection.Client.DisconnectedAsync += _ =>
        {
            // Nothing is granted on the next connection until it is subscribed again.
            _granted.Clear();
            return Task.CompletedTask;
        };
    }

    /// <summary>Whether every subscription asked for is granted on the current connection (for readiness checks and tests).</summary>
    public bool AllSubscribed => _connection.IsConnected && Volatile.Read(ref _subscriptions).All(s => _granted.ContainsKey(s.Filter));

    /// <inheritdoc />
    public void Subscribe(string topicFilter, MqttMessageHandler handler) => AddSubscription(topicFilter, handler, null);

    private void AddSubscription(string topicFilter, MqttMessageHandler handler, Action<MqttApplicationMessage>? messageHandler)
    {
        ArgumentException.ThrowIfNullOrEmpty(topicFilter);
        ArgumentNullException.ThrowIfNull(handler);
        var subscription = new Subscription(topicFilter, handler, messageHandler);
        lock (_subscriptionsLock)
        {
            _subscriptions = [.. _subscriptions, subscription];
        }

        // Already connected: subscribe now. Otherwise (or if the connection drops meanwhile) the
        // connect path subscribes everything; subscribing twice to one filter is harmless in MQTT.
        if (_connection.IsConnected && !_connection.Stopping.IsCancellationRequested)
        {
            _ = SubscribeNowAsync([subscription], _connection.Stopping);
        }
    }

    /// <summary>
    /// As <see cref="Subscribe"/>, for a handler that needs the whole message: its MQTT 5 properties (the
    /// response topic and correlation data of a request). Same rules: called on the receive loop, must not block.
    /// </summary>
    internal void SubscribeMessages(string topicFilter, Action<MqttApplicationMessage> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        AddSubscription(topicFilter, (_, _) => { }, handler);
    }

    /// <summary>Subscribes to every filter asked for so far, on a new connection; throws when the connection fails.</summary>
    internal Task SubscribeAllAsync(CancellationToken cancellationToken)
    {
        _granted.Clear();
        return SubscribeAsync(Volatile.Read(ref _subscriptions), cancellationToken);
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

        var result = await _connection.Client.SubscribeAsync(builder.Build(), cancellationToken);
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
            timeout.CancelAfter(_subscribeTimeout);
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
                if (subscription.MessageHandler is { } messageHandler)
                {
                    messageHandler(message);
                }
                else
                {
                    subscription.Handler(message.Topic, message.Payload);
                }
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

    private sealed record Subscription(string Filter, MqttMessageHandler Handler, Action<MqttApplicationMessage>? MessageHandler);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT subscribed to {TopicFilter}")]
    private static partial void LogSubscribed(ILogger logger, string topicFilter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT broker refused the subscription to {TopicFilter}: {ResultCode}")]
    private static partial void LogSubscribeRefused(ILogger logger, string topicFilter, string resultCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT subscribe to {TopicFilter} failed: {Reason}; it is made again after the next reconnect")]
    private static partial void LogSubscribeFailed(ILogger logger, string topicFilter, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT handler for a message on {Topic} failed; the connection goes on")]
    private static partial void LogHandlerFailed(ILogger logger, string topic, Exception exception);
}
