using System.Net;
using System.Security.Cryptography.X509Certificates;
using MQTTnet.Adapter;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Server;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// Wraps the embedded broker's TCP adapter so that an MQTT 3.1/3.1.1 client connecting with an empty
/// client id and a clean session gets an id assigned, as MQTT 3.1.1 allows [MQTT-3.1.3-6]
/// (<c>mosquitto_sub -t '#'</c> does this). MQTTnet assigns ids to MQTT 5 clients only and refuses
/// the others ("identifier rejected") before any event could change the id, so the CONNECT packet is
/// given its id here, as it is read. An empty id without a clean session stays refused [MQTT-3.1.3-8].
/// </summary>
internal sealed class EmbeddedBrokerClientIdAdapter(IMqttServerAdapter inner) : IMqttServerAdapter
{
    /// <summary>Prefix of assigned client ids.</summary>
    public const string AssignedPrefix = "auto-";

    /// <inheritdoc />
    public Func<IMqttChannelAdapter, Task>? ClientHandler { get; set; }

    /// <inheritdoc />
    public Task StartAsync(MqttServerOptions options, IMqttNetLogger logger)
    {
        inner.ClientHandler = channel => ClientHandler is { } handler ? handler(new Channel(channel)) : Task.CompletedTask;
        return inner.StartAsync(options, logger);
    }

    /// <inheritdoc />
    public Task StopAsync() => inner.StopAsync();

    /// <inheritdoc />
    public void Dispose() => inner.Dispose();

    /// <summary>A new client id for a client that sent none.</summary>
    public static string NewClientId() => AssignedPrefix + Guid.NewGuid().ToString("N");

    /// <summary>Passes everything through; gives the first packet, when it is an id-less clean-session CONNECT of MQTT 3.x, an id.</summary>
    private sealed class Channel(IMqttChannelAdapter inner) : IMqttChannelAdapter
    {
        private bool _connectSeen;

        public long BytesReceived => inner.BytesReceived;

        public long BytesSent => inner.BytesSent;

        public X509Certificate2 ClientCertificate => inner.ClientCertificate;

        public EndPoint RemoteEndPoint => inner.RemoteEndPoint;

        public EndPoint LocalEndPoint => inner.LocalEndPoint;

        public bool IsSecureConnection => inner.IsSecureConnection;

        public MqttPacketFormatterAdapter PacketFormatterAdapter => inner.PacketFormatterAdapter;

        public Task ConnectAsync(CancellationToken cancellationToken) => inner.ConnectAsync(cancellationToken);

        public Task DisconnectAsync(CancellationToken cancellationToken) => inner.DisconnectAsync(cancellationToken);

        public async Task<MqttPacket> ReceivePacketAsync(CancellationToken cancellationToken)
        {
            var packet = await inner.ReceivePacketAsync(cancellationToken).ConfigureAwait(false);
            if (!_connectSeen)
            {
                _connectSeen = true;
                if (packet is MqttConnectPacket { CleanSession: true } connect
                    && string.IsNullOrEmpty(connect.ClientId)
                    && inner.PacketFormatterAdapter.ProtocolVersion != MqttProtocolVersion.V500)
                {
                    connect.ClientId = NewClientId();
                }
            }

            return packet;
        }

        public void ResetStatistics() => inner.ResetStatistics();

        public Task SendPacketAsync(MqttPacket packet, CancellationToken cancellationToken) => inner.SendPacketAsync(packet, cancellationToken);

        public void Dispose() => inner.Dispose();
    }
}
