using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.Configuration;

namespace EdgeRunner.Service.Configuration;

/// <summary>
/// Which <c>Sensors:{id}:Source</c> keys each source <see cref="SensorSourceKind"/> reads, and the check that
/// refuses the others. <see cref="SensorSourceOptions"/> is one flat class shared by every Kind, so
/// <see cref="ConfigurationKeyChecker"/> accepts any of its keys on any source, and each Kind's validator only
/// looks at its own keys: a key meant for another Kind (<c>TimestampField</c>, the Mqtt name, on a Serial
/// source) would bind and then be ignored without a word. The check reads the keys present in the
/// configuration, never the bound values: a property left at its default is not something the user wrote.
/// </summary>
internal static class SensorSourceKeyChecker
{
    private static readonly SensorSourceKind DefaultKind = new SensorSourceOptions().Kind;

    /// <summary>Keys every Kind reads.</summary>
    public static IReadOnlySet<string> CommonKeys { get; } = Keys(nameof(SensorSourceOptions.Kind), nameof(SensorSourceOptions.SampleRateHz));

    /// <summary>Keys each Kind reads besides <see cref="CommonKeys"/> (README's <c>Sensors:{id}</c> table, which a unit test holds it to).</summary>
    public static IReadOnlyDictionary<SensorSourceKind, IReadOnlySet<string>> KeysByKind { get; } = new Dictionary<SensorSourceKind, IReadOnlySet<string>>
    {
        [SensorSourceKind.SimulatedVibration] = Keys(nameof(SensorSourceOptions.Seed)),
        [SensorSourceKind.Csv] = Keys(
            nameof(SensorSourceOptions.Path), nameof(SensorSourceOptions.Columns), nameof(SensorSourceOptions.TimestampColumn),
            nameof(SensorSourceOptions.Speed), nameof(SensorSourceOptions.Loop)),
        [SensorSourceKind.I2c] = Keys(
            nameof(SensorSourceOptions.Chip), nameof(SensorSourceOptions.BusId), nameof(SensorSourceOptions.Address), nameof(SensorSourceOptions.RangeG),
            nameof(SensorSourceOptions.DeviceLostSeconds)),
        [SensorSourceKind.Gpio] = Keys(
            nameof(SensorSourceOptions.Pins), nameof(SensorSourceOptions.GpioChip), nameof(SensorSourceOptions.Edge),
            nameof(SensorSourceOptions.Pull), nameof(SensorSourceOptions.DebounceMs), nameof(SensorSourceOptions.DeviceLostSeconds)),
        [SensorSourceKind.Audio] = Keys(
            nameof(SensorSourceOptions.Path), nameof(SensorSourceOptions.Speed), nameof(SensorSourceOptions.Loop),
            nameof(SensorSourceOptions.Device), nameof(SensorSourceOptions.Backend), nameof(SensorSourceOptions.Channels)),
        [SensorSourceKind.Serial] = Keys(
            nameof(SensorSourceOptions.Port), nameof(SensorSourceOptions.BaudRate), nameof(SensorSourceOptions.Columns),
            nameof(SensorSourceOptions.TimestampColumn)),
        [SensorSourceKind.Mqtt] = Keys(
            nameof(SensorSourceOptions.Topic), nameof(SensorSourceOptions.Format), nameof(SensorSourceOptions.Columns),
            nameof(SensorSourceOptions.TimestampField), nameof(SensorSourceOptions.QueueCapacity), nameof(SensorSourceOptions.MaxPayloadBytes),
            nameof(SensorSourceOptions.MaxStreams), nameof(SensorSourceOptions.IdleTimeoutSeconds)),
    };

    /// <summary>Mqtt keys that only mean something when the Topic has a wildcard (one stream per matching topic).</summary>
    public static IReadOnlySet<string> WildcardOnlyKeys { get; } = Keys(nameof(SensorSourceOptions.MaxStreams), nameof(SensorSourceOptions.IdleTimeoutSeconds));

