using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The retained health message (<c>{prefix}/{device}/health</c>, <c>Metrics:HealthIntervalSeconds</c>) of an
/// in-process daemon with a synthetic camera and a simulated machine on a real mosquitto: it matches its schema,
/// carries the common payload fields, rates and percentiles per camera and stream with the provider of each model,
/// and a subscriber that comes later gets the last one retained.
/// </summary>
public sealed class HealthMessageTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_health_message_carries_rates_percentiles_providers_and_process_figures_and_is_retained()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("health", ct);
        var probe = await scenario.ProbeAsync("health", ct);
        await scenario.StartHostAsync(
            new JsonObject
            {
                ["Metrics"] = new JsonObject { ["HealthIntervalSeconds"] = 1 },
                ["Models"] = new JsonObject
                {
                    ["detector"] = TestConfig.BundledModel("shapes-detector"),
                    ["lstm"] = TestConfig.BundledModel("vibration-lstm"),
                },
                ["Cameras"] = new JsonObject
                {
                    ["yard"] = new JsonObject { ["Model"] = "detector", ["Fps"] = 10, ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 320, ["Height"] = 240, ["Seed"] = 3 } },
                },
                ["Sensors"] = new JsonObject { ["pump"] = TestConfig.SimulatedVibration(5) },
            },
            ct);

        // A message whose interval saw frames inferred and steps run (the first may come before any).
        var message = await probe.WaitForAsync(m => Busy(m.Payload), Within, ct);
        Assert.Empty(SchemaValidator.Errors("health", message.Payload));
        var root = JsonDocument.Parse(message.Payload).RootElement;
        Assert.Equal("edgerunner.health/1", root.GetProperty("schema").GetString());
        Assert.Equal(scenario.DeviceId, root.GetProperty("device").GetString());
        Assert.True(root.GetProperty("uptime_s").GetDouble() > 0);
        Assert.True(root.GetProperty("cpu_percent").GetDouble() > 0);
        Assert.True(root.GetProperty("rss_bytes").GetInt64() > 0);
        Assert.True(root.GetProperty("mqtt").GetProperty("connected").GetBoolean());

        var camera = Assert.Single(root.GetProperty("cameras").EnumerateArray());
        Assert.Equal("yard", camera.GetProperty("camera").GetString());
        Assert.Equal("detector", camera.GetProperty("model").GetString());
        Assert.Equal("CPUExecutionProvider", camera.GetProperty("provider").GetString());
        Assert.True(camera.GetProperty("frames_inferred").GetInt64() > 0);
        var latency = camera.GetProperty("latency_ms");
        Assert.True(latency.GetProperty("p50").GetDouble() > 0);
        Assert.True(latency.GetProperty("p99").GetDouble() >= latency.GetProperty("p50").GetDouble());
        Assert.True(camera.GetProperty("inference_ms").GetProperty("p50").GetDouble() > 0);

        var stream = Assert.Single(root.GetProperty("streams").EnumerateArray());
        Assert.Equal("pump", stream.GetProperty("stream").GetString());
        Assert.Equal("CPUExecutionProvider", stream.GetProperty("provider").GetString());
        Assert.True(stream.GetProperty("steps").GetInt64() > 0);
        Assert.True(stream.GetProperty("step_ms").GetProperty("p99").GetDouble() > 0);

        // A subscriber that comes later gets the last health message at once, retained.
        await using var late = await scenario.ProbeAsync("health", ct);
        var retained = await late.WaitForAsync(_ => true, Within, ct);
        Assert.True(retained.Retain);
        Assert.Empty(SchemaValidator.Errors("health", retained.Payload));
    }

    /// <summary>A health message whose interval had inferred frames and sensor steps in it.</summary>
    private static bool Busy(string payload)
    {
        var root = JsonDocument.Parse(payload).RootElement;
        return root.GetProperty("cameras").EnumerateArray().Any(c => c.GetProperty("inference_fps").GetDouble() > 0 && c.GetProperty("latency_ms").ValueKind == JsonValueKind.Object)
            && root.GetProperty("streams").EnumerateArray().Any(s => s.GetProperty("steps_per_s").GetDouble() > 0 && s.GetProperty("step_ms").ValueKind == JsonValueKind.Object);
    }
}
