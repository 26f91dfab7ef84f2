using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Sequence;

namespace EdgeRunner.Service.Catalog;

/// <summary>
/// What a camera's or a sensor stream's retained state message says about the model it runs (<c>"model"</c>): which
/// file, the execution provider it actually runs on and the ones asked for; and, when it fell back from its first
/// preference, <see cref="Degraded"/> (published as the message's <c>"degraded"</c>).
/// </summary>
internal sealed record RunningModelStatus(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("sha256")] string Sha256,
    [property: JsonPropertyName("execution_provider")] string ExecutionProvider,
    [property: JsonPropertyName("requested_providers")] IReadOnlyList<string> RequestedProviders,
    [property: JsonIgnore] string? FallbackReason)
{
    public static RunningModelStatus Of(ModelSession model) => new(model.Id, model.Sha256, model.ExecutionProvider, model.RequestedProviders, model.FallbackReason);

    public static RunningModelStatus Of(SequenceModel model) => new(model.Id, model.Sha256, model.ExecutionProvider, model.RequestedProviders, model.FallbackReason);

    /// <summary>Null while the model runs on its first preference; else what it runs on instead and why.</summary>
    [JsonIgnore]
    public string? Degraded => FallbackReason is null
        ? null
        : $"running on {ExecutionProvider} instead of {(RequestedProviders.Count > 0 ? RequestedProviders[0] : "cpu")}: {FallbackReason}";

    /// <summary>Writes <c>"model":{…}</c> and, after a fallback, <c>"degraded":"…"</c> into the open object.</summary>
    public void Write(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject("model");
        writer.WriteString("id", Id);
        writer.WriteString("sha256", Sha256);
        writer.WriteString("execution_provider", ExecutionProvider);
        writer.WriteStartArray("requested_providers");
        foreach (var provider in RequestedProviders)
        {
            writer.WriteStringValue(provider);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
        if (Degraded is { } degraded)
        {
            writer.WriteString("degraded", degraded);
        }
    }
}
