using System.Text;
using EdgeRunner.Service;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Options;

namespace EdgeRunner.UnitTests;

/// <summary>The embedded broker's decisions: who may connect, publish and subscribe.</summary>
public sealed class EmbeddedBrokerAclTests
{
    private static readonly MqttTopics Topics = new("edgerunner", "dev1");

    private static EmbeddedBrokerEndpoint Endpoint(string bindAddress = "127.0.0.1", string clientId = "") =>
        new(Options.Create(new MqttOptions { ClientId = clientId, EmbeddedBroker = new EmbeddedBrokerOptions { BindAddress = bindAddress, Port = 1999 } }), Options.Create(new DeviceOptions { Id = "dev1" }));

    private static EmbeddedBrokerAcl AclWithDaemonFilters(params string[] filters)
    {
        var acl = new EmbeddedBrokerAcl(Topics);
        foreach (var filter in filters)
        {
            acl.AddDaemonFilter(filter);
        }

        return acl;
    }

    [Theory]
    [InlineData("edgerunner/dev1/status")]
    [InlineData("edgerunner/dev1/vision/front/result")]
    [InlineData("edgerunner/dev1/vision/front/state")]
    [InlineData("edgerunner/dev1/vision/front/snapshot")]
    [InlineData("edgerunner/dev1/sensors/pump-1/result")]
    [InlineData("edgerunner/dev1/sensors/pump-1/state")]
    [InlineData("edgerunner/dev1/sensors/pump-1/event")]
    public void The_daemons_own_topics_are_refused_even_under_its_command_filter(string topic)
    {
        // sensors/# is the daemon's command subscription when dynamic streams exist: it covers results too.
        var acl = AclWithDaemonFilters("edgerunner/dev1/sensors/#", "edgerunner/dev1/#");

        var reason = acl.WhyNotPublish(topic, retain: true);

        Assert.NotNull(reason);
        Assert.Contains("daemon's own topic", reason, StringComparison.Ordinal);
        Assert.NotNull(acl.WhyNotPublish(topic, retain: false));
    }

    [Theory]
    [InlineData("edgerunner/dev1/sensors/+/reset", "edgerunner/dev1/sensors/pump-1/reset")]
    [InlineData("edgerunner/dev1/sensors/#", "edgerunner/dev1/sensors/pump-1/reset")]
    [InlineData("edgerunner/dev1/sensors/#", "edgerunner/dev1/sensors/plant/a/reset")]
    public void A_reset_command_under_the_daemons_command_filter_is_allowed(string daemonFilter, string topic)
    {
        var acl = AclWithDaemonFilters(daemonFilter);

        Assert.Null(acl.WhyNotPublish(topic, retain: false));
    }

    [Fact]
    public void A_retained_command_is_refused()
    {
        var acl = AclWithDaemonFilters("edgerunner/dev1/sensors/+/reset");

        Assert.Contains("must not be retained", acl.WhyNotPublish("edgerunner/dev1/sensors/pump-1/reset", retain: true), StringComparison.Ordinal);
    }

    [Fact]
    public void Nothing_is_writable_before_the_daemon_subscribes_and_ingest_topics_after()
    {
        var acl = new EmbeddedBrokerAcl(Topics);
        Assert.Contains("not an ingest or command topic", acl.WhyNotPublish("plant/pump-1/vibration", retain: false), StringComparison.Ordinal);
        Assert.NotNull(acl.WhyNotPublish("edgerunner/dev1/sensors/pump-1/reset", retain: false));

        acl.AddDaemonFilter("plant/+/vibration");
        acl.AddDaemonFilter("plant/+/vibration");

        Assert.Equal(new[] { "plant/+/vibration" }, acl.DaemonFilters);
        Assert.Null(acl.WhyNotPublish("plant/pump-1/vibration", retain: false));
        Assert.Null(acl.WhyNotPublish("plant/pump-1/vibration", retain: true));
        Assert.NotNull(acl.WhyNotPublish("plant/pump-1/temperature", retain: false));
        Assert.NotNull(acl.WhyNotPublish("plant/pump-1/vibration/x", retain: false));
        Assert.NotNull(acl.WhyNotPublish("elsewhere", retain: false));
    }

