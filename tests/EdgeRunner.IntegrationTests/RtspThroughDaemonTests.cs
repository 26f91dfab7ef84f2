using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service;
using Microsoft.Extensions.Hosting;

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
        Requirement.Program("/usr/bin/python3", "python3");
        var ct = TestContext.Current.CancellationToken;
        var script = Path.Combine(TestPaths.RepositoryRoot, "tests", "EdgeRunner.IntegrationTests", "Rtsp", "rtsp_server.py");
        var port = FreePort.Next();
        var directory = Directory.CreateTempSubdirectory("edgerunner-rtsp-daemon-").FullName;
        var credentials = Path.Combine(directory, "camera.credentials");
        await File.WriteAllTextAsync(credentials, "viewer:Rtsp#Secret1\n", ct);
        var server = await RtspCaptureTests.StartServerAsync(script, port, ct);
        try
        {
            await using var broker = await MosquittoBroker.StartAsync(ct);
            var deviceId = "rtsp-" + Guid.NewGuid().ToString("N")[..8];
            var config = TestConfig.WriteForBroker(deviceId, broker.Port, new JsonObject
            {
                ["Models"] = new JsonObject { ["detector"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("shapes-detector") } },
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
                            ["Path"] = $"rtsp://127.0.0.1:{port}/test",
                            ["CredentialsFile"] = credentials,
                            ["Width"] = 320,
                            ["Height"] = 240,
                        },
                    },
                },
            });
            await using var probe = await MqttProbe.ConnectAsync(broker.Port, $"edgerunner/{deviceId}/vision/gate/#", TimeSpan.FromSeconds(5), ct);
            using var host = await InProcessDaemon.StartAsync(config, ct);

            static bool State(ReceivedMessage m, string state) => m.Topic.EndsWith("/state", StringComparison.Ordinal)
                && JsonDocument.Parse(m.Payload).RootElement.GetProperty("state").GetString() == state;
            static bool Result(ReceivedMessage m) => m.Topic.EndsWith("/result", StringComparison.Ordinal);

            await probe.WaitForAsync(m => State(m, "streaming"), TimeSpan.FromSeconds(60), ct);
            var before = await probe.WaitForAsync(Result, TimeSpan.FromSeconds(60), ct);
            Assert.Equal(320, JsonDocument.Parse(before.Payload).RootElement.GetProperty("frame").GetProperty("width").GetInt32());

            // Outage: 20 s without the server.
            await RtspCaptureTests.StopServerAsync(server);
            var reconnecting = await probe.WaitForAsync(m => State(m, "reconnecting"), TimeSpan.FromSeconds(30), ct);
            Assert.True(reconnecting.Retain);
            await Task.Delay(TimeSpan.FromSeconds(20), ct);

            server = await RtspCaptureTests.StartServerAsync(script, port, ct);
            var back = await probe.WaitForAsync(m => State(m, "streaming"), TimeSpan.FromSeconds(60), ct);
            Assert.True(JsonDocument.Parse(back.Payload).RootElement.GetProperty("restarts").GetInt64() >= 3);
            await probe.WaitForAsync(Result, TimeSpan.FromSeconds(60), ct);
            await host.StopAsync(ct);

            // The password never reached MQTT.
            Assert.DoesNotContain(probe.Seen, m => m.Payload.Contains("Rtsp#Secret1", StringComparison.Ordinal));
        }
        finally
        {
            await RtspCaptureTests.StopServerAsync(server);
            Directory.Delete(directory, recursive: true);
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
