using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// Whether two MQTT topic filters can match the same topic. Ingest filters of different
/// <c>Sensors</c> entries must not: the broker delivers one copy of a message per matching
/// subscription and the daemon hands each copy to every matching handler, so overlapping routes ran
/// every sample several times (and two entries with the same exact topic overwrote each other).
/// </summary>
internal static class MqttFilterOverlap
{
    /// <summary>
    /// True when some topic matches both filters (both valid per <see cref="MqttTopicFilter.Problem"/>);
    /// <paramref name="example"/> is then one such topic ('+' against '+' shown as "x").
    /// '#' also matches its parent level (<c>a/#</c> matches <c>a</c>), as the MQTT spec says.
    /// </summary>
    public static bool Overlaps(string a, string b, out string example)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);

        // A filter starting with a wildcard matches no topic starting with '$' (MQTT 4.7.2): '#' and '$SYS/x' never meet.
        if ((IsWildcard(a) && b.StartsWith('$')) || (IsWildcard(b) && a.StartsWith('$')))
        {
            example = string.Empty;
            return false;
        }

        var x = a.Split('/');
        var y = b.Split('/');
        var levels = new List<string>(Math.Max(x.Length, y.Length));
        for (var i = 0; ; i++)
        {
            var xEnded = i >= x.Length;
            var yEnded = i >= y.Length;
            if ((!xEnded && x[i] == "#") || (!yEnded && y[i] == "#"))
            {
                // '#' takes whatever the other filter has left (zero levels included).
                var rest = !xEnded && x[i] == "#" ? y : x;
                levels.AddRange(rest.Skip(i).TakeWhile(l => l != "#").Select(l => l == "+" ? "x" : l));
                example = string.Join('/', levels);
                return true;
            }

            if (xEnded || yEnded)
            {
                example = string.Join('/', levels);
                return xEnded && yEnded;
            }

            if (x[i] != "+" && y[i] != "+" && !string.Equals(x[i], y[i], StringComparison.Ordinal))
            {
                example = string.Empty;
                return false;
            }

            levels.Add(x[i] != "+" ? x[i] : y[i] != "+" ? y[i] : "x");
        }
    }

    private static bool IsWildcard(string filter) => filter.StartsWith('#') || filter.StartsWith('+');

    /// <summary>Reports every enabled Kind Mqtt entry whose filter overlaps an earlier one's, naming both keys.</summary>
    public static void Validate(SensorsOptions sensors, ValidationErrors e)
    {
        var seen = new List<(string Id, string Filter)>();
        foreach (var (id, stream) in sensors)
        {
            if (!stream.Enabled || stream.Source.Kind != SensorSourceKind.Mqtt || MqttTopicFilter.Problem(MqttIngestRoute.IngestOf(stream).Topic) is not null)
            {
                continue;
            }

            var filter = MqttIngestRoute.IngestOf(stream).Topic;
            foreach (var (otherId, other) in seen)
            {
                if (Overlaps(filter, other, out var example))
                {
                    var why = string.Equals(filter, other, StringComparison.Ordinal) ? $"both are '{filter}'"
                        : string.Equals(example, other, StringComparison.Ordinal) ? $"'{filter}' matches '{other}'"
                        : string.Equals(example, filter, StringComparison.Ordinal) ? $"'{other}' matches '{filter}'"
                        : $"'{filter}' and '{other}' both match '{example}'";
                    e.Add($"Sensors:{id}:Source:Topic", $"overlaps Sensors:{otherId}:Source:Topic ({why}); a message must feed one stream only");
                }
            }

            seen.Add((id, filter));
        }
    }
}
