using System.Text.Json;
using System.Text.Json.Nodes;

namespace EdgeRunner.Service.Commands;

/// <summary>
/// One command of <c>{prefix}/{device}/cmd/{name}</c>. <see cref="CommandService"/> has already checked that it is
/// allowed, that its payload fits and that it is a JSON object; the handler reads its own fields, does the work
/// (bounded by the cancellation token: <c>Mqtt:Commands:TimeoutSeconds</c>) and says what came of it. It runs on
/// the command loop, never on the MQTT receive loop, so it may take time.
/// </summary>
internal interface ICommandHandler
{
    /// <summary>The command's name (<see cref="CommandNames"/>).</summary>
    string Name { get; }

    /// <summary>Runs the command with the request's JSON object <paramref name="arguments"/>.</summary>
    Task<CommandOutcome> ExecuteAsync(JsonElement arguments, CancellationToken cancellationToken);
}

/// <summary>What a command did: <c>ok</c>, or the error for the reply; <see cref="Details"/> are more reply fields.</summary>
internal sealed record CommandOutcome(bool Ok, string? Error, JsonObject? Details = null)
{
    /// <summary>Done.</summary>
    public static CommandOutcome Done(JsonObject? details = null) => new(true, null, details);

    /// <summary>Not done, and why (a message for the operator: names the field, the camera or the stream).</summary>
    public static CommandOutcome Failed(string error, JsonObject? details = null) => new(false, error, details);
}

/// <summary>Reading a command's fields, with errors that name the field.</summary>
internal static class CommandArguments
{
    /// <summary>The string field <paramref name="name"/>; null with <paramref name="error"/> set when it is missing, empty or not a string.</summary>
    public static string? RequiredString(JsonElement arguments, string name, out string? error)
    {
        error = null;
        if (!arguments.TryGetProperty(name, out var value))
        {
            error = $"\"{name}\" is missing";
            return null;
        }

        if (value.ValueKind != JsonValueKind.String || value.GetString() is not { Length: > 0 } text)
        {
            error = $"\"{name}\" must be a non-empty string";
            return null;
        }

        return text;
    }

    /// <summary>The optional string field <paramref name="name"/> (null when absent); <paramref name="error"/> set when present but not a string.</summary>
    public static string? OptionalString(JsonElement arguments, string name, out string? error)
    {
        error = null;
        if (!arguments.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            error = $"\"{name}\" must be a string";
            return null;
        }

        return value.GetString();
    }
}
