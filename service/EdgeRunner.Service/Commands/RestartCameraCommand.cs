using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.Service.Vision;

namespace EdgeRunner.Service.Commands;

/// <summary>
/// <c>restart-camera</c> <c>{"camera":"…"}</c>: disposes the camera's source and opens it again at once (no backoff);
/// its state topic says <c>reconnecting</c> ("restart requested by a command") and then <c>streaming</c> with the
/// new source's first frame. The reply comes when the capture loop has taken the request.
/// </summary>
internal sealed class RestartCameraCommand(VisionService vision) : ICommandHandler
{
    public string Name => CommandNames.RestartCamera;

    public Task<CommandOutcome> ExecuteAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        if (CameraLookup.Find(vision, arguments, out var error) is not { } camera)
        {
            return Task.FromResult(CommandOutcome.Failed(error!));
        }

        var details = new JsonObject { ["camera"] = camera.CameraId };
        return Task.FromResult(camera.RequestRestart()
            ? CommandOutcome.Done(details)
            : CommandOutcome.Failed($"camera '{camera.CameraId}' has no source capturing now (it is between restarts, or it has ended or failed)", details));
    }
}
