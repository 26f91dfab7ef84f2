using System.Collections;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace EdgeRunner.Service.Configuration;

/// <summary>
/// Finds configuration keys that no options property would read, with their full path
/// (e.g. <c>Cameras:front:Fsp</c>), so a typo stops startup instead of being silently ignored.
/// The binder's own ErrorOnUnknownConfiguration names the property but not where it sits.
/// </summary>
internal static class ConfigurationKeyChecker
{
    /// <summary>Appends one message per unknown key under <paramref name="section"/>, checked against <paramref name="type"/>.</summary>
    public static void CollectUnknownKeys(IConfigurationSection section, Type type, List<string> errors)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        var children = section.GetChildren().ToList();
        if (IsScalar(target))
        {
            if (children.Count > 0)
            {
                errors.Add($"{section.Path}: is a single value ({target.Name}); it has no key '{children[0].Key}'");
            }

            return;
        }

        if (DictionaryValueType(target) is { } valueType)
        {
            foreach (var child in children)
            {
                CollectUnknownKeys(child, valueType, errors);
            }

            return;
        }

        if (EnumerableElementType(target) is { } elementType)
        {
            foreach (var child in children)
            {
                if (!int.TryParse(child.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                {
                    errors.Add($"{child.Path}: '{section.Key}' is a list; use numeric indices ({section.Path}:0, {section.Path}:1, …)");
                    continue;
                }

                CollectUnknownKeys(child, elementType, errors);
            }

            return;
        }

        var properties = target.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && (p.CanWrite || !IsScalar(p.PropertyType)))
            .Concat(target.GetProperties(BindingFlags.NonPublic | BindingFlags.Instance).Where(p => p.IsDefined(typeof(KindSectionAttribute))))
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var child in children)
        {
            if (properties.TryGetValue(child.Key, out var property))
            {
                // A kind section's keys depend on its Kind key: its own checker looks inside.
                if (!property.IsDefined(typeof(KindSectionAttribute)))
                {
                    CollectUnknownKeys(child, property.PropertyType, errors);
                }
            }
            else
            {
                errors.Add($"{child.Path}: unknown key (known keys here: {string.Join(", ", properties.Keys)})");
            }
        }
    }

    private static bool IsScalar(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        return t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(TimeSpan)
            || t == typeof(DateTime) || t == typeof(DateTimeOffset) || t == typeof(Guid) || t == typeof(Uri);
    }

    private static Type? DictionaryValueType(Type type)
    {
        foreach (var candidate in type.GetInterfaces().Prepend(type))
        {
            if (candidate.IsGenericType && candidate.GetGenericTypeDefinition() == typeof(IDictionary<,>))
            {
                return candidate.GetGenericArguments()[1];
            }
        }

        return null;
    }

    private static Type? EnumerableElementType(Type type)
    {
        if (type.IsArray)
        {
            return type.GetElementType();
        }

        if (!typeof(IEnumerable).IsAssignableFrom(type))
        {
            return null;
        }

        foreach (var candidate in type.GetInterfaces().Prepend(type))
        {
            if (candidate.IsGenericType && candidate.GetGenericTypeDefinition() == typeof(IEnumerable<>))
            {
                return candidate.GetGenericArguments()[0];
            }
        }

        return null;
    }
}

/// <summary>
/// Marks a non-public options property bound by its area's own code because its type depends on a <c>Kind</c>
/// key (e.g. <c>Cameras:{id}:Source</c>): the configuration binder skips non-public properties, and
/// <see cref="ConfigurationKeyChecker"/> accepts the key but leaves the keys under it to that area's kind check.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class KindSectionAttribute : Attribute;
