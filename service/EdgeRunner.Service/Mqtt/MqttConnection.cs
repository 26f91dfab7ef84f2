using System.Buffers;
using System.Security.Authentication;
using System.Text;
using EdgeRunner.Hardware.Supervision;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Publishing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// The daemon's one MQTT connection (MQTTnet's managed client calls this part the connection manager):
/// connects (MQTT 5, clean start, the last will "offline" retained on the status topic) and reconnects with
/// jittered exponential backoff (<see cref="Backoff"/>), tells a session takeover from other losses, and says
/// the daemon's availability: "online" after every connect, "degraded" (with a retained JSON reason on
/// <see cref="MqttTopics.StatusDetail"/>) while results cannot be published, "offline" on clean stop.
/// It publishes nothing on its own: <see cref="MqttPublisher"/> delivers the outbox over it, and
/// <see cref="MqttSubscriptionDispatcher"/> subscribes over it.
/// </summary>
public sealed partial class MqttConnection : IAsyncDisposable
{
    private static readonly byte[] Online = "online"u8.ToArray();
    private static readonly byte[] Offline = "offline"u8.ToArray();
    private static readonly byte[] Degraded = "degraded"u8.ToArray();

    private readonly MqttOptions _options;
    private readonly EmbeddedBrokerEndpoint _embeddedBroker;
    private readonly MqttTopics _topics;
    private readonly PayloadOrigin _origin;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<MqttConnection> _logger;
    private readonly IMqttClient _client;
    private readonly string _clientId;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _connectionLock = new();
    // Cancelled when the current connection drops: an idle loop (nothing to publish) must still notice,
    // reconnect and subscribe again, or an ingest-only daemon would stop receiving for good.
    private CancellationTokenSource _connectionLost = new();
    // When the last connection was lost (TimeProvider timestamp), 0 while connected or before the first connect:
    // the reconnect log says how long publishing was cut off.
    private long _lostAtTimestamp;
    private long _connects;
    private long _sessionsTakenOver;
    // Set while this side closes the connection (shutdown, or after a failed publish), so that close is not taken for a takeover.
    private bool _disconnectRequested;
    // The reason of a connection the broker closed unasked, until the next connect attempt tells a takeover (the broker
    // still takes connections) from a broker that went away (killed: its connections close just as quietly).
    private string? _suspectedTakeover;
    // Null while publishing works; the reason while the status says degraded. Only the publishing loop writes it.
    private volatile string? _degradedReason;
    private long _maxPacketSize = long.MaxValue;
    // Why the server's certificate was refused in the current connect attempt (null: accepted, or not looked at yet).
    private volatile string? _tlsRefusal;
    // The certificates of the current connection (Mqtt:Tls), read at its connect.
    private MqttTlsMaterial? _tls;
    private int _disposed;

    /// <summary>Creates the connection (it connects when the publisher starts).</summary>
    /// <param name="options">The <c>Mqtt</c> section.</param>
    /// <param name="device">The device section (for the default client id).</param>
    /// <param name="embeddedBroker">Where and as whom to connect when the daemon runs its own broker.</param>
    /// <param name="topics">The daemon's topics (status and its detail).</param>
    /// <param name="timeProvider">Clock of the reconnect backoff and the status time.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="createClient">Creates the MQTT client; null for MQTTnet's. A seam to wrap the client (fault injection in tests).</param>
    /// <param name="origin">Device and boot id written at the head of <see cref="MqttTopics.StatusDetail"/>; null for a new boot of the configured device.</param>
    public MqttConnection(
        IOptions<MqttOptions> options,
        IOptions<DeviceOptions> device,
        EmbeddedBrokerEndpoint embeddedBroker,
        MqttTopics topics,
        TimeProvider timeProvider,
        ILogger<MqttConnection> logger,
        Func<IMqttClient>? createClient = null,
        PayloadOrigin? origin = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(device);
        _options = options.Value;
        _embeddedBroker = embeddedBroker;
        _topics = topics;
        _timeProvider = timeProvider;
        _logger = logger;
        _origin = origin ?? PayloadOrigin.NewBoot(DeviceIdentity.Resolve(device.Value));
        _clientId = string.IsNullOrWhiteSpace(_options.ClientId) ? $"edgerunner-{DeviceIdentity.Resolve(device.Value)}" : _options.ClientId;
        _client = createClient?.Invoke() ?? new MqttClientFactory().CreateMqttClient();
        _client.DisconnectedAsync += OnDisconnectedAsync;
    }

