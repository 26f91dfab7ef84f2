using System.Text.Json.Nodes;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>Builds daemon configuration files for tests.</summary>
internal static class TestConfig
{
    /// <summary>The ImageNet preprocessing mobilenetv2-12-int8 was trained with (see ../shared/README.md).</summary>
    public static JsonObject MobileNetModel(int width = 224, int height = 224) => new()
    {
        ["Path"] = TestPaths.SharedFile("models/mobilenetv2-12-int8/model.onnx"),
        ["Labels"] = TestPaths.SharedFile("models/mobilenetv2-12-int8/synset.txt"),
        ["Preprocess"] = new JsonObject
        {
            ["Width"] = width,
            ["Height"] = height,
            ["Resize"] = "CenterCrop",
            ["ResizeShorterSide"] = 256,
            ["Scale"] = 1.0 / 255,
            ["Mean"] = new JsonArray(0.485, 0.456, 0.406),
            ["Std"] = new JsonArray(0.229, 0.224, 0.225),
        },
        ["Classification"] = new JsonObject { ["TopK"] = 3 },
    };

    /// <summary>A <c>Models</c> entry for a demo model committed under models/bundled (<c>vibration-lstm</c>, <c>shapes-detector</c>).</summary>
    public static JsonObject BundledModel(string name) => new() { ["Manifest"] = BundledModels.ManifestPath(name) };

    /// <summary>A sensor stream of <paramref name="model"/> from the simulated vibration source.</summary>
    public static JsonObject SimulatedVibration(int seed, string model = "lstm") => new()
    {
        ["Model"] = model,
        ["Source"] = new JsonObject { ["Kind"] = "SimulatedVibration", ["Seed"] = seed },
    };

    /// <summary>A CSV recording (no timestamp column) replayed once, as fast as the model steps.</summary>
    public static JsonObject CsvReplay(string path, double sampleRateHz, params string[] columns) => new()
    {
        ["Kind"] = "Csv",
        ["Path"] = path,
        ["Columns"] = new JsonArray([.. columns.Select(c => JsonValue.Create(c))]),
        ["SampleRateHz"] = sampleRateHz,
        ["Speed"] = 0,
        ["Loop"] = false,
    };

    /// <summary>Writes a configuration file into the run's <see cref="TestFiles"/> folder; returns its path.</summary>
    public static string Write(JsonObject config)
    {
        var path = TestFiles.NewPath("edgerunner-test", ".json");
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }
}
