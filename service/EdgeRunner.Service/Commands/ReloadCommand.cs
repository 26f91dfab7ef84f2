using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.Service.Catalog;

namespace EdgeRunner.Service.Commands;

/// <summary>
/// <c>reload</c> <c>{"model":"name"}</c> or <c>{}</c> for every model in use: hands the request to the registered
/// <see cref="IModelReloader"/> (which builds and warms up the new session before swapping it in) and replies with
/// what it did. Without a reloader in the build, the reply says so.
/// </summary>
internal sealed class ReloadCommand(IModelReloader? reloader = null) : ICommandHandler
{
    /// <summary>The reply's error when no <see cref="IModelReloader"/> is registered.</summary>
    public const string NotAvailable = "reload is not available in this build";

    public string Name => CommandNames.Reload;

    public async Task<CommandOutcome> ExecuteAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        var model = CommandArguments.OptionalString(arguments, "model", out var error);
        if (error is not null)
        {
            return CommandOutcome.Failed(error);
        }

        if (reloader is null)
        {
            return CommandOutcome.Failed(NotAvailable);
        }

        var outcome = await reloader.ReloadAsync(model, cancellationToken);
        var details = new JsonObject
        {
            ["message"] = outcome.Message,
            ["reloaded"] = new JsonArray([.. outcome.Reloaded.Select(name => (JsonNode?)JsonValue.Create(name))]),
        };
        if (model is not null)
        {
            details["model"] = model;
        }

        return outcome.Succeeded ? CommandOutcome.Done(details) : CommandOutcome.Failed(outcome.Message, details);
    }
}
