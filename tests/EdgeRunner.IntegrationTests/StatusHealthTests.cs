using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// <c>edgerunner status</c> prints the daemon's last health message (rates, latency percentiles, providers, CPU,
/// RSS) beside its availability, on a plain broker and on a TLS-only broker reached with the daemon's own
/// <c>Mqtt:Tls</c> settings (certificates made by openssl for the test); a CA that does not sign the broker's
/// certificate is refused with the reason.
/// </summary>
public sealed class StatusHealthTests
{
    private const int ExUnavailable = 69;
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Status_prints_the_last_health_message_of_a_running_daemon()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("status-health", ct);
        var config = scenario.WriteConfig(Sections());
        scenario.StartProcess(["--config", config]);
        var probe = await scenario.ProbeAsync("health", ct);
        await probe.WaitForAsync(m => m.Payload.Contains("\"pump\"", StringComparison.Ordinal) && m.Payload.Contains("\"yard\"", StringComparison.Ordinal), Within, ct);

        await using var status = DaemonProcess.Start(["status", "--config", config]);
        Assert.Equal(0, await status.WaitForExitAsync(Within, ct));
        var lines = status.Stdout.Split('\n');
        Assert.Contains(lines, l => l.Contains($"edgerunner/{scenario.DeviceId} on 127.0.0.1:{scenario.Port}: online", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("health at ", StringComparison.Ordinal) && l.Contains("% of a core", StringComparison.Ordinal) && l.Contains("MiB", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("MQTT connected: ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("yard ", StringComparison.Ordinal) && l.Contains("detector", StringComparison.Ordinal) && l.Contains("CPUExecutionProvider", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("pump ", StringComparison.Ordinal) && l.Contains("lstm", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Status_reads_a_tls_broker_with_the_daemons_tls_settings_and_names_a_wrong_ca()
    {
        var ct = TestContext.Current.CancellationToken;
        using var certificates = await TestCertificates.CreateAsync(ct);
        await using var broker = await MosquittoBroker.StartAsync(ct, tls: new MosquittoTls(certificates.Pem("ca"), certificates.Pem("server"), certificates.Key("server")));
        var deviceId = $"status-tls-{Guid.NewGuid().ToString("N")[..8]}";
        string Config(string ca)
        {
            var sections = Sections();
            sections["Device"] = new JsonObject { ["Id"] = deviceId };
            sections["Mqtt"] = new JsonObject
            {
                ["Host"] = "127.0.0.1",
                ["Port"] = broker.TlsPort!.Value,
                ["Tls"] = new JsonObject { ["Enabled"] = true, ["CaFile"] = certificates.Pem(ca) },
            };
            return TestConfig.Write(sections);
        }

        var config = Config("ca");
        await using var daemon = DaemonProcess.Start(["--config", config]);
        // The probe on the broker's plain listener: the daemon itself speaks TLS only.
        await using var probe = await MqttProbe.ConnectAsync(broker.Port, $"edgerunner/{deviceId}/health", TimeSpan.FromSeconds(5), ct);
        await probe.WaitForAsync(m => m.Payload.Contains("\"pump\"", StringComparison.Ordinal), Within, ct);

        await using (var status = DaemonProcess.Start(["status", "--config", config]))
        {
            Assert.Equal(0, await status.WaitForExitAsync(Within, ct));
            Assert.Contains($"edgerunner/{deviceId} on 127.0.0.1:{broker.TlsPort}: online", status.Stdout, StringComparison.Ordinal);
            Assert.Contains("health at ", status.Stdout, StringComparison.Ordinal);
        }

        await using (var refused = DaemonProcess.Start(["status", "--config", Config("other-ca")]))
        {
            Assert.Equal(ExUnavailable, await refused.WaitForExitAsync(Within, ct));
            Assert.Contains($"no MQTT broker answers at 127.0.0.1:{broker.TlsPort}: TLS: unknown CA", refused.Stderr, StringComparison.Ordinal);
        }

        daemon.Terminate();
        Assert.Equal(0, await daemon.WaitForExitAsync(Within, ct));
    }

    private static JsonObject Sections() => new()
    {
        ["Metrics"] = new JsonObject { ["HealthIntervalSeconds"] = 1 },
        ["Models"] = new JsonObject
        {
            ["detector"] = TestConfig.BundledModel("shapes-detector"),
            ["lstm"] = TestConfig.BundledModel("vibration-lstm"),
        },
        ["Cameras"] = new JsonObject
        {
            ["yard"] = new JsonObject { ["Model"] = "detector", ["Fps"] = 5, ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 320, ["Height"] = 240, ["Seed"] = 3 } },
        },
        ["Sensors"] = new JsonObject { ["pump"] = TestConfig.SimulatedVibration(5) },
    };
}