    [Fact]
    public void Dollar_topics_are_refused_for_publishing_and_subscribing()
    {
        var acl = AclWithDaemonFilters("#");

        Assert.Contains("reserved", acl.WhyNotPublish("$SYS/broker/uptime", retain: false), StringComparison.Ordinal);
        Assert.Contains("reserved", EmbeddedBrokerAcl.WhyNotSubscribe("$SYS/#"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("#")]
    [InlineData("edgerunner/#")]
    [InlineData("edgerunner/dev1/+/+/result")]
    [InlineData("edgerunner/dev1/status")]
    public void Any_other_filter_may_be_read(string filter) => Assert.Null(EmbeddedBrokerAcl.WhyNotSubscribe(filter));

    [Fact]
    public void The_daemon_is_known_by_its_secret_and_its_client_id_is_reserved_to_it()
    {
        var endpoint = Endpoint();
        var secret = Encoding.UTF8.GetBytes(endpoint.DaemonPassword);

        Assert.Equal("edgerunner-dev1", endpoint.DaemonClientId);
        Assert.Equal(ConnectVerdict.Daemon, EmbeddedBrokerAcl.DecideConnect(endpoint, null, "edgerunner-dev1", EmbeddedBrokerEndpoint.DaemonUsername, secret));
        Assert.Equal(ConnectVerdict.ReservedClientId, EmbeddedBrokerAcl.DecideConnect(endpoint, null, "edgerunner-dev1", null, default));
        Assert.Equal(ConnectVerdict.ReservedClientId, EmbeddedBrokerAcl.DecideConnect(endpoint, null, "edgerunner-dev1", EmbeddedBrokerEndpoint.DaemonUsername, "guess"u8));
        Assert.Equal(ConnectVerdict.ReservedClientId, EmbeddedBrokerAcl.DecideConnect(endpoint, null, "edgerunner-dev1", "someone", secret));
        Assert.Equal(ConnectVerdict.Client, EmbeddedBrokerAcl.DecideConnect(endpoint, null, "watcher", null, default));
        Assert.Equal(ConnectVerdict.Client, EmbeddedBrokerAcl.DecideConnect(endpoint, null, "watcher", EmbeddedBrokerEndpoint.DaemonUsername, "guess"u8));
    }

    [Fact]
    public void A_configured_client_id_is_the_reserved_one_and_each_process_has_its_own_secret()
    {
        var first = Endpoint(clientId: "cell-7");
        var second = Endpoint(clientId: "cell-7");

        Assert.Equal("cell-7", first.DaemonClientId);
        Assert.NotEqual(first.DaemonPassword, second.DaemonPassword);
        Assert.Equal(ConnectVerdict.ReservedClientId, EmbeddedBrokerAcl.DecideConnect(first, null, "cell-7", EmbeddedBrokerEndpoint.DaemonUsername, Encoding.UTF8.GetBytes(second.DaemonPassword)));
    }

    [Fact]
    public void Configured_credentials_are_required_from_every_other_client()
    {
        var endpoint = Endpoint("0.0.0.0");
        var required = new EmbeddedBrokerCredentials("plant", "s3cret");

        Assert.Equal(ConnectVerdict.BadCredentials, EmbeddedBrokerAcl.DecideConnect(endpoint, required, "watcher", null, default));
        Assert.Equal(ConnectVerdict.BadCredentials, EmbeddedBrokerAcl.DecideConnect(endpoint, required, "watcher", "plant", "wrong"u8));
        Assert.Equal(ConnectVerdict.BadCredentials, EmbeddedBrokerAcl.DecideConnect(endpoint, required, "watcher", "Plant", "s3cret"u8));
        Assert.Equal(ConnectVerdict.BadCredentials, EmbeddedBrokerAcl.DecideConnect(endpoint, required, "watcher", "plant", "s3cret!"u8));
        Assert.Equal(ConnectVerdict.Client, EmbeddedBrokerAcl.DecideConnect(endpoint, required, "watcher", "plant", "s3cret"u8));
        // The right credentials do not open the daemon's client id.
        Assert.Equal(ConnectVerdict.ReservedClientId, EmbeddedBrokerAcl.DecideConnect(endpoint, required, "edgerunner-dev1", "plant", "s3cret"u8));
        Assert.Equal(ConnectVerdict.Daemon, EmbeddedBrokerAcl.DecideConnect(endpoint, required, "edgerunner-dev1", EmbeddedBrokerEndpoint.DaemonUsername, Encoding.UTF8.GetBytes(endpoint.DaemonPassword)));
    }

    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("0.0.0.0", "127.0.0.1")]
    [InlineData("::", "::1")]
    [InlineData("::1", "::1")]
    [InlineData("192.168.7.20", "192.168.7.20")]
    [InlineData("127.0.0.2", "127.0.0.2")]
    public void The_daemon_dials_loopback_when_the_broker_listens_there_else_the_bound_address(string bindAddress, string dialed)
    {
        Assert.Equal(dialed, EmbeddedBrokerEndpoint.DialAddress(bindAddress));
        Assert.Equal(dialed, Endpoint(bindAddress).Host);
    }

    [Fact]
    public void The_secret_is_handed_out_only_while_the_embedded_broker_listens()
    {
        var endpoint = Endpoint();
        Assert.Null(endpoint.DaemonCredentials);

        endpoint.MarkListening(true);
        var credentials = endpoint.DaemonCredentials;
        Assert.NotNull(credentials);
        Assert.Equal(EmbeddedBrokerEndpoint.DaemonUsername, credentials.Value.Username);
        Assert.Equal(endpoint.DaemonPassword, credentials.Value.Password);

        endpoint.MarkListening(false);
        Assert.Null(endpoint.DaemonCredentials);
    }

    [Fact]
    public void A_password_file_is_read_and_an_empty_one_stops_startup_naming_the_key()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "from-file\nignored\n");
            var credentials = EmbeddedBrokerCredentials.FromOptions(new EmbeddedBrokerOptions { Username = "plant", PasswordFile = file });
            Assert.NotNull(credentials);
            Assert.True(credentials.Matches("plant", "from-file"u8));
            Assert.False(credentials.Matches("plant", "ignored"u8));

