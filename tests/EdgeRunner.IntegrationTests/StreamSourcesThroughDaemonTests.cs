using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The Audio and Serial source kinds configured through the daemon's own configuration and run
/// through the bundled stateful model to MQTT (the bundled model takes three channels, so the audio
/// is upmixed to three; what matters here is the wiring, not the verdict).
/// </summary>
public sealed class StreamSourcesThroughDaemonTests
{
    [Fact]
    public async Task An_audio_file_stream_is_decoded_at_the_models_rate_and_stepped_to_MQTT()
    {
        var ct = TestContext.Current.CancellationToken;
        var wav = TestPaths.SharedFile("audio/speech_noisy_16k.wav");
        await using var scenario = await DaemonScenario.StartAsync("audio", ct);
        var config = scenario.WriteConfig(new JsonObject
        {
            ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
            ["Sensors"] = new JsonObject
            {
                // SampleRateHz 0: ffmpeg decodes straight to the model's 200 Hz.
                ["mic"] = new JsonObject
                {
                    ["Model"] = "lstm",
                    ["Source"] = new JsonObject { ["Kind"] = "Audio", ["Path"] = wav, ["Channels"] = 3, ["Speed"] = 0, ["Loop"] = false },
                },
            },
        });
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        var host = await scenario.StartHostAsync(config, ct);

        var windows = new List<JsonElement>();
        while (windows.Count < 10)
        {
            var message = await probe.WaitForAsync(m => m.Topic.EndsWith("/mic/result", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
            windows.Add(JsonDocument.Parse(message.Payload).RootElement);
        }

        await host.StopAsync(ct);
        for (var i = 0; i < windows.Count; i++)
        {
            Assert.Equal(i, windows[i].GetProperty("seq").GetInt64());
            Assert.Equal(50, windows[i].GetProperty("window").GetProperty("samples").GetInt32());
            // 50 samples at 200 Hz: the audio was delivered at the model's rate, not resampled again.
            var start = windows[i].GetProperty("window").GetProperty("start").GetDateTimeOffset();
            var end = windows[i].GetProperty("window").GetProperty("end").GetDateTimeOffset();
            Assert.Equal(0.25, (end - start).TotalSeconds, 6);
        }
    }

    [Fact]
    public async Task A_serial_device_on_a_pseudo_terminal_is_read_and_stepped_to_MQTT()
    {
        var ct = TestContext.Current.CancellationToken;
        using var serialDevice = PseudoTerminal.Open();
        await using var scenario = await DaemonScenario.StartAsync("serial", ct);
        var config = scenario.WriteConfig(new JsonObject
        {
            ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
            ["Sensors"] = new JsonObject
            {
                ["bench"] = new JsonObject
                {
                    ["Model"] = "lstm",
                    ["Source"] = new JsonObject
                    {
                        ["Kind"] = "Serial",
                        ["Port"] = serialDevice.SlavePath,
                        ["BaudRate"] = 115200,
                        ["Columns"] = new JsonArray("ax", "ay", "az"),
                        ["SampleRateHz"] = 200,
                    },
                },
            },
        });
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        var host = await scenario.StartHostAsync(config, ct);
        using var stopWriting = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // The device: prints JSON lines until the test has what it needs (whenever the daemon opens the port).
        var device = Task.Run(
            async () =>
            {
                var line = Encoding.ASCII.GetBytes("{\"ax\":0.01,\"ay\":-0.02,\"az\":1.0}\n");
                while (!stopWriting.IsCancellationRequested)
                {
                    await serialDevice.WriteAsync(line, stopWriting.Token);
                    await Task.Delay(1, stopWriting.Token);
                }
            },
            ct);

        var first = await probe.WaitForAsync(m => m.Topic.EndsWith("/bench/result", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
        var second = await probe.WaitForAsync(
            m => m.Topic.EndsWith("/bench/result", StringComparison.Ordinal) && JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64() == 1,
            TimeSpan.FromSeconds(60),
            ct);
        await stopWriting.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => device);
        await host.StopAsync(ct);

        var result = JsonDocument.Parse(first.Payload).RootElement;
        Assert.Equal(0, result.GetProperty("seq").GetInt64());
        Assert.Equal(50, result.GetProperty("window").GetProperty("samples").GetInt32());
        Assert.Equal(0, result.GetProperty("invalid_samples").GetInt64());
        Assert.Equal(50, JsonDocument.Parse(second.Payload).RootElement.GetProperty("window").GetProperty("samples").GetInt32());
    }
}
