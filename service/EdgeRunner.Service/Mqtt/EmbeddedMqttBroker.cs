using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// In-process MQTT broker (MQTTnet.Server) used when no broker host is configured, so a fresh device
/// shows results with nothing else installed. Retained messages live in memory. Registered before the
/// publisher so it starts first and stops last. It checks who is talking: the daemon's own client
/// proves itself with a per-process secret (<see cref="EmbeddedBrokerEndpoint"/>), every other client
/// is bound by <see cref="EmbeddedBrokerAcl"/> (read anything, write only ingest and command topics),
/// and beyond loopback must present <c>Mqtt:EmbeddedBroker:Username</c>/<c>Password</c>.
/// </summary>
public sealed partial class EmbeddedMqttBroker : IHostedService, IDisposable
{
    private const string DaemonSessionKey = "EdgeRunner.Daemon";

    private readonly EmbeddedBrokerOptions _options;
    private readonly EmbeddedBrokerEndpoint _endpoint;
    private readonly EmbeddedBrokerAcl _acl;
    private readonly ILogger<EmbeddedMqttBroker> _logger;
    private readonly LogRateLimiter _connectLog;
    private readonly LogRateLimiter _publishLog;
    private readonly LogRateLimiter _subscribeLog;
    private EmbeddedBrokerCredentials? _credentials;
    private MqttServer? _server;
    private X509Certificate2? _tlsCertificate;
    private long _refusedConnections;
    private long _refusedPublishes;
    private long _refusedSubscriptions;
    private int _daemonKeepAliveSeconds = -1;

    /// <summary>Creates the broker (it listens when started).</summary>
    public EmbeddedMqttBroker(IOptions<MqttOptions> options, EmbeddedBrokerEndpoint endpoint, MqttTopics topics, TimeProvider timeProvider, ILogger<EmbeddedMqttBroker> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value.EmbeddedBroker;
        _endpoint = endpoint;
        _acl = new EmbeddedBrokerAcl(topics);
        _logger = logger;
        _connectLog = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
        _publishLog = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
        _subscribeLog = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
    }

    /// <summary>Connections refused: the daemon's client id without its secret, or missing/wrong credentials.</summary>
    public long RefusedConnections => Interlocked.Read(ref _refusedConnections);

    /// <summary>Publications from other clients refused by the ACL (not delivered, not retained).</summary>
    public long RefusedPublishes => Interlocked.Read(ref _refusedPublishes);

    /// <summary>Subscriptions refused by the ACL.</summary>
    public long RefusedSubscriptions => Interlocked.Read(ref _refusedSubscriptions);

    /// <summary>The keep-alive the daemon's own client asked for in its latest CONNECT (0 = none); -1 before it connected. For tests.</summary>
    internal int DaemonKeepAliveSeconds => Volatile.Read(ref _daemonKeepAliveSeconds);