            File.WriteAllText(file, "\n");
            var ex = Assert.Throws<StartupException>(() => EmbeddedBrokerCredentials.FromOptions(new EmbeddedBrokerOptions { Username = "plant", PasswordFile = file }));
            Assert.Equal(StartupException.ConfigError, ex.ExitCode);
            Assert.StartsWith("Mqtt:EmbeddedBroker:PasswordFile:", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }

        Assert.Null(EmbeddedBrokerCredentials.FromOptions(new EmbeddedBrokerOptions()));
    }

    [Theory]
    [InlineData("0.0.0.0", "", "", "Mqtt:EmbeddedBroker:Username: is required when Mqtt:EmbeddedBroker:BindAddress is not a loopback address (got '0.0.0.0')")]
    [InlineData("192.168.7.20", "", "", "Mqtt:EmbeddedBroker:Username: is required when")]
    [InlineData("::", "", "", "Mqtt:EmbeddedBroker:Username: is required when")]
    [InlineData("0.0.0.0", "plant", "", "Mqtt:EmbeddedBroker:Password: is required with Mqtt:EmbeddedBroker:Username")]
    [InlineData("127.0.0.1", "", "pw", "Mqtt:EmbeddedBroker:Username: is required when a Password")]
    public void Credentials_are_validated_naming_the_key(string bindAddress, string username, string password, string expected)
    {
        var options = new MqttOptions { EmbeddedBroker = new EmbeddedBrokerOptions { BindAddress = bindAddress, Username = username, Password = password } };

        var result = new MqttOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains(result.Failures, f => f.StartsWith(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("127.0.0.1", "", "")]
    [InlineData("::1", "", "")]
    [InlineData("0.0.0.0", "plant", "s3cret")]
    [InlineData("127.0.0.1", "plant", "s3cret")]
    public void Loopback_without_credentials_and_anything_with_them_is_valid(string bindAddress, string username, string password)
    {
        var options = new MqttOptions { EmbeddedBroker = new EmbeddedBrokerOptions { BindAddress = bindAddress, Username = username, Password = password } };

        Assert.True(new MqttOptionsValidator().Validate(null, options).Succeeded);
    }
}