    // Keys that do the same job under different kinds: the classic mix-ups (the Mqtt TimestampField on a
    // Serial source, the Audio Device on an I2c source). A foreign key found in a group gets the hint
    // "{Kind} uses {its own key}". A key belongs to at most one group.
    private static readonly IReadOnlyDictionary<SensorSourceKind, string>[] SameJobKeys =
    [
        // The sample's own time.
        new Dictionary<SensorSourceKind, string>
        {
            [SensorSourceKind.Csv] = nameof(SensorSourceOptions.TimestampColumn),
            [SensorSourceKind.Serial] = nameof(SensorSourceOptions.TimestampColumn),
            [SensorSourceKind.Mqtt] = nameof(SensorSourceOptions.TimestampField),
        },

        // Which device is opened.
        new Dictionary<SensorSourceKind, string>
        {
            [SensorSourceKind.Audio] = nameof(SensorSourceOptions.Device),
            [SensorSourceKind.I2c] = nameof(SensorSourceOptions.Chip),
            [SensorSourceKind.Gpio] = nameof(SensorSourceOptions.GpioChip),
            [SensorSourceKind.Serial] = nameof(SensorSourceOptions.Port),
        },

        // Which channels are delivered.
        new Dictionary<SensorSourceKind, string>
        {
            [SensorSourceKind.Csv] = nameof(SensorSourceOptions.Columns),
            [SensorSourceKind.Serial] = nameof(SensorSourceOptions.Columns),
            [SensorSourceKind.Mqtt] = nameof(SensorSourceOptions.Columns),
            [SensorSourceKind.Gpio] = nameof(SensorSourceOptions.Pins),
            [SensorSourceKind.Audio] = nameof(SensorSourceOptions.Channels),
        },
    ];

    /// <summary>
    /// Appends one message per key under <c>{sensors}:{id}:Source</c> that the stream's Kind does not read,
    /// naming the full key and the kinds that take it, and per <see cref="WildcardOnlyKeys"/> key on an Mqtt
    /// source whose Topic has no wildcard. Keys no Kind reads are left to <see cref="ConfigurationKeyChecker"/>
    /// (reported there as unknown), and a Kind that is not one is left to the binder.
    /// </summary>
    public static void CollectKeysOfOtherKinds(IConfigurationSection sensors, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(sensors);
        ArgumentNullException.ThrowIfNull(errors);
        foreach (var stream in sensors.GetChildren())
        {
            var source = stream.GetSection(nameof(SensorStreamOptions.Source));
            if (!TryGetKind(source, out var kind))
            {
                continue;
            }

            var topic = source[nameof(SensorSourceOptions.Topic)];
            foreach (var key in source.GetChildren())
            {
                if (CommonKeys.Contains(key.Key) || KeysByKind[kind].Contains(key.Key))
                {
                    if (kind == SensorSourceKind.Mqtt && WildcardOnlyKeys.Contains(key.Key)
                        && !string.IsNullOrWhiteSpace(topic) && !MqttTopicFilter.HasWildcard(topic))
                    {
                        // Without a wildcard the entry is exactly one stream: there is no cap to reach and nothing to evict.
                        errors.Add($"{key.Path}: only applies to a Topic with a wildcard ('+' or '#'), which makes one stream per matching topic; '{topic}' is a single stream");
                    }

                    continue;
                }

                var takenBy = KeysByKind.Where(k => k.Value.Contains(key.Key)).Select(k => k.Key).Order().ToList();
                if (takenBy.Count == 0)
                {
                    continue;
                }

                var hint = SameJobKeys.FirstOrDefault(g => g.Values.Contains(key.Key, StringComparer.OrdinalIgnoreCase)) is { } group
                    && group.TryGetValue(kind, out var own)
                    ? $"; {kind} uses {own}"
                    : string.Empty;
                errors.Add($"{key.Path}: not used by Kind {kind} (it is for {JoinKinds(takenBy)}{hint})");
            }
        }
    }

    /// <summary>The Kind the source binds to: its Kind key, or the default when there is none. False for a value that is no Kind.</summary>
    private static bool TryGetKind(IConfigurationSection source, out SensorSourceKind kind)
    {
        var value = source[nameof(SensorSourceOptions.Kind)];
        if (string.IsNullOrWhiteSpace(value))
        {
            kind = DefaultKind;
            return true;
        }

        // Read as the binder reads enums (names case-insensitively, or numbers); a value that is no Kind is the binder's error to report.
        return Enum.TryParse(value, ignoreCase: true, out kind) && Enum.IsDefined(kind);
    }

    private static string JoinKinds(List<SensorSourceKind> kinds) =>
        kinds.Count == 1 ? kinds[0].ToString() : $"{string.Join(", ", kinds.Take(kinds.Count - 1))} and {kinds[^1]}";

    private static HashSet<string> Keys(params string[] names) => new(names, StringComparer.OrdinalIgnoreCase);
}
