using System.Text.Json;
using Json.Schema;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>
/// The payload JSON Schemas kept in the repository (<c>docs/schemas/{kind}.schema.json</c>), loaded once
/// with JsonSchema.Net into a registry of their own, and the validation of a message against one, with
/// <c>format</c> (date-time) checked too.
/// </summary>
internal static class SchemaValidator
{
    private static readonly EvaluationOptions Options = new() { OutputFormat = OutputFormat.List, RequireFormatValidation = true };
    private static readonly Lazy<IReadOnlyDictionary<string, JsonSchema>> Schemas = new(Load);

    public static string Folder => Path.Combine(TestPaths.RepositoryRoot, "docs", "schemas");

    /// <summary>The kinds that have a schema (<c>vision.result</c>, <c>sensor.event</c>…).</summary>
    public static IReadOnlyCollection<string> Kinds => [.. Schemas.Value.Keys];

    /// <summary>The payload kind of a topic of the device (<c>…/vision/{camera}/result</c> is <c>vision.result</c>, <c>…/status/detail</c> is <c>status.detail</c>); null for non-JSON topics.</summary>
    public static string? KindOf(string topic)
    {
        var levels = topic.Split('/');
        if (levels.Length == 3 && levels[2] == "health")
        {
            return "health";
        }

        if (levels is [_, _, "status", "detail"])
        {
            return "status.detail";
        }

        if (levels.Length < 5)
        {
            return null;
        }

        var area = levels[2] switch { "vision" => "vision", "sensors" => "sensor", _ => null };
        var kind = levels[^1];
        return area is not null && kind is "result" or "state" or "event" ? $"{area}.{kind}" : null;
    }

    /// <summary>The schema's errors for <paramref name="payload"/> (each with where in the payload); empty when it is valid.</summary>
    public static IReadOnlyList<string> Errors(string kind, string payload)
    {
        Assert.True(Schemas.Value.TryGetValue(kind, out var schema), $"no schema docs/schemas/{kind}.schema.json");
        using var document = JsonDocument.Parse(payload);
        var results = schema.Evaluate(document.RootElement, Options);
        if (results.IsValid)
        {
            return [];
        }

        var errors = new List<string>();
        foreach (var node in (IEnumerable<EvaluationResults>)[results, .. results.Details ?? []])
        {
            foreach (var (keyword, message) in node.Errors ?? new Dictionary<string, string>())
            {
                errors.Add($"{node.InstanceLocation} ({node.SchemaLocation} {keyword}): {message}");
            }
        }

        return errors.Count > 0 ? errors : ["invalid (no detail)"];
    }

    private static Dictionary<string, JsonSchema> Load()
    {
        // A registry of their own: the process-wide default would refuse the same $id built twice.
        var build = new BuildOptions { SchemaRegistry = new SchemaRegistry() };
        var schemas = new Dictionary<string, JsonSchema>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(Folder, "*.schema.json"))
        {
            schemas[Path.GetFileName(file)[..^".schema.json".Length]] = JsonSchema.FromFile(file, build);
        }

        return schemas;
    }
}
