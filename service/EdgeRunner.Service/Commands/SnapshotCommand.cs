using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Vision;

namespace EdgeRunner.Service.Commands;

/// <summary>
/// <c>snapshot</c> <c>{"camera":"…"}</c>: publishes an annotated JPEG of the camera's next inferred frame on its
/// snapshot topic (as <c>Cameras:{id}:Snapshots</c> configures it), whatever the frame shows and however soon after
/// the last snapshot. Needs <c>Snapshots:Enabled</c> (a detection camera). The reply comes when the request is taken,
/// not when the JPEG is out: that waits for the next frame the camera infers.
/// </summary>
internal sealed class SnapshotCommand(VisionService vision, MqttTopics topics) : ICommandHandler
{
    public string Name => CommandNames.Snapshot;

    public Task<CommandOutcome> ExecuteAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        if (CameraLookup.Find(vision, arguments, out var error) is not { } camera)
        {
            return Task.FromResult(CommandOutcome.Failed(error!));
        }

        var details = new JsonObject { ["camera"] = camera.CameraId };
        if (camera.Snapshots is not { } snapshots)
        {
            return Task.FromResult(CommandOutcome.Failed($"camera '{camera.CameraId}' takes no snapshots (Cameras:{camera.CameraId}:Snapshots:Enabled is false)", details));
        }

        snapshots.Request();
        details["topic"] = topics.VisionSnapshot(camera.CameraId);
        return Task.FromResult(CommandOutcome.Done(details));
    }
}