    /// <summary>The client id the daemon connects as.</summary>
    public string ClientId => _clientId;

    /// <summary>Whether the client is connected now.</summary>
    public bool IsConnected => _client.IsConnected;

    /// <summary>Successful connections so far.</summary>
    public long Connects => Interlocked.Read(ref _connects);

    /// <summary>Times the broker ended this client's session without an error and without being asked (another client connected with the same client id).</summary>
    public long SessionsTakenOver => Interlocked.Read(ref _sessionsTakenOver);

    /// <summary>Why the status says degraded now; null while publishing works.</summary>
    public string? DegradedReason => _degradedReason;

    /// <summary>The broker's Maximum Packet Size on the current connection (MQTT 5; <see cref="long.MaxValue"/> when it sets none).</summary>
    public long MaxPacketSize => Interlocked.Read(ref _maxPacketSize);

    /// <summary>The broker's host name or address.</summary>
    public string Host => string.IsNullOrWhiteSpace(_options.Host) ? _embeddedBroker.Host : _options.Host;

    /// <summary>The broker's port.</summary>
    public int Port => string.IsNullOrWhiteSpace(_options.Host) ? _options.EmbeddedBroker.Port : _options.Port;

    /// <summary>Cancelled when the daemon stops: from then on a lost connection is expected, and nothing is subscribed any more.</summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>The client, for the parts that publish and subscribe over this connection.</summary>
    internal IMqttClient Client => _client;

    /// <summary>The reconnect delay after <paramref name="consecutiveFailures"/> failures in a row (1 = the first): the one backoff rule, jittered so a fleet does not reconnect in lockstep after a broker restart, never below <c>Mqtt:ReconnectMinDelaySeconds</c>.</summary>
    public TimeSpan ReconnectDelay(int consecutiveFailures)
    {
        var min = TimeSpan.FromSeconds(_options.ReconnectMinDelaySeconds);
        // Jitter 0.5: the wait lies in the upper half of the exponential delay, as it always did here.
        var delay = Backoff.Exponential(min, TimeSpan.FromSeconds(_options.ReconnectMaxDelaySeconds), consecutiveFailures, multiplier: 2, jitter: 0.5, sample: Random.Shared.NextDouble());
        return delay < min ? min : delay;
    }

    /// <summary>
    /// Connects, retrying with <see cref="ReconnectDelay"/> until it works or <paramref name="cancellationToken"/>
    /// is cancelled. <paramref name="onConnected"/> runs on every new connection before it counts as made
    /// (subscriptions); when it throws a communication error the connection is dropped and tried again.
    /// </summary>
    internal async Task ConnectWithBackoffAsync(Func<CancellationToken, Task> onConnected, CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!await TryConnectAsync(onConnected, cancellationToken))
        {
            // The broker was not there to take the connection: the close before was the broker going away, not a takeover.
            Volatile.Write(ref _suspectedTakeover, null);
            await Task.Delay(ReconnectDelay(++failures), _timeProvider, cancellationToken);
        }

