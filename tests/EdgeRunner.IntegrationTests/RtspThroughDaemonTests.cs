using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// An RTSP camera as the daemon runs it: a real local RTSP server (GStreamer), the daemon pulls it
/// and publishes results; the server dies for 20 s and comes back: capture resumes by itself, the
/// camera's state transitions are published, no ffmpeg is left behind.
/// </summary>
public sealed class RtspThroughDaemonTests
{
    [Fact]
    public async Task Rtsp_camera_survives_a_20_s_server_outage_and_publishes_its_state()
    {
        Requirement.Program("/usr/bin/ffmpeg", "ffmpeg");
        var ct = TestContext.Current.CancellationToken;
        int port;
        await using (var server = await RtspServer.StartAsync("Rtsp#Secret1", ct))
        await using (var scenario = await DaemonScenario.StartAsync("rtsp", ct))
        {
            port = server.Port;
            var probe = await scenario.ProbeAsync("vision/gate/#", ct);
            var host = await scenario.StartHostAsync(
                new JsonObject
                {
                    ["Models"] = new JsonObject { ["detector"] = TestConfig.BundledModel("shapes-detector") },
                    ["Cameras"] = new JsonObject
                    {
                        ["gate"] = new JsonObject
                        {
                            ["Model"] = "detector",
                            ["Fps"] = 5,
                            ["StallTimeoutSeconds"] = 5,
                            ["ReconnectMinDelaySeconds"] = 0.5,
                            ["ReconnectMaxDelaySeconds"] = 2,
                            ["Source"] = new JsonObject
                            {
                                ["Kind"] = "Rtsp",
                                ["Path"] = server.Url,
                                ["CredentialsFile"] = server.CredentialsFile,
                                ["Width"] = 320,
                                ["Height"] = 240,
                            },
                        },
                    },
                },
                ct);

            static bool State(ReceivedMessage m, string state) => m.Topic.EndsWith("/state", StringComparison.Ordinal)
                && JsonDocument.Parse(m.Payload).RootElement.GetProperty("state").GetString() == state;
            static bool Result(ReceivedMessage m) => m.Topic.EndsWith("/result", StringComparison.Ordinal);

            await probe.WaitForAsync(m => State(m, "streaming"), TimeSpan.FromSeconds(60), ct);
            var before = await probe.WaitForAsync(Result, TimeSpan.FromSeconds(60), ct);
            Assert.Equal(320, JsonDocument.Parse(before.Payload).RootElement.GetProperty("frame").GetProperty("width").GetInt32());

            // Outage: 20 s without the server.
            await server.StopAsync();
            var reconnecting = await probe.WaitForAsync(m => State(m, "reconnecting"), TimeSpan.FromSeconds(30), ct);
            Assert.True(reconnecting.Retain);
            await Task.Delay(TimeSpan.FromSeconds(20), ct);

            await server.StartAgainAsync(ct);
            var back = await probe.WaitForAsync(m => State(m, "streaming"), TimeSpan.FromSeconds(60), ct);
            Assert.True(JsonDocument.Parse(back.Payload).RootElement.GetProperty("restarts").GetInt64() >= 3);
            await probe.WaitForAsync(Result, TimeSpan.FromSeconds(60), ct);
            await host.StopAsync(ct);

            // The password never reached MQTT.
            Assert.DoesNotContain(probe.Seen, m => m.Payload.Contains("Rtsp#Secret1", StringComparison.Ordinal));
        }

        // No ffmpeg pulling this port is left, whether it belonged to the daemon or anything else.
        var leftovers = Directory.EnumerateDirectories("/proc")
            .Select(d => Path.Combine(d, "cmdline"))
            .Select(f =>
            {
                try
                {
                    return File.ReadAllText(f).Replace('\0', ' ');
                }
                catch (IOException)
                {
                    return string.Empty;
                }
                catch (UnauthorizedAccessException)
                {
                    return string.Empty;
                }
            })
            .Where(c => c.Contains("ffmpeg", StringComparison.Ordinal) && c.Contains($"127.0.0.1:{port}", StringComparison.Ordinal))
            .ToList();
        Assert.Empty(leftovers);
    }
}
