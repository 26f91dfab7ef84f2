using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Commands;

/// <summary>
/// Sub-section <c>Mqtt:Commands</c>: which commands the daemon takes on <c>{prefix}/{device}/cmd/{name}</c>
/// (docs/mqtt.md, "Commands"). Off by default: with an empty <see cref="Allow"/> the daemon does not even
/// subscribe, so nothing on the broker can change what it does.
/// </summary>
public sealed class CommandsOptions
{
    /// <summary>The configuration key of this section.</summary>
    public const string Key = "Mqtt:Commands";

    /// <summary>The commands taken (names from <see cref="CommandNames.All"/>); empty: commands are off.</summary>
    public string[] Allow { get; set; } = [];

    /// <summary>Largest command payload in bytes; larger ones are refused unread.</summary>
    public int MaxPayloadBytes { get; set; } = 4096;

    /// <summary>How long one command may take (a camera restart, a model reload) before it is answered with a timeout.</summary>
    public double TimeoutSeconds { get; set; } = 30;

    /// <summary>Commands waiting to run at most; beyond this new ones are refused (counted as <c>busy</c>, no reply).</summary>
    public int QueueCapacity { get; set; } = 16;

    /// <summary>Adds this section's problems to <paramref name="errors"/>, each naming its key.</summary>
    internal static void Validate(CommandsOptions options, ValidationErrors errors)
    {
        ArgumentNullException.ThrowIfNull(options);
        for (var i = 0; i < options.Allow.Length; i++)
        {
            if (!CommandNames.All.Contains(options.Allow[i], StringComparer.Ordinal))
            {
                errors.Add($"{Key}:Allow:{i}", $"unknown command '{options.Allow[i]}' (known: {string.Join(", ", CommandNames.All)})");
            }
        }

        errors.Range($"{Key}:MaxPayloadBytes", options.MaxPayloadBytes, 2, 1024 * 1024);
        errors.Range($"{Key}:TimeoutSeconds", options.TimeoutSeconds, 0.1, 3600);
        errors.Range($"{Key}:QueueCapacity", options.QueueCapacity, 1, 1024);
    }
}

/// <summary>The command names, as in the topic <c>{prefix}/{device}/cmd/{name}</c> and in <c>Mqtt:Commands:Allow</c>.</summary>
public static class CommandNames
{
    /// <summary>Resets a sensor stream's state: <c>{"stream":"…","reason":"…"}</c>.</summary>
    public const string Reset = "reset";

    /// <summary>Publishes a snapshot of a camera's next inferred frame: <c>{"camera":"…"}</c>.</summary>
    public const string Snapshot = "snapshot";

    /// <summary>Disposes a camera's source and opens it again: <c>{"camera":"…"}</c>.</summary>
    public const string RestartCamera = "restart-camera";

    /// <summary>Sets a camera's score threshold while it runs: <c>{"camera":"…","score":0.4}</c>.</summary>
    public const string SetThreshold = "set-threshold";

    /// <summary>Rebuilds one model (<c>{"model":"…"}</c>) or all of them (<c>{}</c>) while the pipelines run.</summary>
    public const string Reload = "reload";

    /// <summary>Every command the daemon knows.</summary>
    public static IReadOnlyList<string> All { get; } = [Reset, Snapshot, RestartCamera, SetThreshold, Reload];
}
