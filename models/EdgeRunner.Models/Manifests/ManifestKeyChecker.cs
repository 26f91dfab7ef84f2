using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeRunner.Models.Manifests;

/// <summary>
/// Finds keys of a manifest that no <see cref="ModelManifest"/> property reads (and values of the wrong JSON kind), with their path in the file
/// (e.g. <c>postprocess.raw_gird</c>), the keys known there and the closest one: the same help an unknown
/// configuration key gets, instead of the serializer's "could not be mapped to any .NET member contained in
/// type …". The known keys come from the manifest records themselves (snake_case, as the serializer reads
/// them), so a field added to a record is known here without a list to keep up.
/// </summary>
public static class ManifestKeyChecker
{
    /// <summary>
    /// One message per unknown key in <paramref name="manifest"/>, and per value of the wrong JSON kind (a string
    /// where a number or true/false belongs, an object where a list does), each naming its path (empty when none).
    /// </summary>
    public static IReadOnlyList<string> Problems(JsonElement manifest)
    {
        var problems = new List<string>();
        Check(manifest, typeof(ModelManifest), string.Empty, problems);
        return problems;
    }

    /// <summary>
    /// The known key closest to <paramref name="key"/> (case-insensitive edit distance), or null when none is
    /// close enough to be a likely typo: at most 2 edits, or a third of the key's length for long keys.
    /// </summary>
    public static string? ClosestMatch(string key, IEnumerable<string> known)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(known);
        var limit = Math.Max(2, key.Length / 3);
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in known)
        {
            var distance = EditDistance(key.ToLowerInvariant(), candidate.ToLowerInvariant());
            if (distance <= limit && distance < bestDistance)
            {
                best = candidate;
                bestDistance = distance;
            }
        }

        return best;
    }

    private static void Check(JsonElement element, Type type, string path, List<string> problems)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (target == typeof(JsonElement) || target == typeof(object))
        {
            // Free-form: provenance, quantization, constant inputs' values, symbolic or numeric dimensions.
            return;
        }

        if (element.ValueKind == JsonValueKind.Null)
        {
            // Whether null is allowed is the serializer's and the loader's to say (they name what is missing).
            return;
        }

        if (ScalarExpectation(target) is { } expected)
        {
            if (!expected.Fits(element))
            {
                problems.Add($"{path}: expected {expected.Description}, got {Describe(element)}");
            }

            return;
        }

        if (DictionaryValueType(target) is { } valueType)
        {
            if (element.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in element.EnumerateObject())
                {
                    Check(property.Value, valueType, Join(path, property.Name), problems);
                }
            }

            return;
        }

        if (ListElementType(target) is { } elementType)
        {
            if (element.ValueKind != JsonValueKind.Array)
            {
                problems.Add($"{path}: expected a list [ … ], got {Describe(element)}");
                return;
            }

            var i = 0;
            foreach (var item in element.EnumerateArray())
            {
                Check(item, elementType, $"{path}[{i++}]", problems);
            }

            return;
        }

        if (element.ValueKind != JsonValueKind.Object)
        {
            problems.Add($"{(path.Length == 0 ? "the manifest" : path)}: expected an object {{ … }}, got {Describe(element)}");
            return;
        }

        var known = KnownKeys(target);
        foreach (var (name, (_, required)) in known)
        {
            if (required && !element.TryGetProperty(name, out _))
            {
                problems.Add($"{Join(path, name)}: missing (a required key)");
            }
        }

        foreach (var property in element.EnumerateObject())
        {
            if (known.TryGetValue(property.Name, out var declared))
            {
                Check(property.Value, declared.Type, Join(path, property.Name), problems);
                continue;
            }

            var where = path.Length == 0 ? "the top level" : $"'{path}'";
            var suggestion = ClosestMatch(property.Name, known.Keys) is { } close ? $"did you mean '{close}'? " : string.Empty;
            problems.Add($"{Join(path, property.Name)}: unknown key; {suggestion}(known keys at {where}: {string.Join(", ", known.Keys)})");
        }
    }

    /// <summary>The JSON names of <paramref name="type"/>'s properties, as the manifest serializer reads them.</summary>
    private static Dictionary<string, (Type Type, bool Required)> KnownKeys(Type type)
    {
        var keys = new Dictionary<string, (Type, bool)>(StringComparer.Ordinal);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || property.IsDefined(typeof(JsonIgnoreAttribute)) || !(property.CanWrite || property.SetMethod is not null))
            {
                continue;
            }

            var name = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.SnakeCaseLower.ConvertName(property.Name);
            keys[name] = (property.PropertyType, property.IsDefined(typeof(System.Runtime.CompilerServices.RequiredMemberAttribute)));
        }

        return keys;
    }

    /// <summary>What a scalar property takes, or null when <paramref name="type"/> is not a scalar.</summary>
    private static ScalarKind? ScalarExpectation(Type type)
    {
        if (type == typeof(string))
        {
            return new ScalarKind("a string", e => e.ValueKind == JsonValueKind.String);
        }

        if (type.IsEnum)
        {
            return new ScalarKind("a name or a number", e => e.ValueKind is JsonValueKind.String or JsonValueKind.Number);
        }

        if (type == typeof(bool))
        {
            return new ScalarKind("true or false", e => e.ValueKind is JsonValueKind.True or JsonValueKind.False);
        }

        if (type == typeof(int) || type == typeof(long))
        {
            return new ScalarKind("a whole number", e => e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out _));
        }

        return type == typeof(float) || type == typeof(double) || type == typeof(decimal)
            ? new ScalarKind("a number", e => e.ValueKind == JsonValueKind.Number)
            : null;
    }

    /// <summary>The value as the message shows it: its kind, and a short value.</summary>
    private static string Describe(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => $"the string {Shorten(element.GetRawText())}",
        JsonValueKind.Number => $"the number {Shorten(element.GetRawText())}",
        JsonValueKind.True or JsonValueKind.False => element.GetRawText(),
        JsonValueKind.Array => "a list",
        JsonValueKind.Object => "an object",
        _ => "null",
    };

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..37] + "…";

    private static Type? DictionaryValueType(Type type)
    {
        foreach (var candidate in type.IsInterface ? [type, .. type.GetInterfaces()] : type.GetInterfaces())
        {
            if (candidate.IsGenericType && candidate.GetGenericTypeDefinition() is var definition
                && (definition == typeof(IReadOnlyDictionary<,>) || definition == typeof(IDictionary<,>)))
            {
                return candidate.GetGenericArguments()[1];
            }
        }

        return null;
    }

    private static Type? ListElementType(Type type)
    {
        if (type.IsArray)
        {
            return type.GetElementType();
        }

        foreach (var candidate in type.IsInterface ? [type, .. type.GetInterfaces()] : type.GetInterfaces())
        {
            if (candidate.IsGenericType && candidate.GetGenericTypeDefinition() == typeof(IEnumerable<>))
            {
                return candidate.GetGenericArguments()[0];
            }
        }

        return null;
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    private static int EditDistance(string a, string b)
    {
        // Levenshtein over two rows; keys are short.
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j], current[j - 1]) + 1);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    private sealed record ScalarKind(string Description, Func<JsonElement, bool> Fits);
}