        // How long results could not go out, for the field engineer reading the journal after an outage: at most
        // the outage plus one backoff delay (Mqtt:ReconnectMaxDelaySeconds) plus the connect itself.
        if (Interlocked.Exchange(ref _lostAtTimestamp, 0) is var lostAt and not 0)
        {
            var outageSeconds = _timeProvider.GetElapsedTime(lostAt).TotalSeconds;
            LogReconnected(_logger, Host, Port, outageSeconds, failures);
        }
    }

    /// <summary>
    /// A token cancelled when the current connection drops, for waiting while there is nothing to publish.
    /// </summary>
    internal CancellationToken ConnectionLostToken()
    {
        lock (_connectionLock)
        {
            if (_connectionLost.IsCancellationRequested && _client.IsConnected)
            {
                // A late signal of an earlier connection: this one is up, so wait on a fresh token (never spin).
                _connectionLost.Dispose();
                _connectionLost = new CancellationTokenSource();
            }

            return _connectionLost.Token;
        }
    }

    /// <summary>Publishes one message, <paramref name="length"/> bytes of <paramref name="buffer"/>.</summary>
    internal Task<MqttClientPublishResult> PublishAsync(string topic, byte[] buffer, int length, bool retain, MqttQualityOfServiceLevel qos, CancellationToken cancellationToken) =>
        _client.PublishAsync(BuildMessage(topic, buffer, length, retain, qos), cancellationToken);

    /// <summary>Says "degraded" on the status topic, with the reason on its detail topic (both retained; best effort).</summary>
    internal async Task EnterDegradedAsync(string reason, StatusCounters counters, CancellationToken cancellationToken)
    {
        _degradedReason = reason;
        LogDegraded(_logger, reason);
        await PublishStatusAsync(Degraded, reason, counters, cancellationToken);
    }

    /// <summary>Messages go out again: "online" on the status topic and its detail.</summary>
    internal async Task LeaveDegradedAsync(StatusCounters counters, CancellationToken cancellationToken)
    {
        _degradedReason = null;
        LogRecovered(_logger);
        await PublishStatusAsync(Online, null, counters, cancellationToken);
    }

    /// <summary>
    /// Publishes the detail of the status just published at connect (retained): a detail left by an earlier run (which
    /// may have died degraded) never stands beside this run's status. Throws when the connection fails, like the connect.
    /// </summary>
    internal Task PublishDetailAtConnectAsync(StatusCounters counters, CancellationToken cancellationToken)
    {
        var reason = _degradedReason;
        var detail = StatusDetailWriter.Write(_origin, reason is null ? "online" : "degraded", reason, _timeProvider.GetUtcNow(), counters);
        return _client.PublishAsync(BuildMessage(_topics.StatusDetail, detail, detail.Length, retain: true, MqttQualityOfServiceLevel.AtLeastOnce), cancellationToken);
    }

    /// <summary>From now on the daemon stops: a lost connection is expected and is not a takeover.</summary>
    internal Task BeginStoppingAsync() => Volatile.Read(ref _disposed) != 0 ? Task.CompletedTask : _stopping.CancelAsync();

    /// <summary>Says "offline" (retained) and disconnects cleanly; never throws (the last will says offline anyway).</summary>
    internal async Task SayOfflineAndDisconnectAsync()
    {
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
    }

    /// <summary>Drops the connection (after a failed publish, or a failed loop); the next connect starts afresh. Never throws.</summary>
    internal async Task DisconnectQuietlyAsync()
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

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync();
        _client.Dispose();
        Interlocked.Exchange(ref _tls, null)?.Dispose();
        _stopping.Dispose();
        lock (_connectionLock)
        {
            _connectionLost.Dispose();
        }
    }

    internal static bool IsFatal(Exception ex) => ex is OutOfMemoryException or StackOverflowException or AccessViolationException;

    private Task OnDisconnectedAsync(MqttClientDisconnectedEventArgs e)
    {
        lock (_connectionLock)
        {
            _connectionLost.Cancel();
        }

        if (e.ClientWasConnected && !_stopping.IsCancellationRequested)
        {
            if (!_client.IsConnected)
            {
                // (A late event of a connection already replaced has nothing to time.)
                Interlocked.CompareExchange(ref _lostAtTimestamp, _timeProvider.GetTimestamp(), 0);
            }

            var reason = e.Reason.ToString();
            var detail = e.ReasonString ?? e.Exception?.Message ?? string.Empty;
            LogConnectionLost(_logger, reason, detail);
        }

        // Another client connecting with our client id takes the session over: MQTT 5 brokers may say so
        // (reason 0x8E), while mosquitto simply closes the old connection, which reaches us as a normal
        // disconnect we did not ask for. On a shared broker two daemons (or a daemon and a tool) with one id
        // cut each other off in turn: say so plainly, with the fix.
        if (e.ClientWasConnected && !_stopping.IsCancellationRequested && !Volatile.Read(ref _disconnectRequested) && e.Exception is null)
        {
            if (e.Reason is MqttClientDisconnectReason.SessionTakenOver)
            {
                ReportSessionTakenOver(e.Reason.ToString());
            }
            else if (e.Reason is MqttClientDisconnectReason.NormalDisconnection)
            {
                // A broker killed (SIGKILL, a crash, the power) closes its connections exactly so: judged at the
                // next connect attempt, which only a broker still running takes (see ConnectWithBackoffAsync).
                Volatile.Write(ref _suspectedTakeover, e.Reason.ToString());
                if (_client.IsConnected && Interlocked.Exchange(ref _suspectedTakeover, null) is { } reason)
                {
                    // This event came late: the publishing loop saw the loss and has connected again already.
                    ReportSessionTakenOver(reason);
                }
            }
        }

        return Task.CompletedTask;
    }

    private void ReportSessionTakenOver(string reason)
    {
        Interlocked.Increment(ref _sessionsTakenOver);
        LogSessionTakenOver(_logger, _clientId, reason);
    }

    /// <summary>
    /// <c>Mqtt:KeepAliveSeconds</c>, except none towards the daemon's own embedded broker: it runs in this process
    /// over loopback, where a keep-alive finds nothing a closed socket does not tell, and MQTTnet's keep-alive loop
    /// wakes every 250 ms whatever the period (most of an idle daemon's wake-ups; docs/performance.md §12).
    /// </summary>
    private TimeSpan KeepAlive => string.IsNullOrWhiteSpace(_options.Host) && _embeddedBroker.DaemonCredentials is not null
        ? TimeSpan.Zero
        : TimeSpan.FromSeconds(_options.KeepAliveSeconds);

    private async Task<bool> TryConnectAsync(Func<CancellationToken, Task> onConnected, CancellationToken cancellationToken)
    {
        var host = Host;
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(host, Port)
            .WithClientId(_clientId)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithCleanStart(true)
            .WithKeepAlivePeriod(KeepAlive)
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
            if (MqttSecrets.TryReadPassword(_options, out var password, out var passwordError))
            {
                builder.WithCredentials(_options.Username, password);
            }
            else
            {
                // The secret's source (file, credential) is named, never its content.
                LogConnectFailed(_logger, host, Port, passwordError);
                return false;
            }
        }

        // Read for this connect only: rotated certificate files are used from the next reconnect on.
        // The previous connect's certificates are released only now: its TLS session may have used them until it ended.
        string? tlsError = null;
        var tls = UseTls ? MqttTlsMaterial.TryLoad(_options.Tls, out tlsError) : null;
        Interlocked.Exchange(ref _tls, tls)?.Dispose();
        if (UseTls)
        {
            if (tls is null)
            {
                LogTlsConnectFailed(_logger, host, Port, tlsError ?? "Mqtt:Tls: files cannot be read");
                return false;
            }

            ConfigureTls(builder, tls, host);
        }

        _tlsRefusal = null;

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(_options.ConnectTimeoutSeconds));
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
                LogConnectFailed(_logger, host, Port, result.ResultCode.ToString());
                return false;
            }

            // The first attempt after a quiet close got through: the broker never went away, so another client took the session.
            if (Interlocked.Exchange(ref _suspectedTakeover, null) is { } closeReason)
            {
                ReportSessionTakenOver(closeReason);
            }

            // MQTT 5: the broker may cap the packets it takes; a message over it is refused for its producer, never sent.
            Interlocked.Exchange(ref _maxPacketSize, result.MaximumPacketSize is > 0 and var max ? max : long.MaxValue);
            var status = _degradedReason is null ? Online : Degraded;
            await _client.PublishAsync(BuildMessage(_topics.Status, status, status.Length, retain: true, MqttQualityOfServiceLevel.AtLeastOnce), timeout.Token);
            await onConnected(timeout.Token);
            Interlocked.Increment(ref _connects);
            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogConnectFailed(_logger, host, Port, "timed out");
        }
        catch (Exception ex) when (ex is MqttCommunicationException or InvalidOperationException or System.Net.Sockets.SocketException or IOException or AuthenticationException)
        {
            // A TLS failure gets one line that says which: the server's certificate as judged here, else the broker's alert.
            var tlsReason = !UseTls ? null : _tlsRefusal ?? MqttTlsMaterial.WhyHandshakeFailed(ex, tls?.ClientCertificate, _timeProvider.GetUtcNow());
            if (tlsReason is not null)
            {
                LogTlsConnectFailed(_logger, host, Port, tlsReason);
            }
            else
            {
                LogConnectFailed(_logger, host, Port, ex.Message);
            }
        }

        await DisconnectQuietlyAsync();
        return false;
    }

    private async Task PublishStatusAsync(byte[] status, string? reason, StatusCounters counters, CancellationToken cancellationToken)
    {
        var detail = StatusDetailWriter.Write(_origin, Encoding.UTF8.GetString(status), reason, _timeProvider.GetUtcNow(), counters);
        try
        {
            if (!_client.IsConnected)
            {
                return; // The next connect publishes the status as it is then.
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(_options.PublishTimeoutSeconds));
            await _client.PublishAsync(BuildMessage(_topics.StatusDetail, detail, detail.Length, retain: true, MqttQualityOfServiceLevel.AtLeastOnce), timeout.Token);
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

    // TLS applies to an external broker only: the embedded one is reached in-process over loopback.
    private bool UseTls => _options.Tls.Enabled && !string.IsNullOrWhiteSpace(_options.Host);

    private void ConfigureTls(MqttClientOptionsBuilder builder, MqttTlsMaterial tls, string host)
    {
        var allowUntrusted = _options.Tls.AllowUntrusted;
        if (allowUntrusted)
        {
            LogUntrustedAllowed(_logger, host, Port);
        }

        var customCa = tls.TrustedCas.Count > 0;
        builder.WithTlsOptions(o =>
        {
            o.UseTls()
                .WithSslProtocols(SslProtocols.Tls12 | SslProtocols.Tls13)
                .WithTargetHost(host)
                .WithCertificateValidationHandler(e =>
                {
                    var refusal = MqttTlsMaterial.WhyServerCertificateRefused(e.Certificate, e.Chain, e.SslPolicyErrors, host, customCa);
                    _tlsRefusal = allowUntrusted ? null : refusal;
                    return allowUntrusted || refusal is null;
                });
            if (customCa)
            {
                // Only these CAs are trusted (not the system's as well): a private broker's CA is all it takes.
                o.WithTrustChain(tls.TrustedCas);
            }

            if (tls.ClientCertificate is { } client)
            {
                o.WithClientCertificates([client])
                    // Always offer it, whatever CAs the broker names: a refusal then says why (expired, unknown CA) instead of "certificate required".
                    .WithCertificateSelectionHandler(_ => client);
            }
        });
    }

    private static MqttApplicationMessage BuildMessage(string topic, byte[] buffer, int length, bool retain, MqttQualityOfServiceLevel qos) =>
        new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(new ReadOnlySequence<byte>(buffer, 0, length))
            .WithQualityOfServiceLevel(qos)
            .WithRetainFlag(retain)
            .Build();

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT session taken over ({Reason}): the broker closed this daemon's connection unasked while it kept running, which is what it does when another client connects with the same client id {ClientId}. If this repeats, two daemons (or a daemon and another tool) share the id: give each a unique Mqtt:ClientId (or Device:Id). Reconnecting")]
    private static partial void LogSessionTakenOver(ILogger logger, string clientId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT connected to {Host}:{Port} again {OutageSeconds:0.0} s after the connection was lost ({FailedAttempts} failed attempts); queued messages go out now")]
    private static partial void LogReconnected(ILogger logger, string host, int port, double outageSeconds, int failedAttempts);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT connection lost: {Reason} {Detail}")]
    private static partial void LogConnectionLost(ILogger logger, string reason, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT connect to {Host}:{Port} failed: {Reason}; retrying with backoff")]
    private static partial void LogConnectFailed(ILogger logger, string host, int port, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT TLS connect to {Host}:{Port} failed: {Reason}; retrying with backoff")]
    private static partial void LogTlsConnectFailed(ILogger logger, string host, int port, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT TLS to {Host}:{Port} with Mqtt:Tls:AllowUntrusted: the broker's certificate is not checked (CA, name, dates); anyone in the path can read and forge messages. Set Mqtt:Tls:CaFile instead")]
    private static partial void LogUntrustedAllowed(ILogger logger, string host, int port);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT status degraded: {Reason}")]
    private static partial void LogDegraded(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT messages are published again: status online")]
    private static partial void LogRecovered(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT could not publish status {Status}: {Reason}; the next connect publishes it")]
    private static partial void LogStatusFailed(ILogger logger, string status, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT could not publish offline status on shutdown: {Reason}")]
    private static partial void LogOfflineFailed(ILogger logger, string reason);
}

/// <summary>The publisher's counters that the status detail carries.</summary>
/// <param name="Failed">Messages dropped because their publish threw.</param>
/// <param name="Rejected">Messages the broker refused.</param>
/// <param name="Refused">Messages refused before publishing (bad topic, too large).</param>
/// <param name="Dropped">Messages dropped because the outbox was full.</param>
public readonly record struct StatusCounters(long Failed, long Rejected, long Refused, long Dropped);
