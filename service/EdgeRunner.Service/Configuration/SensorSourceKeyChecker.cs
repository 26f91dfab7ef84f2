using System.Reflection;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Sensors.Sources;
using Microsoft.Extensions.Configuration;

namespace EdgeRunner.Service.Configuration;

/// <summary>
/// The key check of the <c>Sensors</c> section. <c>Sensors:{id}:Source</c> is bound to the options type of its
/// Kind (<see cref="SensorSourceKinds"/>), so its keys are checked against that type: a key of another Kind
/// (<c>TimestampField</c>, the Mqtt name, on a Serial source) is refused naming the full key and the kinds that
/// take it, and a key no Kind reads is an unknown key. The check reads the keys present in the configuration,
/// never the bound values: a property left at its default is not something the user wrote.
/// </summary>
internal static class SensorSourceKeyChecker
{
    /// <summary>Keys every Kind reads (<see cref="SensorSourceOptions"/>).</summary>
    public static IReadOnlySet<string> CommonKeys { get; } = Keys(typeof(SensorSourceOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.DeclaringType == typeof(SensorSourceOptions)).Select(p => p.Name));

    /// <summary>Keys each Kind reads besides <see cref="CommonKeys"/>: its options type's own properties (README's <c>Sensors:{id}</c> table, which a unit test holds it to).</summary>
    public static IReadOnlyDictionary<SensorSourceKind, IReadOnlySet<string>> KeysByKind { get; } = SensorSourceKinds.All.ToDictionary<KeyValuePair<SensorSourceKind, ISensorSourceKind>, SensorSourceKind, IReadOnlySet<string>>(
        k => k.Key,
        k => Keys(k.Value.OptionsType.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.DeclaringType != typeof(SensorSourceOptions)).Select(p => p.Name)));

    /// <summary>Mqtt keys that only mean something when the Topic has a wildcard (one stream per matching topic).</summary>
    public static IReadOnlySet<string> WildcardOnlyKeys { get; } = Keys(nameof(MqttSensorOptions.MaxStreams), nameof(MqttSensorOptions.IdleTimeoutSeconds));

    // Keys that do the same job under different kinds: the classic mix-ups (the Mqtt TimestampField on a
    // Serial source, the Audio Device on an I2c source). A foreign key found in a group gets the hint
    // "{Kind} uses {its own key}". A key belongs to at most one group.
    private static readonly IReadOnlyDictionary<SensorSourceKind, string>[] SameJobKeys =
    [
        // The sample's own time.
        new Dictionary<SensorSourceKind, string>
        {
            [SensorSourceKind.Csv] = "TimestampColumn",
            [SensorSourceKind.Serial] = "TimestampColumn",
            [SensorSourceKind.Mqtt] = "TimestampField",
        },

        // Which device is opened.
        new Dictionary<SensorSourceKind, string>
        {
            [SensorSourceKind.Audio] = "Device",
            [SensorSourceKind.I2c] = "Chip",
            [SensorSourceKind.Gpio] = "GpioChip",
            [SensorSourceKind.Serial] = "Port",
        },

        // Which channels are delivered.
        new Dictionary<SensorSourceKind, string>
        {
            [SensorSourceKind.Csv] = "Columns",
            [SensorSourceKind.Serial] = "Columns",
            [SensorSourceKind.Mqtt] = "Columns",
            [SensorSourceKind.Gpio] = "Pins",
            [SensorSourceKind.Audio] = "Channels",
        },
    ];

    /// <summary>
    /// Appends one message per unknown key under <paramref name="sensors"/> (the <c>Sensors</c> section), with its
    /// full path: a stream's own keys are checked as <see cref="ConfigurationKeyChecker"/> checks every section, its
    /// <c>Source</c> keys against the options type of its Kind (a key of another Kind names the kinds that take it),
    /// and each <see cref="WildcardOnlyKeys"/> key on an Mqtt source whose Topic has no wildcard. A Kind that is
    /// not one is left to the binder, which names it.
    /// </summary>
    public static void CollectUnknownKeys(IConfigurationSection sensors, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(sensors);
        ArgumentNullException.ThrowIfNull(errors);
        var streamProperties = typeof(SensorStreamOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var stream in sensors.GetChildren())
        {
            foreach (var child in stream.GetChildren())
            {
                if (!streamProperties.TryGetValue(child.Key, out var property))
                {
                    errors.Add($"{child.Path}: unknown key (known keys here: {string.Join(", ", streamProperties.Keys)})");
                }
                else if (property.Name == nameof(SensorStreamOptions.Source))
                {
                    CollectUnknownSourceKeys(child, errors);
                }
                else
                {
                    ConfigurationKeyChecker.CollectUnknownKeys(child, property.PropertyType, errors);
                }
            }
        }
    }

    private static void CollectUnknownSourceKeys(IConfigurationSection source, List<string> errors)
    {
        if (!TryGetKind(source, out var kind))
        {
            return;
        }

        var topic = source[nameof(MqttSensorOptions.Topic)];
        var optionsType = SensorSourceKinds.All[kind].OptionsType;
        var properties = optionsType.GetProperties(BindingFlags.Public | BindingFlags.Instance).ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var key in source.GetChildren())
        {
            if (properties.TryGetValue(key.Key, out var property))
            {
                if (kind == SensorSourceKind.Mqtt && WildcardOnlyKeys.Contains(key.Key)
                    && !string.IsNullOrWhiteSpace(topic) && !MqttTopicFilter.HasWildcard(topic))
                {
                    // Without a wildcard the entry is exactly one stream: there is no cap to reach and nothing to evict.
                    errors.Add($"{key.Path}: only applies to a Topic with a wildcard ('+' or '#'), which makes one stream per matching topic; '{topic}' is a single stream");
                }

                // A list written as keys (Pins:x instead of Pins:0) or a value written as a section.
                ConfigurationKeyChecker.CollectUnknownKeys(key, property.PropertyType, errors);
                continue;
            }

            var takenBy = KeysByKind.Where(k => k.Value.Contains(key.Key)).Select(k => k.Key).Order().ToList();
            if (takenBy.Count == 0)
            {
                errors.Add($"{key.Path}: unknown key (known keys of Kind {kind}: {string.Join(", ", properties.Values.Select(p => p.Name))})");
                continue;
            }

            var hint = SameJobKeys.FirstOrDefault(g => g.Values.Contains(key.Key, StringComparer.OrdinalIgnoreCase)) is { } group
                && group.TryGetValue(kind, out var own)
                ? $"; {kind} uses {own}"
                : string.Empty;
            errors.Add($"{key.Path}: not used by Kind {kind} (it is for {JoinKinds(takenBy)}{hint})");
        }
    }

    /// <summary>The Kind the source binds to: its Kind key, or the default when there is none. False for a value that is no Kind.</summary>
    private static bool TryGetKind(IConfigurationSection source, out SensorSourceKind kind)
    {
        var value = source[nameof(SensorSourceOptions.Kind)];
        if (string.IsNullOrWhiteSpace(value))
        {
            kind = SensorSourceKinds.DefaultKind;
            return true;
        }

        // Read as the binder reads enums (names case-insensitively, or numbers); a value that is no Kind is the binder's error to report.
        return Enum.TryParse(value, ignoreCase: true, out kind) && Enum.IsDefined(kind);
    }

    private static string JoinKinds(List<SensorSourceKind> kinds) =>
        kinds.Count == 1 ? kinds[0].ToString() : $"{string.Join(", ", kinds.Take(kinds.Count - 1))} and {kinds[^1]}";

    private static HashSet<string> Keys(params IEnumerable<string> names) => new(names, StringComparer.OrdinalIgnoreCase);
}
