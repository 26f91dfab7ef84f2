using System.Diagnostics;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Inference;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// A model, manifest or label path that is not a regular file (a device that never ends, a FIFO that
/// blocks the open, a directory) stops startup naming the key and the reason, once, instead of hanging.
/// </summary>
public sealed class ModelFileTests
{
    private const int ExConfig = 78;

    [Fact]
    public async Task A_model_path_to_dev_zero_stops_startup_naming_the_key_once()
    {
        using var temp = new TempFolder();
        var stderr = await RunDaemonAsync(temp, new JsonObject { ["Path"] = "/dev/zero" });

        var line = Assert.Single(ErrorLines(stderr));
        Assert.Contains("Models:foo:Path", line, StringComparison.Ordinal);
        Assert.Contains("'/dev/zero' is a character device, not a regular file", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_model_path_to_a_directory_is_reported_as_a_directory_once()
    {
        using var temp = new TempFolder();
        var stderr = await RunDaemonAsync(temp, new JsonObject { ["Path"] = temp.Path });

        var line = Assert.Single(ErrorLines(stderr));
        Assert.Contains("Models:foo:Path", line, StringComparison.Ordinal);
        Assert.Contains("is a directory, not a regular file", line, StringComparison.Ordinal);
        Assert.DoesNotContain("does not exist", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_manifest_that_is_a_fifo_is_refused_without_opening_it()
    {
        using var temp = new TempFolder();
        var fifo = Path.Combine(temp.Path, "model.json");
        MakeFifo(fifo);

        // Opening a FIFO for reading blocks until a writer comes: the daemon must decide from its type alone.
        var stderr = await RunDaemonAsync(temp, new JsonObject { ["Manifest"] = fifo });

        var line = Assert.Single(ErrorLines(stderr));
        Assert.Contains("Models:foo:Manifest", line, StringComparison.Ordinal);
        Assert.Contains("is a FIFO (named pipe), not a regular file", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_manifest_whose_model_file_is_a_device_and_a_label_file_that_is_a_directory_are_each_named()
    {
        using var temp = new TempFolder();
        var manifest = Path.Combine(temp.Path, "model.json");
        await File.WriteAllTextAsync(
            manifest,
            new JsonObject { ["schema"] = 1, ["id"] = "zero", ["file"] = "/dev/zero", ["sha256"] = new string('0', 64), ["task"] = "classification" }.ToJsonString(),
            TestContext.Current.CancellationToken);

        var fromManifest = await RunDaemonAsync(temp, new JsonObject { ["Manifest"] = manifest });
        var line = Assert.Single(ErrorLines(fromManifest));
        Assert.Contains("Models:foo:Manifest", line, StringComparison.Ordinal);
        Assert.Contains("model file '/dev/zero' is a character device, not a regular file", line, StringComparison.Ordinal);

        var labels = await RunDaemonAsync(temp, new JsonObject
        {
            ["Path"] = TestPaths.SharedFile("models/mobilenetv2-12-int8/model.onnx"),
            ["Labels"] = temp.Path,
        });
        line = Assert.Single(ErrorLines(labels));
        Assert.Contains("Models:foo:Labels", line, StringComparison.Ordinal);
        Assert.Contains("is a directory, not a regular file", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inspect_refuses_a_device_instead_of_reading_it_forever()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var daemon = DaemonProcess.Start(["inspect", "/dev/zero"]);

        Assert.Equal(65, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60), ct));
        Assert.Contains("'/dev/zero' is a character device, not a regular file", daemon.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_checks_and_the_hash_stop_at_the_limit()
    {
        using var temp = new TempFolder();
        var file = Path.Combine(temp.Path, "model.onnx");
        File.WriteAllBytes(file, new byte[100]);

        Assert.Null(ModelFiles.Problem(file, 100));
        Assert.Equal("is 100 bytes, more than the 99 bytes allowed", ModelFiles.Problem(file, 99));
        Assert.Equal("does not exist", ModelFiles.Problem(Path.Combine(temp.Path, "missing.onnx"), 100));
        Assert.Equal("is a character device, not a regular file", ModelFiles.Problem("/dev/zero", 100));

        // Hashing a file that grew past the limit after its check (or a device) reads no further than the limit.
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(new byte[100])), ModelFiles.Sha256(file, 100));
        var tooLarge = Assert.Throws<IOException>(() => ModelFiles.Sha256(file, 99));
        Assert.Contains("more than the 99 bytes allowed", tooLarge.Message, StringComparison.Ordinal);
        Assert.Throws<IOException>(() => ModelFiles.Sha256("/dev/zero", 1 << 20));
    }

    /// <summary>Runs the daemon with model <c>foo</c> used by a synthetic camera; returns its stderr after it exits with 78.</summary>
    private static async Task<string> RunDaemonAsync(TempFolder temp, JsonObject model)
    {
        var ct = TestContext.Current.CancellationToken;
        var config = Path.Combine(temp.Path, $"config-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(
            config,
            new JsonObject
            {
                ["Device"] = new JsonObject { ["Id"] = "modelfiles" },
                ["Mqtt"] = new JsonObject { ["Host"] = "127.0.0.1", ["Port"] = FreePort.Next() },
                ["Models"] = new JsonObject { ["foo"] = model },
                ["Cameras"] = new JsonObject { ["cam"] = new JsonObject { ["Model"] = "foo", ["Source"] = new JsonObject { ["Kind"] = "Synthetic" } } },
                ["Sensors"] = new JsonObject(),
            }.ToJsonString(),
            ct);
        await using var daemon = DaemonProcess.Start(["--config", config]);
        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60), ct));
        return daemon.Stderr;
    }

    private static string[] ErrorLines(string stderr) =>
        [.. stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => l.StartsWith("edgerunner:", StringComparison.Ordinal))];

    private static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start("mkfifo", [path]);
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
    }
}
