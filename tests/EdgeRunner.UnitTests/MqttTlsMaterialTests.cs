using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Configuration;

namespace EdgeRunner.UnitTests;

/// <summary>The words of a TLS failure, and the password sources: nothing in them may be a secret.</summary>
public sealed class MqttTlsMaterialTests
{
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 0, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("error:0A000415:SSL routines::sslv3 alert certificate expired", "handshake refused by the broker (sslv3 alert certificate expired)")]
    [InlineData("error:0A00045C:SSL routines::tlsv13 alert certificate required", "handshake refused by the broker (tlsv13 alert certificate required): it requires a client certificate; set Mqtt:Tls:CertFile and KeyFile")]
    [InlineData("error:0A000418:SSL routines::tlsv1 alert unknown ca", "handshake refused by the broker (tlsv1 alert unknown ca)")]
    public void The_brokers_TLS_alert_is_named(string openSslError, string expected)
    {
        var failure = new IOException("Received an unexpected EOF or 0 bytes from the transport stream.", new AuthenticationException(openSslError));
        Assert.Equal(expected, MqttTlsMaterial.WhyHandshakeFailed(failure, clientCertificate: null, Now));
    }

    [Fact]
    public void A_refused_handshake_with_an_expired_own_certificate_says_so_with_the_keys_to_fix()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=device-7", key, HashAlgorithmName.SHA256);
        using var expired = request.CreateSelfSigned(Now.AddYears(-2), Now.AddYears(-1));
        var failure = new IOException("Received an unexpected EOF", new AuthenticationException("error:0A000415:SSL routines::sslv3 alert certificate expired"));
        var reason = MqttTlsMaterial.WhyHandshakeFailed(failure, expired, Now);
        Assert.NotNull(reason);
        Assert.Contains("the client certificate 'CN=device-7'", reason, StringComparison.Ordinal);
        Assert.Contains("has expired; replace Mqtt:Tls:CertFile and KeyFile", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failure_that_is_not_TLS_is_left_to_the_plain_connect_line()
    {
        Assert.Null(MqttTlsMaterial.WhyHandshakeFailed(new System.Net.Sockets.SocketException(111), clientCertificate: null, Now));
    }

    [Fact]
    public void An_unreadable_password_file_is_named_by_key_and_path_only()
    {
        var missing = Path.Combine(Path.GetTempPath(), "edgerunner-no-such-password-" + Guid.NewGuid().ToString("N"));
        var ok = MqttSecrets.TryReadPassword(new MqttOptions { Username = "edge", Password = string.Empty, PasswordFile = missing }, out var password, out var error);
        Assert.False(ok);
        Assert.Equal(string.Empty, password);
        Assert.StartsWith("Mqtt:PasswordFile: '" + missing + "' cannot be read", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Tls_keys_are_known_to_the_key_check()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mqtt:Tls:Enabled"] = "true",
            ["Mqtt:Tls:CaFile"] = "/etc/ssl/ca.pem",
            ["Mqtt:Tls:AllowUntrusted"] = "false",
            ["Mqtt:PasswordCredential"] = "mqtt-password",
            ["Mqtt:EmbeddedBroker:Tls:Port"] = "8883",
            ["Mqtt:Tls:CAFiel"] = "/typo",
        }).Build();
        var errors = new List<string>();
        ConfigurationKeyChecker.CollectUnknownKeys(config.GetSection("Mqtt"), typeof(MqttOptions), errors);
        Assert.StartsWith("Mqtt:Tls:CAFiel: unknown key", Assert.Single(errors), StringComparison.Ordinal);
    }
}
