using System.Diagnostics;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Commands;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The daemon on a shared broker that enforces an ACL (mosquitto with a password file and an ACL file): the device's
/// user may use only its own topics, an operator may send it commands, a viewer may only read. Everything works for
/// the daemon, and a command from the viewer is never executed (the broker drops it; nothing is counted or answered).
/// </summary>
public sealed class CommandAclTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Under_an_acl_the_daemon_works_and_a_command_from_a_client_the_acl_forbids_is_never_executed()
    {
        var ct = TestContext.Current.CancellationToken;
        using var files = new TempFolder();
        await using var scenario = await DaemonScenario.StartAsync("acl", ct, auth: device => WriteAuth(files.Path, device));
        var host = await scenario.StartHostAsync(
            scenario.WriteConfig(
                new JsonObject
                {
                    ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
                    ["Sensors"] = new JsonObject { ["m1"] = TestConfig.SimulatedVibration(21) },
                },
                new JsonObject
                {
                    ["Username"] = "device",
                    ["Password"] = "device-secret",
                    ["Commands"] = new JsonObject { ["Allow"] = new JsonArray("reset") },
                }),
            ct);
        var commands = host.Services.GetRequiredService<CommandService>();
        await using var operatorClient = await CommandClient.ConnectAsync(scenario.Port, scenario.Topic("reply/operator"), ct, "operator", "operator-secret");
        await using var viewer = await CommandClient.ConnectAsync(scenario.Port, scenario.Topic("reply/viewer"), ct, "viewer", "viewer-secret");

        // The daemon works under its ACL: connected with its user, its command subscription granted, results and events out.
        await CommandTests.WaitUntilSubscribedAsync(host, ct);
        Assert.True(host.Services.GetRequiredService<MqttConnection>().IsConnected);
        await using var results = await MqttProbe.ConnectAsync(scenario.Port, scenario.Topic("sensors/m1/#"), TimeSpan.FromSeconds(5), ct, username: "viewer", password: "viewer-secret");
        await results.WaitForAsync(m => m.Topic == scenario.Topic("sensors/m1/result"), Wait, ct);

        // The viewer may not publish commands: the broker refuses it (MQTT 5 reason code) and never delivers it.
        var refused = await viewer.SendAsync(scenario.Topic("cmd/reset"), """{"stream":"m1","reason":"viewer"}""", "v-1", ct);
        Assert.NotEqual(MqttClientPublishReasonCode.Success, refused.ReasonCode);

        // The operator's command, sent after the viewer's was refused, runs and is answered. The broker handles
        // publications in order and the daemon its commands one by one: by this reply the viewer's would have been seen.
        await operatorClient.SendAsync(scenario.Topic("cmd/reset"), """{"stream":"m1","reason":"operator"}""", "o-1", ct);
        var reply = await operatorClient.WaitReplyAsync("o-1", ct);
        Assert.True(reply.Root.GetProperty("ok").GetBoolean(), reply.Payload);
        await results.WaitForAsync(m => m.Topic == scenario.Topic("sensors/m1/event") && m.Payload.Contains("operator", StringComparison.Ordinal), Wait, ct);

        Assert.Equal(1, commands.Received);
        Assert.Equal(1, commands.Count("reset", "ok"));
        Assert.Empty(viewer.Replies);
        Assert.DoesNotContain(results.Seen, m => m.Payload.Contains("\"viewer\"", StringComparison.Ordinal));
        await host.StopAsync(ct);
    }

    /// <summary>The password file (made with mosquitto_passwd) and the ACL of the three users.</summary>
    private static MosquittoAuth WriteAuth(string folder, string deviceId)
    {
        var passwords = Path.Combine(folder, "passwords");
        foreach (var (user, password, first) in new[] { ("device", "device-secret", true), ("operator", "operator-secret", false), ("viewer", "viewer-secret", false) })
        {
            using var tool = Process.Start(new ProcessStartInfo("mosquitto_passwd", first ? ["-c", "-b", passwords, user, password] : ["-b", passwords, user, password]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            tool.WaitForExit();
            Assert.Equal(0, tool.ExitCode);
        }

        var acl = Path.Combine(folder, "acl");
        var device = $"edgerunner/{deviceId}";
        File.WriteAllText(acl, $"""
            user device
            topic readwrite {device}/#

            user operator
            topic write {device}/cmd/#
            topic read {device}/#

            user viewer
            topic read {device}/#

            """);
        return new MosquittoAuth(passwords, acl);
    }
}
