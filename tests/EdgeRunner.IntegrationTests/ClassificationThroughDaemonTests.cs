using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>The real INT8 model on the reference images, through the daemon's host, to a real mosquitto, received by a subscriber.</summary>
public sealed class ClassificationThroughDaemonTests
{
    private const string MobileNetSha256 = "83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f";

    [Fact]
    public async Task Reference_images_are_classified_and_published_to_mosquitto()
    {
        var ct = TestContext.Current.CancellationToken;
        var expected = new Dictionary<string, (string File, int ClassId, string Label)>
        {
            ["goldfish"] = ("goldfish.jpg", 1, "goldfish"),
            ["kimono"] = ("kimono.jpg", 614, "kimono"),
            ["cat"] = ("cat.jpg", 281, "tabby"),
        };
        var cameras = new JsonObject();
        foreach (var (camera, (file, _, _)) in expected)
        {
            cameras[camera] = new JsonObject
            {
                ["Model"] = "mobilenet",
                ["Fps"] = 10,
                ["Source"] = new JsonObject { ["Kind"] = "Images", ["Path"] = TestPaths.SharedFile("images/" + file), ["Loop"] = false },
            };
        }

        await using var scenario = await DaemonScenario.StartAsync("it", ct);
        var deviceId = scenario.DeviceId;
        var probe = await scenario.ProbeAsync("#", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["mobilenet"] = TestConfig.MobileNetModel() },
                ["Cameras"] = cameras,
            },
            ct);

        var results = new Dictionary<string, JsonElement>();
        while (results.Count < expected.Count)
        {
            var message = await probe.WaitForAsync(m => m.Topic.EndsWith("/result", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
            var payload = JsonDocument.Parse(message.Payload).RootElement;
            var camera = payload.GetProperty("camera").GetString()!;
            Assert.Equal($"edgerunner/{deviceId}/vision/{camera}/result", message.Topic);
            results[camera] = payload;
        }

        await host.StopAsync(ct);

        foreach (var (camera, (file, classId, label)) in expected)
        {
            var payload = results[camera];
            var top = payload.GetProperty("classifications")[0];
            Assert.Equal(classId, top.GetProperty("class_id").GetInt32());
            Assert.Equal(label, top.GetProperty("label").GetString());
            Assert.InRange(top.GetProperty("score").GetDouble(), 0.3, 1.0);
            Assert.Equal(file, payload.GetProperty("source").GetString());
            Assert.Equal(MobileNetSha256, payload.GetProperty("model").GetProperty("sha256").GetString());
            Assert.Equal("CPUExecutionProvider", payload.GetProperty("model").GetProperty("execution_provider").GetString());
            Assert.Equal("classification", payload.GetProperty("task").GetString());
        }

        // The cat's second choice is the tiger cat, as ../shared/README.md records.
        Assert.Equal(282, results["cat"].GetProperty("classifications")[1].GetProperty("class_id").GetInt32());

        // Availability: online while running, offline retained after a clean stop.
        Assert.Contains(probe.Seen, m => m.Topic == $"edgerunner/{deviceId}/status" && m.Payload == "online" && m.Retain);
        var late = await scenario.ProbeAsync("status", ct);
        var status = await late.WaitForAsync(_ => true, TimeSpan.FromSeconds(5), ct);
        Assert.Equal("offline", status.Payload);
        Assert.True(status.Retain);
    }
}
