using System.Net;
using System.Net.Sockets;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet.Server;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// In-process MQTT broker (MQTTnet.Server) used when no broker host is configured, so a fresh device
/// shows results with nothing else installed. Retained messages live in memory. Registered before the
/// publisher so it starts first and stops last.
/// </summary>
public sealed partial class EmbeddedMqttBroker : IHostedService, IDisposable
{
    private readonly EmbeddedBrokerOptions _options;
    private readonly ILogger<EmbeddedMqttBroker> _logger;
    private MqttServer? _server;

    /// <summary>Creates the broker (it listens when started).</summary>
    public EmbeddedMqttBroker(IOptions<MqttOptions> options, ILogger<EmbeddedMqttBroker> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value.EmbeddedBroker;
        _logger = logger;
    }

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
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

        _server = factory.CreateMqttServer(builder.Build());
        _server.ValidatingConnectionAsync += AssignClientIdentifier;
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

        LogListening(_logger, _options.BindAddress, _options.Port);
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is { IsStarted: true })
        {
            await _server.StopAsync();
        }
    }

    /// <inheritdoc />
    public void Dispose() => _server?.Dispose();

    // MQTT 5 clients may connect with an empty client id and expect the broker to assign one
    // (mosquitto_sub -V mqttv5); MQTTnet rejects that unless we assign it here. MQTTnet does not
    // assign ids to MQTT 3.1.1 clients, which must send their own (mosquitto_sub -i NAME).
    private static Task AssignClientIdentifier(ValidatingConnectionEventArgs args)
    {
        if (string.IsNullOrEmpty(args.ClientId))
        {
            args.AssignedClientIdentifier = "auto-" + Guid.NewGuid().ToString("N");
        }

        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Embedded MQTT broker not started: {Address}:{Port} is already in use (another broker, e.g. the mosquitto service?). Publishing to whatever listens there; set Mqtt:Host to name a broker or Mqtt:EmbeddedBroker:Port to move the embedded one")]
    private static partial void LogPortTaken(ILogger logger, string address, int port);

    [LoggerMessage(Level = LogLevel.Information, Message = "Embedded MQTT broker listening on {Address}:{Port} (set Mqtt:Host to use an external broker)")]
    private static partial void LogListening(ILogger logger, string address, int port);
}
