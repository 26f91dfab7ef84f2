using System.Text.Json;
using EdgeRunner.Service.Vision;

namespace EdgeRunner.Service.Commands;

/// <summary>Finds the running camera a command names in its <c>"camera"</c> field.</summary>
internal static class CameraLookup
{
    /// <summary>The camera's pipeline; null with <paramref name="error"/> set when the field is missing or no such camera runs.</summary>
    public static VisionPipeline? Find(VisionService vision, JsonElement arguments, out string? error)
    {
        if (CommandArguments.RequiredString(arguments, "camera", out error) is not { } camera)
        {
            return null;
        }

        var pipeline = vision.Pipelines.FirstOrDefault(p => string.Equals(p.CameraId, camera, StringComparison.Ordinal));
        if (pipeline is null)
        {
            error = $"no camera '{camera}' is running";
        }

        return pipeline;
    }
}
