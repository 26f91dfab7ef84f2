using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.Service.Vision;

namespace EdgeRunner.Service.Commands;

/// <summary>
/// <c>set-threshold</c> <c>{"camera":"…","score":0.4}</c>: a detection or classification camera's score threshold,
/// from the frame the reply names (<c>from_seq</c>) on, until the daemon restarts (the configuration is not written). Results scoring lower are
/// left out of the camera's results and snapshots. It can be raised above the model's own decode threshold
/// (<c>Detection:ScoreThreshold</c>, <c>Classification:MinScore</c>) and lowered back to it, not below: the
/// decoder drops lower scores before the threshold sees them. A sensor stream's raise/clear thresholds come from its
/// model manifest and are not changed at run time (<c>{"stream":…}</c> is refused with that reason).
/// </summary>
internal sealed class SetThresholdCommand(VisionService vision) : ICommandHandler
{
    public string Name => CommandNames.SetThreshold;

    public Task<CommandOutcome> ExecuteAsync(JsonElement arguments, CancellationToken cancellationToken) =>
        Task.FromResult(Execute(arguments));

    private CommandOutcome Execute(JsonElement arguments)
    {
        if (arguments.TryGetProperty("stream", out _) && !arguments.TryGetProperty("camera", out _))
        {
            return CommandOutcome.Failed("a sensor stream's thresholds come from its model manifest (postprocess threshold, clear_threshold) and cannot be changed at run time");
        }

        if (CameraLookup.Find(vision, arguments, out var error) is not { } camera)
        {
            return CommandOutcome.Failed(error!);
        }

        var details = new JsonObject { ["camera"] = camera.CameraId };
        if (!arguments.TryGetProperty("score", out var value) || value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var score) || !(score >= 0 && score <= 1))
        {
            return CommandOutcome.Failed("\"score\" must be a number from 0 to 1", details);
        }

        var (filter, decoderThreshold) = camera.Head switch
        {
            DetectionHead detection => (detection.ScoreThreshold, detection.DecoderThreshold),
            ClassificationHead classification => (classification.ScoreThreshold, classification.DecoderThreshold),
            _ => (null, 0f),
        };
        if (filter is null)
        {
            return CommandOutcome.Failed($"camera '{camera.CameraId}' has no score threshold (its results are neither detections nor classifications)", details);
        }

        details["decoder_threshold"] = Math.Round(decoderThreshold, 6);
        // Compared as the float the decoder holds: 0.25 from JSON is the decoder's 0.25f, not below it.
        var threshold = (float)score;
        if (threshold < decoderThreshold)
        {
            return CommandOutcome.Failed(
                $"score {score.ToString(CultureInfo.InvariantCulture)} is below the model's decode threshold {decoderThreshold.ToString(CultureInfo.InvariantCulture)}, which already drops lower scores; lower that in the configuration",
                details);
        }

        details["previous"] = Math.Round(filter.Value, 6);
        filter.Set(threshold);
        details["score"] = Math.Round(threshold, 6);
        // Read after the change: every frame captured from here on (seq at least this) is decoded with it.
        details["from_seq"] = camera.FramesCaptured;
        return CommandOutcome.Done(details);
    }
}
