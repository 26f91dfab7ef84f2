using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary>
/// Kind <c>Mqtt</c>: samples published to an MQTT topic, received over the daemon's own connection. The
/// service owns the subscriptions and routes (wildcard streams appear at run time), so the source is
/// opened through its hook.
/// </summary>
internal sealed class MqttSourceKind : ISensorSourceKind
{
    public SensorSourceKind Kind => SensorSourceKind.Mqtt;

    public ISensorSource Create(SensorSourceOptions options, SensorSourceContext context) => context.OpenMqttIngest();

    public int? ConfiguredChannels(SensorSourceOptions options) => null;
}
