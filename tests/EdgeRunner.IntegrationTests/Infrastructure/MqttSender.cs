using System.Text;
using MQTTnet;
using MQTTnet.Formatter;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>A device publishing samples to the broker (MQTT 5, QoS 1, in order).</summary>
internal sealed class MqttSender : IAsyncDisposable
{
    private readonly IMqttClient _client;

    private MqttSender(IMqttClient client) => _client = client;

    public static async Task<MqttSender> ConnectAsync(int port, CancellationToken ct)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", port)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithClientId("sensor-" + Guid.NewGuid().ToString("N"))
            .Build();
        await client.ConnectAsync(options, ct);
        return new MqttSender(client);
    }

    public async Task PublishAsync(string topic, string payload, CancellationToken ct)
    {
        var message = new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(Encoding.UTF8.GetBytes(payload))
            .WithQualityOfServiceLevel(MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce)
            .Build();
        await _client.PublishAsync(message, ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_client.IsConnected)
        {
            await _client.DisconnectAsync();
        }

        _client.Dispose();
    }
}
