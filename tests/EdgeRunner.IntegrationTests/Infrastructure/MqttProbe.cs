using System.Buffers;
using System.Text;
using System.Threading.Channels;
using MQTTnet;
using MQTTnet.Formatter;

namespace EdgeRunner.IntegrationTests.Infrastructure;

internal sealed record ReceivedMessage(string Topic, string Payload, bool Retain)
{
    /// <summary>The payload's bytes as received (for binary payloads such as snapshots, which <see cref="Payload"/> cannot hold).</summary>
    public byte[] PayloadBytes { get; init; } = [];
}

/// <summary>An MQTT 5 subscriber that records every message (with the retain flag as published) for assertions.</summary>
internal sealed class MqttProbe : IAsyncDisposable
{
    private readonly IMqttClient _client;
    private readonly Channel<ReceivedMessage> _messages = Channel.CreateUnbounded<ReceivedMessage>();
    private readonly List<ReceivedMessage> _seen = [];
    private MqttClientOptions? _options;
    private bool _disposed;

    private MqttProbe(IMqttClient client) => _client = client;

    public IReadOnlyList<ReceivedMessage> Seen
    {
        get
        {
            lock (_seen)
            {
                return [.. _seen];
            }
        }
    }

    /// <summary>Connects (retrying until <paramref name="connectWithin"/> passes, for brokers still starting) and subscribes.</summary>
    /// <remarks>
    /// With <paramref name="persistentClientId"/> the probe keeps a broker-side session (clean start off,
    /// long expiry): messages published while it is disconnected are kept for it, so reconnecting
    /// with <see cref="ReconnectAsync"/> loses nothing.
    /// </remarks>
    public static async Task<MqttProbe> ConnectAsync(int port, string topicFilter, TimeSpan connectWithin, CancellationToken cancellationToken, string? persistentClientId = null, string? username = null, string? password = null)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var probe = new MqttProbe(client);
        client.ApplicationMessageReceivedAsync += e =>
        {
            var bytes = e.ApplicationMessage.Payload.ToArray();
            var message = new ReceivedMessage(e.ApplicationMessage.Topic, Encoding.UTF8.GetString(bytes), e.ApplicationMessage.Retain) { PayloadBytes = bytes };
            lock (probe._seen)
            {
                probe._seen.Add(message);
            }

            probe._messages.Writer.TryWrite(message);
            return Task.CompletedTask;
        };

        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", port)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithClientId(persistentClientId ?? "probe-" + Guid.NewGuid().ToString("N"));
        if (persistentClientId is not null)
        {
            builder.WithCleanStart(false).WithSessionExpiryInterval(3600);
        }

        // A broker with a password file (MosquittoAuth) takes only its users.
        if (username is not null)
        {
            builder.WithCredentials(username, password);
        }

        probe._options = builder.Build();
        await probe.ConnectWithRetryAsync(connectWithin, cancellationToken);

        var subscribe = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(topicFilter).WithRetainAsPublished(true).WithAtLeastOnceQoS())
            .Build();
        await client.SubscribeAsync(subscribe, cancellationToken);
        return probe;
    }

    /// <summary>Connects again with the same options (after the broker restarted).</summary>
    public Task ReconnectAsync(TimeSpan connectWithin, CancellationToken cancellationToken) => ConnectWithRetryAsync(connectWithin, cancellationToken);

    private async Task ConnectWithRetryAsync(TimeSpan connectWithin, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + connectWithin;
        while (true)
        {
            try
            {
                await _client.ConnectAsync(_options!, cancellationToken);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, cancellationToken);
            }
        }
    }

    /// <summary>Waits for the next message matching <paramref name="predicate"/> (messages before it are consumed).</summary>
    public async Task<ReceivedMessage> WaitForAsync(Func<ReceivedMessage, bool> predicate, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            while (true)
            {
                var message = await _messages.Reader.ReadAsync(cts.Token);
                if (predicate(message))
                {
                    return message;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"No matching MQTT message within {timeout}. Seen: {string.Join(" | ", Seen.Select(m => m.Topic + " " + m.Payload[..Math.Min(80, m.Payload.Length)]))}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            if (_client.IsConnected)
            {
                await _client.DisconnectAsync();
            }
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
        {
            // The broker may already be gone.
        }

        _client.Dispose();
    }
}
