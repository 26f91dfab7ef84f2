using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// A sensor device that is not there when the daemon starts (a USB serial adapter plugged in after
/// boot) does not stop the daemon: the stream says so on its retained state topic, the other streams
/// run, and the stream starts as soon as the device appears.
/// </summary>
public sealed class DeviceAbsenceTests
{
    [Fact]
    public async Task A_serial_device_plugged_in_after_start_is_waited_for_while_the_other_streams_run()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        // A stable name like /dev/serial/by-id/… that appears when the adapter is plugged in.
        var port = Path.Combine(temp.Path, "usb-adapter");
        await using var scenario = await DaemonScenario.StartAsync("late", ct);
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
                ["Sensors"] = new JsonObject
                {
                    ["bench"] = new JsonObject
                    {
                        ["Model"] = "lstm",
                        ["Source"] = new JsonObject { ["Kind"] = "Serial", ["Port"] = port, ["Columns"] = new JsonArray("0", "1", "2"), ["SampleRateHz"] = 200 },
                    },
                    ["pump"] = TestConfig.SimulatedVibration(7),
                },
            },
            ct);

        var unavailable = await probe.WaitForAsync(m => m.Topic.EndsWith("/bench/state", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
        var state = JsonDocument.Parse(unavailable.Payload).RootElement;
        Assert.Equal("unavailable", state.GetProperty("state").GetString());
        Assert.Contains(port, state.GetProperty("reason").GetString(), StringComparison.Ordinal);
        await probe.WaitForAsync(m => m.Topic.EndsWith("/pump/result", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);

        // Plug it in.
        using var device = PseudoTerminal.Open();
        File.CreateSymbolicLink(port, device.SlavePath);
        using var stopWriting = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var writer = Task.Run(
            async () =>
            {
                var line = Encoding.ASCII.GetBytes("0.01,-0.02,1.0\n");
                while (!stopWriting.IsCancellationRequested)
                {
                    await device.WriteAsync(line, stopWriting.Token);
                    await Task.Delay(1, stopWriting.Token);
                }
            },
            ct);

        // The state turns streaming before the stream's first result.
        await probe.WaitForAsync(
            m => m.Topic.EndsWith("/bench/state", StringComparison.Ordinal) && JsonDocument.Parse(m.Payload).RootElement.GetProperty("state").GetString() == "streaming",
            TimeSpan.FromSeconds(60),
            ct);
        await probe.WaitForAsync(
            m => m.Topic.EndsWith("/bench/result", StringComparison.Ordinal) && JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64() >= 1,
            TimeSpan.FromSeconds(60),
            ct);

        // A dashboard connecting now is told the current state by the retained message.
        var late = await scenario.ProbeAsync("sensors/bench/state", ct);
        var retained = await late.WaitForAsync(m => m.Retain, TimeSpan.FromSeconds(10), ct);
        Assert.Equal("streaming", JsonDocument.Parse(retained.Payload).RootElement.GetProperty("state").GetString());
        await stopWriting.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => writer);
        await host.StopAsync(ct);
    }
}
