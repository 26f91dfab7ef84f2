using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Service.Cli;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Unknown manifest keys are named with their place in the file, the keys known there and the likely typo, as
/// unknown configuration keys are: from <see cref="ModelManifest.Load"/>, <c>inspect</c> and the daemon's startup.
/// </summary>
public sealed class ManifestKeyTests
{
    private const int ExConfig = 78;

    private static JsonObject Detector(JsonObject postprocess) => new()
    {
        ["task"] = "detection",
        ["preprocess"] = new JsonObject { ["width"] = 64, ["height"] = 64, ["color_order"] = "bgr", ["scale"] = 1 },
        ["postprocess"] = postprocess,
    };

    [Fact]
    public async Task A_misspelt_key_is_named_with_its_path_the_known_keys_and_the_close_match()
    {
        var ct = TestContext.Current.CancellationToken;
        using var folder = new TempFolder();
        var (_, manifest) = await TestManifests.WriteModelAsync(folder.Path, "typo", RawGridYoloxTests.RawGridHead(), Detector(new JsonObject { ["kind"] = "yolox", ["raw_gird"] = true }), ct);

        var ex = Assert.Throws<ManifestException>(() => ModelManifest.Load(manifest));

        Assert.StartsWith($"Manifest '{manifest}': postprocess.raw_gird: unknown key; did you mean 'raw_grid'? (known keys at 'postprocess': kind, score_threshold,", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(".NET", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("EdgeRunner.Models", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_unknown_key_is_reported_at_the_top_level_and_inside_lists_and_free_form_sections_are_free()
    {
        var ct = TestContext.Current.CancellationToken;
        using var folder = new TempFolder();
        var body = Detector(new JsonObject { ["kind"] = "yolox", ["raw_grid"] = true });
        body["lables"] = new JsonArray("thing");
        body["inputs"] = new JsonArray(new JsonObject { ["name"] = "images", ["dtyp"] = "float32" });
        body["colour"] = "blue";

        // Free-form by design: provenance and quantization take any keys, constant_inputs any input names.
        body["provenance"] = new JsonObject { ["anything"] = new JsonObject { ["goes"] = 1 } };
        body["constant_inputs"] = new JsonObject { ["some_input"] = 16000 };
        var (_, manifest) = await TestManifests.WriteModelAsync(folder.Path, "typos", RawGridYoloxTests.RawGridHead(), body, ct);

        var message = Assert.Throws<ManifestException>(() => ModelManifest.Load(manifest)).Message;

        Assert.Contains("lables: unknown key; did you mean 'labels'? (known keys at the top level: schema, id, file, sha256, task,", message, StringComparison.Ordinal);
        Assert.Contains("inputs[0].dtyp: unknown key; did you mean 'dtype'? (known keys at 'inputs[0]': name, dtype, shape", message, StringComparison.Ordinal);
        Assert.Contains("colour: unknown key; (known keys at the top level:", message, StringComparison.Ordinal);
        Assert.DoesNotContain("anything", message, StringComparison.Ordinal);
        Assert.DoesNotContain("some_input", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Values_of_the_wrong_kind_and_missing_required_keys_are_named_by_their_path()
    {
        var ct = TestContext.Current.CancellationToken;
        using var folder = new TempFolder();
        var body = Detector(new JsonObject { ["kind"] = "yolox", ["raw_grid"] = "yes", ["max_detections"] = 2.5 });
        body["preprocess"]!["width"] = "64";
        body["labels"] = "person";
        body["state"] = new JsonArray(new JsonObject { ["input"] = "h0" });
        var (_, manifest) = await TestManifests.WriteModelAsync(folder.Path, "kinds", RawGridYoloxTests.RawGridHead(), body, ct);

        var message = Assert.Throws<ManifestException>(() => ModelManifest.Load(manifest)).Message;

        Assert.Contains("postprocess.raw_grid: expected true or false, got the string \"yes\"", message, StringComparison.Ordinal);
        Assert.Contains("postprocess.max_detections: expected a whole number, got the number 2.5", message, StringComparison.Ordinal);
        Assert.Contains("preprocess.width: expected a whole number, got the string \"64\"", message, StringComparison.Ordinal);
        Assert.Contains("labels: expected a list [ … ], got the string \"person\"", message, StringComparison.Ordinal);
        Assert.Contains("state[0].output: missing (a required key)", message, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Close_matches_are_typos_not_any_key()
    {
        string[] known = ["kind", "score_threshold", "iou_threshold", "raw_grid"];

        Assert.Equal("raw_grid", ManifestKeyChecker.ClosestMatch("Raw_Grid", known));
        Assert.Equal("iou_threshold", ManifestKeyChecker.ClosestMatch("iou_treshold", known));
        Assert.Null(ManifestKeyChecker.ClosestMatch("strides", known));
    }

    [Fact]
    public async Task Inspect_and_the_daemon_give_the_same_message()
    {
        var ct = TestContext.Current.CancellationToken;
        using var folder = new TempFolder();
        var (_, manifest) = await TestManifests.WriteModelAsync(folder.Path, "typo", RawGridYoloxTests.RawGridHead(), Detector(new JsonObject { ["kind"] = "yolox", ["raw_gird"] = true }), ct);

        var (code, text) = InspectCommand.Run(manifest);
        Assert.Equal(InspectCommand.ModelError, code);
        Assert.Contains("postprocess.raw_gird: unknown key; did you mean 'raw_grid'?", text, StringComparison.Ordinal);

        var config = Path.Combine(folder.Path, "config.json");
        await File.WriteAllTextAsync(
            config,
            new JsonObject
            {
                ["Device"] = new JsonObject { ["Id"] = "manifestkeys" },
                ["Mqtt"] = new JsonObject { ["Host"] = "127.0.0.1", ["Port"] = FreePort.Next() },
                ["Models"] = new JsonObject { ["yolox"] = new JsonObject { ["Manifest"] = manifest } },
                ["Cameras"] = new JsonObject { ["cam"] = new JsonObject { ["Model"] = "yolox", ["Source"] = new JsonObject { ["Kind"] = "Synthetic" } } },
                ["Sensors"] = new JsonObject(),
            }.ToJsonString(),
            ct);
        await using var daemon = DaemonProcess.Start(["--config", config]);
        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60), ct));
        Assert.Contains($"Models:yolox:Manifest: Manifest '{manifest}': postprocess.raw_gird: unknown key; did you mean 'raw_grid'?", daemon.Stderr, StringComparison.Ordinal);
    }
}
