using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Configuration;

namespace EdgeRunner.Service.Vision.Sources;

/// <summary>
/// The camera source kinds, keyed by <see cref="CameraSourceOptions.Kind"/>: binds each <c>Cameras:{id}:Source</c>
/// section to its kind's options type (the configuration binder cannot pick a type by a key) and refuses, naming
/// the full key, every key the camera's kind does not read. A new kind is its options file and one line here.
/// </summary>
internal static class CameraSourceKinds
{
    // In the order docs/cameras.md lists them.
    private static readonly Func<CameraSourceOptions>[] Factories =
    [
        () => new SyntheticSourceOptions(),
        () => new ImagesSourceOptions(),
        () => new FileSourceOptions(),
        () => new V4l2SourceOptions(),
        () => new RtspSourceOptions(),
        () => new HttpMjpegSourceOptions(),
    ];

    private static readonly Dictionary<string, Func<CameraSourceOptions>> FactoriesByKind =
        Factories.ToDictionary(f => f().Kind, StringComparer.OrdinalIgnoreCase);

    /// <summary>The kinds' names, in documentation order.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Factories.Select(f => f().Kind)];

    /// <summary>The keys each kind reads (<c>Kind</c> included), by kind name, each with its property.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyDictionary<string, PropertyInfo>> KeysByKind { get; } =
        Factories.Select(f => f()).ToDictionary(o => o.Kind, o => (IReadOnlyDictionary<string, PropertyInfo>)Keys(o.GetType()), StringComparer.OrdinalIgnoreCase);

    /// <summary>The kind a <c>Source</c> section without a <c>Kind</c> key gets.</summary>
    public static string DefaultKind { get; } = new CameraOptions().Source.Kind;

    /// <summary>The options of the kind named by <paramref name="source"/>'s <c>Kind</c> key, bound from the section.</summary>
    /// <exception cref="InvalidOperationException">The kind is not one, or a key is not the kind's (naming the key).</exception>
    public static CameraSourceOptions Bind(IConfigurationSection source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (!TryCreate(source, out var options))
        {
            throw new InvalidOperationException(UnknownKind(source));
        }

        source.Bind(options, o => o.ErrorOnUnknownConfiguration = true);
        return options;
    }

    /// <summary>Binds every camera's <see cref="CameraOptions.Source"/> from <paramref name="cameras"/> (the <c>Cameras</c> section).</summary>
    public static void BindSources(IConfigurationSection cameras, CamerasOptions options)
    {
        ArgumentNullException.ThrowIfNull(cameras);
        ArgumentNullException.ThrowIfNull(options);
        foreach (var (id, camera) in options)
        {
            camera.Source = Bind(cameras.GetSection(id).GetSection(nameof(CameraOptions.Source)));
        }
    }

    /// <summary>
    /// Appends one message per key under <c>Cameras:{id}:Source</c> that the camera's kind does not read, naming the
    /// full key and the kinds that take it (or, for a key no kind reads, the kind's own keys), and one for a Kind
    /// that is none. Reads the keys present in the configuration, never bound values.
    /// </summary>
    public static void CollectKeyErrors(IConfigurationSection cameras, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(cameras);
        ArgumentNullException.ThrowIfNull(errors);
        foreach (var camera in cameras.GetChildren())
        {
            var source = camera.GetSection(nameof(CameraOptions.Source));
            if (!TryCreate(source, out var options))
            {
                errors.Add(UnknownKind(source));
                continue;
            }

            var kind = options.Kind;
            var own = KeysByKind[kind];
            foreach (var key in source.GetChildren())
            {
                if (own.TryGetValue(key.Key, out var property))
                {
                    ConfigurationKeyChecker.CollectUnknownKeys(key, property.PropertyType, errors);
                    continue;
                }

                var takenBy = Names.Where(k => KeysByKind[k].ContainsKey(key.Key)).ToList();
                errors.Add(takenBy.Count > 0
                    ? $"{key.Path}: not used by Kind {kind} (it is for {JoinKinds(takenBy)})"
                    : $"{key.Path}: unknown key (known keys for Kind {kind}: {string.Join(", ", own.Keys)})");
            }
        }
    }

    private static bool TryCreate(IConfigurationSection source, [NotNullWhen(true)] out CameraSourceOptions? options)
    {
        var value = source[nameof(CameraSourceOptions.Kind)];
        if (FactoriesByKind.TryGetValue(string.IsNullOrWhiteSpace(value) ? DefaultKind : value.Trim(), out var factory))
        {
            options = factory();
            return true;
        }

        options = null;
        return false;
    }

    private static string UnknownKind(IConfigurationSection source) =>
        $"{source.Path}:{nameof(CameraSourceOptions.Kind)}: unknown kind '{source[nameof(CameraSourceOptions.Kind)]}' (known: {string.Join(", ", Names)})";

    /// <summary>Kind first, then the kind's settable keys.</summary>
    private static Dictionary<string, PropertyInfo> Keys(Type type)
    {
        var keys = new Dictionary<string, PropertyInfo>(StringComparer.OrdinalIgnoreCase)
        {
            [nameof(CameraSourceOptions.Kind)] = type.GetProperty(nameof(CameraSourceOptions.Kind))!,
        };
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).OrderBy(p => p.MetadataToken))
        {
            keys[property.Name] = property;
        }

        return keys;
    }

    private static string JoinKinds(List<string> kinds) =>
        kinds.Count == 1 ? kinds[0] : $"{string.Join(", ", kinds.Take(kinds.Count - 1))} and {kinds[^1]}";
}
