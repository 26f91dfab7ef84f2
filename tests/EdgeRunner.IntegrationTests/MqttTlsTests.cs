using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// TLS to a real mosquitto with a TLS listener (certificates made by openssl for the test): the right CA connects,
/// mutual TLS works, a rotated client certificate is used from the next reconnect on; a wrong CA, a wrong host
/// name and an expired client certificate each fail with one clear line and keep being retried. Probes subscribe
/// on the broker's plain listener.
/// </summary>
public sealed class MqttTlsTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task With_the_right_CA_the_daemon_connects_over_TLS_and_its_results_arrive()
    {
        var ct = TestContext.Current.CancellationToken;
        using var certificates = await TestCertificates.CreateAsync(ct);
        await using var broker = await MosquittoBroker.StartAsync(ct, tls: new MosquittoTls(certificates.Pem("ca"), certificates.Pem("server"), certificates.Key("server")));
        var deviceId = NewDeviceId();
        await using var probe = await MqttProbe.ConnectAsync(broker.Port, $"edgerunner/{deviceId}/sensors/#", TimeSpan.FromSeconds(5), ct);
        var logs = new CapturingLoggerProvider();
        using var host = await StartHostAsync(deviceId, broker.TlsPort!.Value, new JsonObject { ["Enabled"] = true, ["CaFile"] = certificates.Pem("ca") }, logs, ct, withSensor: true);

        await probe.WaitForAsync(m => m.Topic.EndsWith("/pump/result", StringComparison.Ordinal), Within, ct);
        Assert.True(host.Services.GetRequiredService<MqttPublisher>().Connects >= 1);
        Assert.DoesNotContain(logs.Entries, l => l.Message.StartsWith("MQTT TLS connect", StringComparison.Ordinal));
        await host.StopAsync(ct);
    }

    [Theory]
    [InlineData("wrong CA", "unknown CA: the broker's certificate 'CN=localhost'")]
    [InlineData("no CA file, a private CA", "is not signed by a CA in the system's trust store (set Mqtt:Tls:CaFile for a private CA)")]
    [InlineData("wrong host name", "name mismatch: the broker's certificate 'CN=broker.invalid'")]
    [InlineData("expired client certificate", "the client certificate 'CN=edgerunner-expired'")]
    public async Task A_TLS_failure_is_logged_as_one_clear_line_and_the_connect_is_retried(string failure, string expected)
    {
        var ct = TestContext.Current.CancellationToken;
        using var certificates = await TestCertificates.CreateAsync(ct);
        var server = failure == "wrong host name" ? "wrong-name-server" : "server";
        await using var broker = await MosquittoBroker.StartAsync(
            ct,
            tls: new MosquittoTls(certificates.Pem("ca"), certificates.Pem(server), certificates.Key(server), RequireCertificate: failure == "expired client certificate"));
        var tls = new JsonObject { ["Enabled"] = true, ["CaFile"] = certificates.Pem(failure == "wrong CA" ? "other-ca" : "ca") };
        if (failure == "no CA file, a private CA")
        {
            tls.Remove("CaFile");
        }

        if (failure == "expired client certificate")
        {
            tls["CertFile"] = certificates.Pem("expired-client");
            tls["KeyFile"] = certificates.Key("expired-client");
        }

        var logs = new CapturingLoggerProvider();
        using var host = await StartHostAsync(NewDeviceId(), broker.TlsPort!.Value, tls, logs, ct);
        var publisher = host.Services.GetRequiredService<MqttPublisher>();

        // Retried with backoff: the same clear line at every attempt, never a connection.
        await WaitUntilAsync(() => TlsFailures(logs).Count >= 2, ct);
        Assert.Equal(0, publisher.Connects);
        Assert.All(TlsFailures(logs), l => Assert.Contains(expected, l.Message, StringComparison.Ordinal));
        if (failure == "expired client certificate")
        {
            Assert.All(TlsFailures(logs), l => Assert.Contains("has expired", l.Message, StringComparison.Ordinal));
        }

        await host.StopAsync(ct);
    }

    [Fact]
    public async Task Mutual_TLS_works_and_a_rotated_client_certificate_is_used_from_the_next_reconnect_on()
    {
        var ct = TestContext.Current.CancellationToken;
        using var certificates = await TestCertificates.CreateAsync(ct);
        // The daemon's own copies, replaced in place as a certificate renewal would.
        var certFile = Path.Combine(certificates.Folder, "device.pem");
        var keyFile = Path.Combine(certificates.Folder, "device.key");
        File.Copy(certificates.Pem("client"), certFile);
        File.Copy(certificates.Key("client"), keyFile);
        var broker = await MosquittoBroker.StartAsync(ct, tls: new MosquittoTls(certificates.Pem("ca"), certificates.Pem("server"), certificates.Key("server"), RequireCertificate: true));
        try
        {
            var deviceId = NewDeviceId();
            await using var probe = await MqttProbe.ConnectAsync(broker.Port, $"edgerunner/{deviceId}/sensors/#", TimeSpan.FromSeconds(5), ct);
            var logs = new CapturingLoggerProvider();
            var tls = new JsonObject { ["Enabled"] = true, ["CaFile"] = certificates.Pem("ca"), ["CertFile"] = certFile, ["KeyFile"] = keyFile };
            using var host = await StartHostAsync(deviceId, broker.TlsPort!.Value, tls, logs, ct, withSensor: true);
            var publisher = host.Services.GetRequiredService<MqttPublisher>();
            await probe.WaitForAsync(m => m.Topic.EndsWith("/pump/result", StringComparison.Ordinal), Within, ct);

            // Rotation: the device gets a certificate of the new CA, and the broker trusts only that CA from its restart on.
            File.Copy(certificates.Pem("other-client"), certFile, overwrite: true);
            File.Copy(certificates.Key("other-client"), keyFile, overwrite: true);
            var (port, tlsPort) = (broker.Port, broker.TlsPort.Value);
            await broker.DisposeAsync();
            broker = await MosquittoBroker.StartAsync(ct, port, tls: new MosquittoTls(certificates.Pem("other-ca"), certificates.Pem("server"), certificates.Key("server"), RequireCertificate: true, Port: tlsPort));
            await using var probeAfter = await MqttProbe.ConnectAsync(broker.Port, $"edgerunner/{deviceId}/sensors/#", TimeSpan.FromSeconds(5), ct);

            // Only the new certificate gets through this broker: a result after the reconnect proves it was used.
            var connects = publisher.Connects;
            try
            {
                await WaitUntilAsync(() => publisher.Connects > connects, ct);
                await probeAfter.WaitForAsync(m => m.Topic.EndsWith("/pump/result", StringComparison.Ordinal), Within, ct);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                Assert.Fail($"No result after the rotation ({publisher.Connects} connects): {string.Join(" | ", logs.Entries.Where(l => l.Category.Contains("Mqtt", StringComparison.Ordinal)).Select(l => l.Message))}\nmosquitto: {broker.Log}");
            }

            Assert.Empty(TlsFailures(logs));
            await host.StopAsync(ct);
        }
        finally
        {
            await broker.DisposeAsync();
        }
    }

    [Fact]
    public async Task AllowUntrusted_connects_to_any_certificate_and_warns_at_every_connect()
    {
        var ct = TestContext.Current.CancellationToken;
        using var certificates = await TestCertificates.CreateAsync(ct);
        // A certificate for another name, of a CA the daemon is not told about: refused twice over without the waiver.
        await using var broker = await MosquittoBroker.StartAsync(ct, tls: new MosquittoTls(certificates.Pem("ca"), certificates.Pem("wrong-name-server"), certificates.Key("wrong-name-server")));
        var logs = new CapturingLoggerProvider();
        using var host = await StartHostAsync(NewDeviceId(), broker.TlsPort!.Value, new JsonObject { ["Enabled"] = true, ["AllowUntrusted"] = true }, logs, ct);
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        await WaitUntilAsync(() => publisher.Connects >= 1, ct);
        Assert.Single(logs.Entries, l => l.Level == LogLevel.Warning && l.Message.Contains("Mqtt:Tls:AllowUntrusted", StringComparison.Ordinal));
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task TLS_configuration_mistakes_stop_startup_naming_the_key()
    {
        var ct = TestContext.Current.CancellationToken;
        using var certificates = await TestCertificates.CreateAsync(ct);
        var missing = Path.Combine(certificates.Folder, "missing.pem");
        (JsonObject Mqtt, string Key)[] cases =
        [
            (new JsonObject { ["Host"] = "127.0.0.1", ["Tls"] = new JsonObject { ["AllowUntrusted"] = true } }, "Mqtt:Tls:AllowUntrusted: is set but Mqtt:Tls:Enabled is false"),
            (new JsonObject { ["Host"] = "127.0.0.1", ["Tls"] = new JsonObject { ["Enabled"] = true, ["CaFile"] = missing } }, "Mqtt:Tls:CaFile: file"),
            (new JsonObject { ["Host"] = "127.0.0.1", ["Tls"] = new JsonObject { ["Enabled"] = true, ["CaFile"] = certificates.Key("ca") } }, "Mqtt:Tls:CaFile: "),
            (new JsonObject { ["Host"] = "127.0.0.1", ["Tls"] = new JsonObject { ["Enabled"] = true, ["CertFile"] = certificates.Pem("client") } }, "Mqtt:Tls:KeyFile: CertFile and KeyFile go together"),
            (new JsonObject { ["Host"] = "127.0.0.1", ["Tls"] = new JsonObject { ["Enabled"] = true, ["CertFile"] = certificates.Pem("client"), ["KeyFile"] = certificates.Key("other-client") } }, "Mqtt:Tls:KeyFile: "),
            (new JsonObject { ["Tls"] = new JsonObject { ["Enabled"] = true } }, "Mqtt:Tls:Enabled: applies to an external broker"),
            (new JsonObject { ["Host"] = "127.0.0.1", ["Password"] = "x", ["PasswordFile"] = certificates.Pem("ca") }, "Mqtt:Password: set only one"),
            (new JsonObject { ["Host"] = "127.0.0.1", ["PasswordCredential"] = "../etc/passwd" }, "Mqtt:PasswordCredential: must be a credential name"),
            (new JsonObject { ["EmbeddedBroker"] = new JsonObject { ["Tls"] = new JsonObject { ["Port"] = FreePort.Next(), ["CertFile"] = certificates.Pem("server"), ["KeyFile"] = certificates.Key("client") } } }, "Mqtt:EmbeddedBroker:Tls:KeyFile: "),
        ];
        foreach (var (mqtt, key) in cases)
        {
            var configuration = EdgeRunnerHost.BuildConfiguration(TestConfig.Write(new JsonObject { ["Device"] = new JsonObject { ["Id"] = NewDeviceId() }, ["Mqtt"] = mqtt }), []);
            using var host = EdgeRunnerHost.Build(configuration);
            var errors = EdgeRunnerHost.FindConfigurationErrors(configuration, host.Services);
            Assert.True(errors.Any(e => e.Contains(key, StringComparison.Ordinal)), $"expected '{key}' among: {string.Join(" | ", errors)}");
        }
    }

    [Fact]
    public async Task The_embedded_broker_TLS_listener_serves_a_mosquitto_sub_that_checks_it_with_the_CA()
    {
        var ct = TestContext.Current.CancellationToken;
        using var certificates = await TestCertificates.CreateAsync(ct);
        var tlsPort = FreePort.Next();
        await using var scenario = DaemonScenario.WithEmbeddedBroker("tls-embedded");
        var host = await scenario.StartHostAsync(
            scenario.WriteConfig(new JsonObject(), embeddedBroker: new JsonObject { ["Tls"] = new JsonObject { ["Port"] = tlsPort, ["CertFile"] = certificates.Pem("server"), ["KeyFile"] = certificates.Key("server") } }),
            ct);
        await WaitUntilAsync(() => host.Services.GetRequiredService<MqttPublisher>().Connects >= 1, ct);

        // MQTT 3.1.1, no client id, certificate checked against the CA and the name localhost: the retained status arrives.
        var sub = await RunAsync(
            "mosquitto_sub",
            ["-h", "localhost", "-p", tlsPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--cafile", certificates.Pem("ca"), "-t", scenario.Topic("status"), "-C", "1", "-W", "20"],
            ct);
        Assert.True(sub.ExitCode == 0, $"mosquitto_sub failed ({sub.ExitCode}): {sub.Output}");
        Assert.Equal("online", sub.Output.Trim());

        // With another CA it refuses the listener's certificate.
        var refused = await RunAsync(
            "mosquitto_sub",
            ["-h", "localhost", "-p", tlsPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--cafile", certificates.Pem("other-ca"), "-t", scenario.Topic("status"), "-C", "1", "-W", "10"],
            ct);
        Assert.NotEqual(0, refused.ExitCode);
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task A_wrong_password_is_refused_with_a_line_that_never_contains_it()
    {
        var ct = TestContext.Current.CancellationToken;
        using var certificates = await TestCertificates.CreateAsync(ct);
        const string Wrong = "wrong-Secret-5c1e9";
        var passwordFile = Path.Combine(certificates.Folder, "password");
        await File.WriteAllTextAsync(passwordFile, Wrong + "\n", ct);
        await using var broker = await MosquittoBroker.StartAsync(ct, tls: new MosquittoTls(certificates.Pem("ca"), certificates.Pem("server"), certificates.Key("server"), PasswordFile: await MosquittoUsersAsync(certificates, ct)));
        var logs = new CapturingLoggerProvider();
        var deviceId = NewDeviceId();
        using var host = await StartHostAsync(deviceId, broker.TlsPort!.Value, new JsonObject { ["Enabled"] = true, ["CaFile"] = certificates.Pem("ca") }, logs, ct, mqtt: new JsonObject { ["Username"] = "edge", ["PasswordFile"] = passwordFile });
        var publisher = host.Services.GetRequiredService<MqttPublisher>();

        await WaitUntilAsync(() => logs.Entries.Count(l => l.Message.StartsWith("MQTT connect to", StringComparison.Ordinal)) >= 2, ct);
        Assert.Equal(0, publisher.Connects);
        Assert.Contains(logs.Entries, l => l.Message.Contains("BadUserNameOrPassword", StringComparison.Ordinal) || l.Message.Contains("NotAuthorized", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, l => l.Message.Contains(Wrong, StringComparison.Ordinal) || (l.Exception?.ToString().Contains(Wrong, StringComparison.Ordinal) ?? false));
        await host.StopAsync(ct);
    }

    [Fact]
    public async Task The_daemon_reads_its_password_from_the_systemd_credential_and_never_prints_it()
    {
        var ct = TestContext.Current.CancellationToken;
        using var certificates = await TestCertificates.CreateAsync(ct);
        await using var broker = await MosquittoBroker.StartAsync(ct, tls: new MosquittoTls(certificates.Pem("ca"), certificates.Pem("server"), certificates.Key("server"), PasswordFile: await MosquittoUsersAsync(certificates, ct)));
        var deviceId = NewDeviceId();
        await using var probe = await MqttProbe.ConnectAsync(broker.Port, $"edgerunner/{deviceId}/status", TimeSpan.FromSeconds(5), ct);
        // As systemd's LoadCredential= leaves it: a private folder named by $CREDENTIALS_DIRECTORY.
        var credentials = Directory.CreateDirectory(Path.Combine(certificates.Folder, "credentials")).FullName;
        await File.WriteAllTextAsync(Path.Combine(credentials, "mqtt-password"), Password + "\n", ct);
        var config = TestConfig.Write(new JsonObject
        {
            ["Device"] = new JsonObject { ["Id"] = deviceId },
            ["Mqtt"] = new JsonObject
            {
                ["Host"] = "localhost",
                ["Port"] = broker.TlsPort!.Value,
                ["Username"] = "edge",
                ["PasswordCredential"] = "mqtt-password",
                ["Tls"] = new JsonObject { ["Enabled"] = true, ["CaFile"] = certificates.Pem("ca") },
            },
        });
        await using var daemon = DaemonProcess.Start(["run", "--config", config], new Dictionary<string, string> { [MqttSecrets.CredentialsDirectoryVariable] = credentials });

        var status = await probe.WaitForAsync(m => m.Payload == "online", Within, ct);
        Assert.True(status.Retain);
        daemon.Terminate();
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));
        Assert.DoesNotContain(Password, daemon.Stdout + daemon.Stderr, StringComparison.Ordinal);
    }

    private const string Password = "right-Secret-83d0a";

    // A mosquitto_passwd file with the user 'edge' and Password.
    private static async Task<string> MosquittoUsersAsync(TestCertificates certificates, CancellationToken cancellationToken)
    {
        var file = Path.Combine(certificates.Folder, "mosquitto-users");
        var result = await RunAsync("mosquitto_passwd", ["-b", "-c", file, "edge", Password], cancellationToken);
        Assert.True(result.ExitCode == 0, $"mosquitto_passwd failed: {result.Output}");
        return file;
    }

    private static string NewDeviceId() => $"tls-{Guid.NewGuid().ToString("N")[..8]}";

    private static List<LogEntry> TlsFailures(CapturingLoggerProvider logs) =>
        [.. logs.Entries.Where(l => l.Message.StartsWith("MQTT TLS connect to", StringComparison.Ordinal))];

    private static async Task<IHost> StartHostAsync(string deviceId, int port, JsonObject tls, CapturingLoggerProvider logs, CancellationToken cancellationToken, bool withSensor = false, JsonObject? mqtt = null)
    {
        // Quick retries: the failures are counted by attempts.
        var mqttSection = new JsonObject { ["Host"] = "127.0.0.1", ["Port"] = port, ["Tls"] = tls, ["ReconnectMinDelaySeconds"] = 0.2, ["ReconnectMaxDelaySeconds"] = 1 };
        foreach (var (key, value) in mqtt ?? [])
        {
            mqttSection[key] = value?.DeepClone();
        }

        var sections = new JsonObject
        {
            ["Device"] = new JsonObject { ["Id"] = deviceId },
            ["Mqtt"] = mqttSection,
        };
        if (withSensor)
        {
            sections["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") };
            sections["Sensors"] = new JsonObject { ["pump"] = TestConfig.SimulatedVibration(7) };
        }

        var configuration = EdgeRunnerHost.BuildConfiguration(TestConfig.Write(sections), []);
        var host = EdgeRunnerHost.Build(configuration, services => services.AddSingleton<ILoggerProvider>(logs));
        try
        {
            Assert.Empty(EdgeRunnerHost.FindConfigurationErrors(configuration, host.Services));
            await host.StartAsync(cancellationToken);
            return host;
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string executable, string[] arguments, CancellationToken cancellationToken)
    {
        var start = new System.Diagnostics.ProcessStartInfo(executable, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException($"{executable} did not start.");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, await output + await error);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Within);
        while (!condition())
        {
            await Task.Delay(50, timeout.Token);
        }
    }
}