    /// <summary>The access rules (and the filters the daemon subscribed to, which they are derived from).</summary>
    public EmbeddedBrokerAcl Acl => _acl;

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _credentials = EmbeddedBrokerCredentials.FromOptions(_options);
        var address = IPAddress.Parse(_options.BindAddress);
        var factory = new MqttServerFactory();
        var builder = factory.CreateServerOptionsBuilder()
            .WithDefaultEndpoint()
            .WithDefaultEndpointPort(_options.Port);
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            builder.WithDefaultEndpointBoundIPV6Address(address).WithDefaultEndpointBoundIPAddress(IPAddress.None);
        }
        else
        {
            // Bind exactly the configured IPv4 address; add the IPv6 twin only for the wildcard address.
            builder.WithDefaultEndpointBoundIPAddress(address)
                .WithDefaultEndpointBoundIPV6Address(address.Equals(IPAddress.Any) ? IPAddress.IPv6Any : IPAddress.None);
        }

        var tls = _options.Tls;
        if (tls.Port != 0)
        {
            // Validated at start; read again here in case the files changed in between.
            _tlsCertificate = TryLoadCertificate(tls, out var error)
                ?? throw new StartupException($"{error.Key}: {error.Problem}", StartupException.ConfigError);
            builder.WithEncryptedEndpoint()
                .WithEncryptedEndpointPort(tls.Port)
                .WithEncryptionCertificate(_tlsCertificate)
                .WithEncryptionSslProtocol(SslProtocols.Tls12 | SslProtocols.Tls13);
            if (address.AddressFamily == AddressFamily.InterNetworkV6)
            {
                builder.WithEncryptedEndpointBoundIPV6Address(address).WithEncryptedEndpointBoundIPAddress(IPAddress.None);
            }
            else
            {
                builder.WithEncryptedEndpointBoundIPAddress(address)
                    .WithEncryptedEndpointBoundIPV6Address(address.Equals(IPAddress.Any) ? IPAddress.IPv6Any : IPAddress.None);
            }
        }

        var adapters = factory.DefaultServerAdapters.Select(create => (IMqttServerAdapter)new EmbeddedBrokerClientIdAdapter(create(factory))).ToList();
        _server = factory.CreateMqttServer(builder.Build(), adapters);
        _server.ValidatingConnectionAsync += ValidateConnectionAsync;
        _server.InterceptingPublishAsync += InterceptPublishAsync;
        _server.InterceptingSubscriptionAsync += InterceptSubscriptionAsync;
        try
        {
            await _server.StartAsync();
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            // Typically Debian's own mosquitto, started by its package on 1883. Publishing to it is what
            // the user wants from the default configuration; say so loudly rather than refusing to run.
            _server.Dispose();
            _server = null;
            LogPortTaken(_logger, _options.BindAddress, _options.Port);
            return;
        }
        catch (SocketException ex)
        {
            throw new StartupException(
                $"Embedded MQTT broker cannot listen on {_options.BindAddress}:{_options.Port}: {ex.Message}. " +
                "Set Mqtt:Host to use an existing broker, or choose another Mqtt:EmbeddedBroker:Port.",
                StartupException.ServiceUnavailable,
                ex);
        }

        _endpoint.MarkListening(true);
        LogListening(_logger, _options.BindAddress, _options.Port, _credentials is null ? "anonymous local clients allowed" : "clients must authenticate");
        if (_tlsCertificate is { } certificate)
        {
            LogTlsListening(_logger, _options.BindAddress, tls.Port, certificate.Subject, certificate.NotAfter);
        }
    }

    /// <summary>
    /// The TLS listener's certificate with its key (<c>Mqtt:EmbeddedBroker:Tls:CertFile</c> and <c>KeyFile</c>, PEM);
    /// null with the key of the file at fault and why when they cannot be used.
    /// </summary>
    internal static X509Certificate2? TryLoadCertificate(EmbeddedBrokerTlsOptions options, out (string Key, string Problem) error)
    {
        const string Key = "Mqtt:EmbeddedBroker:Tls";
        error = default;
        foreach (var (name, path) in new[] { ("CertFile", options.CertFile), ("KeyFile", options.KeyFile) })
        {
            if (!File.Exists(path))
            {
                error = ($"{Key}:{name}", $"file '{path}' does not exist");
                return null;
            }
        }

        try
        {
            return X509Certificate2.CreateFromPemFile(options.CertFile, options.KeyFile);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            error = ($"{Key}:CertFile", ex.Message);
        }
        catch (CryptographicException ex)
        {
            error = ($"{Key}:KeyFile", $"'{options.KeyFile}' is not an unencrypted PEM private key of the certificate in '{options.CertFile}' ({ex.Message})");
        }
        catch (ArgumentException ex) when (ex.ParamName == "privateKey")
        {
            error = ($"{Key}:KeyFile", $"'{options.KeyFile}' is not the private key of the certificate in '{options.CertFile}'");
        }
        catch (ArgumentException ex)
        {
            error = ($"{Key}:CertFile", $"'{options.CertFile}' holds no usable PEM certificate ({ex.Message})");
        }

        return null;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _endpoint.MarkListening(false);
        if (_server is { IsStarted: true })
        {
            await _server.StopAsync();
            LogStopped(_logger, RefusedConnections, RefusedPublishes, RefusedSubscriptions);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _server?.Dispose();
        _tlsCertificate?.Dispose();
    }

    private Task ValidateConnectionAsync(ValidatingConnectionEventArgs args)
    {
        // MQTT 5 clients may connect with an empty client id and expect the broker to assign one
        // (mosquitto_sub -V mqttv5); MQTTnet rejects that unless we assign it here. MQTT 3.1.1 clients
        // got theirs as their CONNECT was read (EmbeddedBrokerClientIdAdapter).
        if (string.IsNullOrEmpty(args.ClientId))
        {
            args.AssignedClientIdentifier = EmbeddedBrokerClientIdAdapter.NewClientId();
        }

        var verdict = EmbeddedBrokerAcl.DecideConnect(_endpoint, _credentials, args.ClientId, args.UserName, args.RawPassword);
        switch (verdict)
        {
            case ConnectVerdict.Daemon:
                args.SessionItems[DaemonSessionKey] = true;
                Volatile.Write(ref _daemonKeepAliveSeconds, args.KeepAlivePeriod ?? 0);
                return Task.CompletedTask;
            case ConnectVerdict.Client:
                return Task.CompletedTask;
            case ConnectVerdict.ReservedClientId:
                // Identifier rejected (MQTT 3.1.1: return code 2); the daemon's session is never touched.
                args.ReasonCode = MqttConnectReasonCode.ClientIdentifierNotValid;
                args.ReasonString = "this client id is reserved for the EdgeRunner daemon";
                break;
            default:
                args.ReasonCode = MqttConnectReasonCode.BadUserNameOrPassword;
                args.ReasonString = "a valid user name and password are required";
                break;
        }

        Interlocked.Increment(ref _refusedConnections);
        if (_connectLog.TryAcquire(out var suppressed))
        {
            // The reason, never the credentials.
            LogConnectionRefused(_logger, args.ClientId ?? string.Empty, args.RemoteEndPoint?.ToString() ?? "?", args.ReasonString, suppressed);
        }

        return Task.CompletedTask;
    }

    private Task InterceptPublishAsync(InterceptingPublishEventArgs args)
    {
        var message = args.ApplicationMessage;
        if (IsDaemon(args.SessionItems) || message is null)
        {
            return Task.CompletedTask;
        }

        if (_acl.WhyNotPublish(message.Topic, message.Retain) is { } reason)
        {
            // Not delivered, not retained. MQTT 5 publishers get "not authorized" with the reason;
            // MQTT 3.1.1 has no way to say so (its PUBACK carries no code), as with mosquitto's ACLs.
            args.ProcessPublish = false;
            args.Response.ReasonCode = MqttPubAckReasonCode.NotAuthorized;
            args.Response.ReasonString = reason;
            Interlocked.Increment(ref _refusedPublishes);
            if (_publishLog.TryAcquire(out var suppressed))
            {
                LogPublishRefused(_logger, args.ClientId, message.Topic, reason, suppressed);
            }
        }

        return Task.CompletedTask;
    }

    private Task InterceptSubscriptionAsync(InterceptingSubscriptionEventArgs args)
    {
        var filter = args.TopicFilter.Topic;
        if (IsDaemon(args.SessionItems))
        {
            // The daemon's own subscriptions (ingest filters, commands) are what other clients may publish to.
            _acl.AddDaemonFilter(filter);
            return Task.CompletedTask;
        }

        if (EmbeddedBrokerAcl.WhyNotSubscribe(filter) is { } reason)
        {
            args.ProcessSubscription = false;
            args.Response.ReasonCode = MqttSubscribeReasonCode.NotAuthorized;
            args.ReasonString = reason;
            Interlocked.Increment(ref _refusedSubscriptions);
            if (_subscribeLog.TryAcquire(out var suppressed))
            {
                LogSubscribeRefused(_logger, args.ClientId, filter, reason, suppressed);
            }
        }

        return Task.CompletedTask;
    }

    private static bool IsDaemon(System.Collections.IDictionary? sessionItems) => sessionItems?[DaemonSessionKey] is true;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Embedded MQTT broker not started: {Address}:{Port} is already in use (another broker, e.g. the mosquitto service?). Publishing to whatever listens there; set Mqtt:Host to name a broker or Mqtt:EmbeddedBroker:Port to move the embedded one")]
    private static partial void LogPortTaken(ILogger logger, string address, int port);

    [LoggerMessage(Level = LogLevel.Information, Message = "Embedded MQTT broker listening on {Address}:{Port}, {Authentication} (set Mqtt:Host to use an external broker)")]
    private static partial void LogListening(ILogger logger, string address, int port, string authentication);

    [LoggerMessage(Level = LogLevel.Information, Message = "Embedded MQTT broker TLS listener on {Address}:{Port} with certificate '{Subject}' (valid until {NotAfter:u})")]
    private static partial void LogTlsListening(ILogger logger, string address, int port, string subject, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Information, Message = "Embedded MQTT broker stopped: {RefusedConnections} connections, {RefusedPublishes} publishes and {RefusedSubscriptions} subscriptions refused")]
    private static partial void LogStopped(ILogger logger, long refusedConnections, long refusedPublishes, long refusedSubscriptions);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Embedded MQTT broker refused a connection as {ClientId} from {RemoteEndPoint}: {Reason} ({Suppressed} more refusals not logged)")]
    private static partial void LogConnectionRefused(ILogger logger, string clientId, string remoteEndPoint, string reason, long suppressed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Embedded MQTT broker refused a publish by {ClientId} to {Topic}: {Reason} ({Suppressed} more refusals not logged)")]
    private static partial void LogPublishRefused(ILogger logger, string clientId, string topic, string reason, long suppressed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Embedded MQTT broker refused a subscription by {ClientId} to {TopicFilter}: {Reason} ({Suppressed} more refusals not logged)")]
    private static partial void LogSubscribeRefused(ILogger logger, string clientId, string topicFilter, string reason, long suppressed);
}
