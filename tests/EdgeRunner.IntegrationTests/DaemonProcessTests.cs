using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>The daemon as a field engineer runs it: a process, its exit codes, its stderr.</summary>
public sealed class DaemonProcessTests
{
    private const int ExConfig = 78;

    [Fact]
    public async Task Embedded_default_publishes_results_and_stops_cleanly_on_SIGTERM()
    {
        var ct = TestContext.Current.CancellationToken;
        var port = FreePort.Next();

        // The README's run command configuration (built-in appsettings.json, run from the repository root);
        // only the embedded broker's port is moved so the test cannot collide with anything on 1883.
        await using var daemon = DaemonProcess.Start([], new Dictionary<string, string> { ["EDGERUNNER__Mqtt__EmbeddedBroker__Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        await using var results = await MqttProbe.ConnectAsync(port, "edgerunner/demo/+/+/result", TimeSpan.FromSeconds(60), ct);

        // The synthetic camera through the bundled INT8 detector.
        var camera = await results.WaitForAsync(m => m.Topic == "edgerunner/demo/vision/synthetic/result" && m.Payload.Contains("\"label\"", StringComparison.Ordinal), TimeSpan.FromSeconds(60), ct);
        var detection = JsonDocument.Parse(camera.Payload).RootElement;
        Assert.Equal("detection", detection.GetProperty("task").GetString());
        var first = detection.GetProperty("detections")[0];
        Assert.Contains(first.GetProperty("label").GetString(), new[] { "circle", "square", "triangle" });
        Assert.InRange(first.GetProperty("box").GetProperty("x2").GetDouble(), 0, 640);

        // Both simulated machines through the bundled LSTM, each with its own state.
        foreach (var stream in new[] { "pump-1", "fan-2" })
        {
            var message = await results.WaitForAsync(m => m.Topic == $"edgerunner/demo/sensors/{stream}/result", TimeSpan.FromSeconds(60), ct);
            var sensor = JsonDocument.Parse(message.Payload).RootElement;
            Assert.Equal(stream, sensor.GetProperty("stream").GetString());
            Assert.Equal(4, sensor.GetProperty("probabilities").EnumerateObject().Count());
            Assert.Equal(50, sensor.GetProperty("window").GetProperty("samples").GetInt32());
            // Which provider ran the model, as in vision results.
            Assert.Equal("CPUExecutionProvider", sensor.GetProperty("model").GetProperty("execution_provider").GetString());
        }

        // A subscriber arriving now gets the retained availability.
        await using var status = await MqttProbe.ConnectAsync(port, "edgerunner/demo/status", TimeSpan.FromSeconds(5), ct);
        var online = await status.WaitForAsync(_ => true, TimeSpan.FromSeconds(5), ct);
        Assert.Equal("online", online.Payload);
        Assert.True(online.Retain);

        daemon.Terminate();
        var offline = await status.WaitForAsync(m => m.Payload == "offline", TimeSpan.FromSeconds(60), ct);
        Assert.True(offline.Retain);
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));
        Assert.Contains("Camera synthetic", daemon.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_key_on_the_command_line_stops_startup_naming_it()
    {
        await using var daemon = DaemonProcess.Start(["--Cameras:synthetic:Fsp=3"]);

        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Contains("Cameras:synthetic:Fsp: unknown key", daemon.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Negative_fps_from_the_environment_stops_startup_naming_the_key()
    {
        await using var daemon = DaemonProcess.Start([], new Dictionary<string, string> { ["EDGERUNNER__Cameras__synthetic__Fps"] = "-5" });

        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Contains("Cameras:synthetic:Fps: must be greater than 0 (got -5)", daemon.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Source_key_of_another_kind_from_the_environment_stops_startup_naming_it()
    {
        // pump-1 is a SimulatedVibration stream in the built-in appsettings.json; Pins is a Gpio key.
        await using var daemon = DaemonProcess.Start([], new Dictionary<string, string> { ["EDGERUNNER__Sensors__pump-1__Source__Pins__0"] = "17" });

        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Contains("Sensors:pump-1:Source:Pins: not used by Kind SimulatedVibration (it is for Gpio)", daemon.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_model_file_stops_startup_naming_the_key_and_file()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-model-{Guid.NewGuid():N}.onnx");
        var config = TestConfig.Write(new JsonObject
        {
            ["Models"] = new JsonObject { ["m"] = new JsonObject { ["Path"] = missing } },
            ["Cameras"] = new JsonObject { ["c"] = new JsonObject { ["Model"] = "m" } },
        });
        await using var daemon = DaemonProcess.Start(["--config", config]);

        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Contains($"Models:m:Path: model file '{missing}' does not exist", daemon.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Malformed_config_file_stops_startup_naming_the_file()
    {
        var config = TestFiles.NewPath("edgerunner-bad", ".json");
        await File.WriteAllTextAsync(config, "{ \"Mqtt\": { \"Port\": 1883, ", TestContext.Current.CancellationToken);
        await using var daemon = DaemonProcess.Start(["--config", config]);

        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Contains(config, daemon.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Model_input_that_does_not_match_the_preprocessing_stops_startup_with_both_shapes()
    {
        var config = TestConfig.Write(new JsonObject
        {
            ["Mqtt"] = new JsonObject { ["EmbeddedBroker"] = new JsonObject { ["Port"] = FreePort.Next() } },
            ["Models"] = new JsonObject { ["mobilenet"] = TestConfig.MobileNetModel(width: 320, height: 320) },
            ["Cameras"] = new JsonObject { ["c"] = new JsonObject { ["Model"] = "mobilenet" } },
        });
        await using var daemon = DaemonProcess.Start(["--config", config]);

        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        var stderr = daemon.Stderr;
        Assert.Contains("Model 'mobilenet'", stderr, StringComparison.Ordinal);
        Assert.Contains("mobilenetv2-12-int8/model.onnx", stderr, StringComparison.Ordinal);
        Assert.Contains("input 'input' has shape [", stderr, StringComparison.Ordinal);
        Assert.Contains(",3,224,224]", stderr, StringComparison.Ordinal);
        Assert.Contains("produces [1,3,320,320]", stderr, StringComparison.Ordinal);
    }
}
