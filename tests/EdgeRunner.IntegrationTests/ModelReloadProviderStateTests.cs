using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The retained camera and sensor stream states name the model and the provider it actually runs on, and the ones
/// asked for; a provider fallback (CUDA asked for, absent here) is published as <c>degraded</c> with the reason.
/// In-process daemon, real mosquitto, the bundled models.
/// </summary>
public sealed class ModelReloadProviderStateTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_provider_fallback_is_published_as_degraded_in_the_camera_and_stream_states_and_results_name_the_provider_used()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("provider-state", ct);
        await using var probe = await scenario.ProbeTopicAsync($"edgerunner/{scenario.DeviceId}/+/+/#", ct);
        var detector = TestConfig.BundledModel("shapes-detector");
        detector["ExecutionProviders"] = new JsonArray("cuda", "cpu");
        var sections = new JsonObject
        {
            ["Models"] = new JsonObject { ["det"] = detector, ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
            ["Cameras"] = new JsonObject
            {
                ["cam"] = new JsonObject
                {
                    ["Model"] = "det",
                    ["Fps"] = 5,
                    ["Source"] = new JsonObject { ["Kind"] = "Images", ["Path"] = TestPaths.SharedFile("images/cat.jpg"), ["Loop"] = true },
                },
            },
            ["Sensors"] = new JsonObject { ["press"] = TestConfig.SimulatedVibration(7) },
        };
        using var host = await scenario.StartHostAsync(sections, ct);

        // One wait for all four (each wait consumes what it reads): the two retained states, a result of each.
        static bool CamState(ReceivedMessage m) => m.Topic.EndsWith("/vision/cam/state", StringComparison.Ordinal) && Json(m).GetProperty("state").GetString() == "streaming";
        static bool StreamState(ReceivedMessage m) => m.Topic.EndsWith("/sensors/press/state", StringComparison.Ordinal) && Json(m).GetProperty("state").GetString() == "streaming";
        static bool CamResult(ReceivedMessage m) => m.Topic.EndsWith("/vision/cam/result", StringComparison.Ordinal);
        static bool StreamResult(ReceivedMessage m) => m.Topic.EndsWith("/sensors/press/result", StringComparison.Ordinal);
        Func<ReceivedMessage, bool>[] wanted = [CamState, StreamState, CamResult, StreamResult];
        await probe.WaitForAsync(_ => wanted.All(w => probe.Seen.Any(w)), Wait, ct);
        var camState = probe.Seen.First(CamState);
        var streamState = probe.Seen.First(StreamState);
        var camResult = probe.Seen.First(CamResult);
        var streamResult = probe.Seen.First(StreamResult);
        await host.StopAsync(ct);

        Assert.Empty(SchemaValidator.Errors("vision.state", camState.Payload));
        Assert.Empty(SchemaValidator.Errors("sensor.state", streamState.Payload));

        // CUDA is not in this build: the camera runs on the CPU, and says so.
        var cam = Json(camState);
        Assert.True(camState.Retain);
        Assert.Equal("CPUExecutionProvider", cam.GetProperty("model").GetProperty("execution_provider").GetString());
        Assert.Equal(["cuda", "cpu"], cam.GetProperty("model").GetProperty("requested_providers").EnumerateArray().Select(p => p.GetString()));
        var degraded = cam.GetProperty("degraded").GetString();
        Assert.StartsWith("running on CPUExecutionProvider instead of cuda: ", degraded, StringComparison.Ordinal);
        Assert.Equal("CPUExecutionProvider", Json(camResult).GetProperty("model").GetProperty("execution_provider").GetString());

        // The stream got what it asked for (the CPU): named, and not degraded.
        var stream = Json(streamState);
        Assert.Equal("lstm", stream.GetProperty("model").GetProperty("id").GetString());
        Assert.Equal("CPUExecutionProvider", stream.GetProperty("model").GetProperty("execution_provider").GetString());
        Assert.Equal(["cpu"], stream.GetProperty("model").GetProperty("requested_providers").EnumerateArray().Select(p => p.GetString()));
        Assert.False(stream.TryGetProperty("degraded", out _));
        Assert.Equal("CPUExecutionProvider", Json(streamResult).GetProperty("model").GetProperty("execution_provider").GetString());
    }

    private static JsonElement Json(ReceivedMessage message) => JsonDocument.Parse(message.Payload).RootElement;
}
