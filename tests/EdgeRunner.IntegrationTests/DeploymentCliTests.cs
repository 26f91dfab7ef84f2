using System.Globalization;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The operator's command line on a device: explicit verbs, usage errors instead of a second daemon,
/// the instance lock, check-config and status against real daemons and brokers.
/// </summary>
public sealed class DeploymentCliTests
{
    private const int ExUsage = 64;
    private const int ExUnavailable = 69;
    private const int ExConfig = 78;
    private const int NotRunning = 3;

    private static readonly TimeSpan Exit = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("help")]
    [InlineData("statsu")]
    [InlineData("--frobnicate")]
    [InlineData("status", "--bogus")]
    [InlineData("check-config", "extra-word")]
    [InlineData("run", "--Mqtt:Host")]
    public async Task Unknown_verbs_and_options_are_usage_errors_and_start_no_daemon(params string[] arguments)
    {
        await using var process = DaemonProcess.Start(arguments);

        Assert.Equal(ExUsage, await process.WaitForExitAsync(Exit, TestContext.Current.CancellationToken));
        Assert.Contains("usage: edgerunner [run]", process.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("MQTT", process.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Version_and_help_say_what_they_should()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var version = DaemonProcess.Start(["--version"]);
        Assert.Equal(0, await version.WaitForExitAsync(Exit, ct));
        Assert.Matches(@"^\d+\.\d+\.\d+", version.Stdout.Trim());

        await using var help = DaemonProcess.Start(["--help"]);
        Assert.Equal(0, await help.WaitForExitAsync(Exit, ct));
        Assert.Contains("A bare 'edgerunner' (no verb) runs the daemon", help.Stdout, StringComparison.Ordinal);
        foreach (var verb in new[] { "run", "check-config", "status", "inspect", "evaluate", "dump" })
        {
            Assert.Contains(verb, help.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Run_verb_keeps_command_line_overrides()
    {
        await using var daemon = DaemonProcess.Start(["run", "--Cameras:synthetic:Fsp=3"]);

        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(Exit, TestContext.Current.CancellationToken));
        Assert.Contains("Cameras:synthetic:Fsp: unknown key", daemon.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_config_loads_the_models_and_summarizes_the_configuration()
    {
        await using var check = DaemonProcess.Start(["check-config"]);

        Assert.Equal(0, await check.WaitForExitAsync(Exit, TestContext.Current.CancellationToken));
        var stdout = check.Stdout;
        Assert.Contains("appsettings.json: valid", stdout, StringComparison.Ordinal);
        Assert.Matches(@"shapes-detector\s+CPUExecutionProvider\s+\S+shapes-detector/model.onnx", stdout);
        Assert.Matches(@"vibration-lstm\s+CPUExecutionProvider", stdout);
        Assert.Matches(@"synthetic\s+Synthetic\s+model shapes-detector", stdout);
        Assert.Matches(@"pump-1\s+SimulatedVibration\s+model vibration-lstm", stdout);
        Assert.Contains("embedded broker on 127.0.0.1:1883, client id edgerunner-demo", stdout, StringComparison.Ordinal);
        Assert.Contains("edgerunner/demo/status", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_config_fails_on_what_only_loading_the_model_finds()
    {
        // Keys and files are fine; only loading the model shows its input does not match the preprocessing.
        var config = TestConfig.Write(new JsonObject
        {
            ["Models"] = new JsonObject { ["mobilenet"] = TestConfig.MobileNetModel(width: 320, height: 320) },
            ["Cameras"] = new JsonObject { ["c"] = new JsonObject { ["Model"] = "mobilenet" } },
        });
        try
        {
            await using var check = DaemonProcess.Start(["check-config", "--config", config]);

            Assert.Equal(ExConfig, await check.WaitForExitAsync(Exit, TestContext.Current.CancellationToken));
            Assert.Contains("produces [1,3,320,320]", check.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Fact]
    public async Task Second_daemon_for_the_same_identity_is_refused_before_it_touches_the_broker()
    {
        var ct = TestContext.Current.CancellationToken;
        using var runtime = new TempFolder();
        var port = FreePort.Next().ToString(CultureInfo.InvariantCulture);
        var environment = new Dictionary<string, string>
        {
            ["EDGERUNNER__Mqtt__EmbeddedBroker__Port"] = port,
            ["RUNTIME_DIRECTORY"] = runtime.Path,
        };
        await using var first = DaemonProcess.Start([], environment);
        await using var status = await MqttProbe.ConnectAsync(int.Parse(port, CultureInfo.InvariantCulture), "edgerunner/demo/status", TimeSpan.FromSeconds(60), ct);
        await status.WaitForAsync(m => m.Payload == "online", TimeSpan.FromSeconds(60), ct);

        await using var second = DaemonProcess.Start(["run"], environment);

        Assert.Equal(ExUnavailable, await second.WaitForExitAsync(Exit, ct));
        Assert.Contains($"another EdgeRunner daemon (PID {first.Id}) already runs", second.Stderr, StringComparison.Ordinal);
        Assert.Contains("Mqtt:ClientId", second.Stderr, StringComparison.Ordinal);
        // The first one kept its session: it never went offline, and it is still online for a new subscriber.
        Assert.DoesNotContain(status.Seen, m => m.Payload == "offline");
        await using var late = await MqttProbe.ConnectAsync(int.Parse(port, CultureInfo.InvariantCulture), "edgerunner/demo/status", TimeSpan.FromSeconds(5), ct);
        Assert.Equal("online", (await late.WaitForAsync(_ => true, TimeSpan.FromSeconds(10), ct)).Payload);

        // On a clean stop the lock is released and its files removed.
        first.Terminate();
        Assert.Equal(0, await first.WaitForExitAsync(Exit, ct));
        Assert.Empty(Directory.EnumerateFileSystemEntries(runtime.Path));
    }

    [Fact]
    public async Task Status_reports_online_then_offline_and_exits_0_then_3()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("status", ct);
        var config = scenario.WriteConfig(new JsonObject
        {
            ["Models"] = new JsonObject { ["m"] = TestConfig.BundledModel("vibration-lstm") },
            ["Sensors"] = new JsonObject { ["pump"] = new JsonObject { ["Model"] = "m", ["Source"] = new JsonObject { ["Kind"] = "SimulatedVibration" } } },
        });

        // Never published on this broker: absent, not running.
        await using (var absent = DaemonProcess.Start(["status", "--config", config]))
        {
            Assert.Equal(NotRunning, await absent.WaitForExitAsync(Exit, ct));
            Assert.Contains($"edgerunner/{scenario.DeviceId} on 127.0.0.1:", absent.Stdout, StringComparison.Ordinal);
            Assert.Contains("absent", absent.Stdout, StringComparison.Ordinal);
        }

        var daemon = scenario.StartProcess(["--config", config]);
        var probe = await scenario.ProbeAsync("#", ct);
        await probe.WaitForAsync(m => m.Topic == scenario.Topic("sensors/pump/result"), TimeSpan.FromSeconds(60), ct);

        await using (var online = DaemonProcess.Start(["status", "--config", config]))
        {
            Assert.Equal(0, await online.WaitForExitAsync(Exit, ct));
            Assert.Contains($"edgerunner/{scenario.DeviceId} on 127.0.0.1:{scenario.Port}: online", online.Stdout, StringComparison.Ordinal);
        }

        daemon.Terminate();
        Assert.Equal(0, await daemon.WaitForExitAsync(Exit, ct));
        await using (var offline = DaemonProcess.Start(["status", "--config", config]))
        {
            Assert.Equal(NotRunning, await offline.WaitForExitAsync(Exit, ct));
            Assert.Contains(": offline", offline.Stdout, StringComparison.Ordinal);
        }

        // The status reader used its own client id: the daemon connected exactly once.
        Assert.Contains("(connection #1,", daemon.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("(connection #2,", daemon.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_without_a_broker_exits_69()
    {
        await using var status = DaemonProcess.Start(["status", $"--Mqtt:EmbeddedBroker:Port={FreePort.Next()}"]);

        Assert.Equal(ExUnavailable, await status.WaitForExitAsync(Exit, TestContext.Current.CancellationToken));
        Assert.Contains("no MQTT broker answers at 127.0.0.1:", status.Stderr, StringComparison.Ordinal);
    }
}
