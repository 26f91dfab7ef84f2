using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>Model manifests for models a test writes (tiny ONNX graphs) or reads in place (../shared).</summary>
internal static class TestManifests
{
    /// <summary>
    /// Writes <paramref name="model"/> as <c>{id}.onnx</c> and its manifest <c>{id}.json</c> beside it: schema 1,
    /// the id, the file and its SHA-256, then <paramref name="body"/> (task, stream, postprocess, …).
    /// </summary>
    /// <returns>The model's path and the manifest's path.</returns>
    public static async Task<(string Model, string Manifest)> WriteModelAsync(string folder, string id, byte[] model, JsonObject body, CancellationToken cancellationToken)
    {
        var modelPath = Path.Combine(folder, id + ".onnx");
        await File.WriteAllBytesAsync(modelPath, model, cancellationToken);
        var manifest = Write(folder, id, id + ".onnx", Convert.ToHexStringLower(SHA256.HashData(model)), body);
        return (modelPath, manifest);
    }

    /// <summary>Writes the manifest <c>{id}.json</c> in <paramref name="folder"/> for a model <paramref name="file"/> kept where it is.</summary>
    public static string Write(string folder, string id, string file, string sha256, JsonObject body)
    {
        var manifest = new JsonObject { ["schema"] = 1, ["id"] = id, ["file"] = file, ["sha256"] = sha256 };
        foreach (var (key, value) in body)
        {
            manifest[key] = value?.DeepClone();
        }

        var path = Path.Combine(folder, id + ".json");
        File.WriteAllText(path, manifest.ToJsonString());
        return path;
    }
}
