using System.Net;
using System.Security.Cryptography;
using System.Text;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// How the daemon's own MQTT client reaches the embedded broker: the address to dial (loopback when the
/// broker listens there, whatever the bind address) and a per-process secret that only this process
/// knows. The broker grants the daemon's rights (publishing results, status and states; the daemon's
/// client id) only to a connection that presents this secret.
/// </summary>
public sealed class EmbeddedBrokerEndpoint
{
    /// <summary>User name the daemon's client presents to the embedded broker.</summary>
    public const string DaemonUsername = "edgerunner-daemon";

    private readonly byte[] _passwordHash;
    private volatile bool _listening;

    /// <summary>Creates the endpoint and the process's secret.</summary>
    public EmbeddedBrokerEndpoint(IOptions<MqttOptions> options, IOptions<DeviceOptions> device)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(device);
        var mqtt = options.Value;
        Port = mqtt.EmbeddedBroker.Port;
        Host = DialAddress(mqtt.EmbeddedBroker.BindAddress);
        // The same rule as the publisher's client id (Mqtt:ClientId, else edgerunner-{device id}).
        DaemonClientId = string.IsNullOrWhiteSpace(mqtt.ClientId) ? $"edgerunner-{DeviceIdentity.Resolve(device.Value)}" : mqtt.ClientId;
        // 256 random bits, never written anywhere: the daemon connects from inside this process.
        DaemonPassword = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        _passwordHash = SHA256.HashData(Encoding.UTF8.GetBytes(DaemonPassword));
    }

    /// <summary>Address the daemon dials: 127.0.0.1 for 0.0.0.0, ::1 for ::, else the bound address itself (a LAN address is not reachable through loopback).</summary>
    public string Host { get; }

    /// <summary>Port the embedded broker listens on.</summary>
    public int Port { get; }

    /// <summary>The daemon's client id; the broker refuses it to anyone without the secret.</summary>
    public string DaemonClientId { get; }

    /// <summary>The per-process secret (password) of <see cref="DaemonUsername"/>.</summary>
    internal string DaemonPassword { get; }

    /// <summary>
    /// Credentials for the daemon's connect: the secret while the embedded broker listens, null when it
    /// did not start (its port was taken, e.g. by the mosquitto service) and the daemon publishes to
    /// whatever listens there, which must not be handed the secret.
    /// </summary>
    public (string Username, string Password)? DaemonCredentials => _listening ? (DaemonUsername, DaemonPassword) : null;

    /// <summary>Set by the broker once it listens.</summary>
    internal void MarkListening(bool listening) => _listening = listening;

    /// <summary>Whether a connect presents the daemon's secret; compared in constant time.</summary>
    internal bool IsDaemonSecret(string? username, ReadOnlySpan<byte> password) =>
        string.Equals(username, DaemonUsername, StringComparison.Ordinal)
        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(password), _passwordHash);

    /// <summary>Where to dial a broker bound to <paramref name="bindAddress"/> from this machine.</summary>
    public static string DialAddress(string bindAddress)
    {
        if (!IPAddress.TryParse(bindAddress, out var address))
        {
            return bindAddress; // Options validation refuses it before anything dials.
        }

        // The wildcard addresses listen on loopback too; any other address is only reachable as itself.
        if (address.Equals(IPAddress.Any))
        {
            return IPAddress.Loopback.ToString();
        }

        return address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback.ToString() : address.ToString();
    }
}
