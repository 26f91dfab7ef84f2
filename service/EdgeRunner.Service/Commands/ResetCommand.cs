using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.Service.Sensors;

namespace EdgeRunner.Service.Commands;

/// <summary>
/// <c>reset</c> <c>{"stream":"m1","reason":"…"}</c>: resets a sensor stream's state, as <c>sensors/{stream}/reset</c>
/// does. The reply says the reset was handed to the stream; the stream applies it before its next block and
/// acknowledges it on its event topic (<c>"event":"reset"</c>).
/// </summary>
internal sealed class ResetCommand(SensorService sensors) : ICommandHandler
{
    // As SensorResetCommands: a reason is a log and event field, not a document.
    private const int MaxReasonLength = 200;

    public string Name => CommandNames.Reset;

    public Task<CommandOutcome> ExecuteAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        if (CommandArguments.RequiredString(arguments, "stream", out var error) is not { } stream)
        {
            return Task.FromResult(CommandOutcome.Failed(error!));
        }

        var reason = CommandArguments.OptionalString(arguments, "reason", out error) ?? "command";
        if (error is not null)
        {
            return Task.FromResult(CommandOutcome.Failed(error));
        }

        reason = reason.Length > MaxReasonLength ? reason[..MaxReasonLength] : reason;
        var details = new JsonObject { ["stream"] = stream };
        return Task.FromResult(sensors.RequestReset(stream, reason)
            ? CommandOutcome.Done(details)
            : CommandOutcome.Failed($"no sensor stream '{stream}'", details));
    }
}
