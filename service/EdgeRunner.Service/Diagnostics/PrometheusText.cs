using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace EdgeRunner.Service.Diagnostics;

/// <summary>
/// Writes a <see cref="MetricsSnapshot"/> in the Prometheus text exposition format (version 0.0.4). Names follow
/// OpenTelemetry's Prometheus mapping: dots become underscores, the unit is appended (<c>s</c> → <c>_seconds</c>,
/// <c>By</c> → <c>_bytes</c>, <c>ms</c> → <c>_milliseconds</c>; annotations like <c>{frame}</c> add nothing), and
/// counters end in <c>_total</c>: <c>edgerunner.frames.captured</c> is <c>edgerunner_frames_captured_total{camera="yard"}</c>.
/// </summary>
internal static class PrometheusText
{
    /// <summary>The Content-Type of the text format.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>The exposition of <paramref name="snapshot"/>: HELP and TYPE once per metric, then its samples.</summary>
    public static string Write(MetricsSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var s = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        foreach (var group in snapshot.Values.GroupBy(v => v.Instrument).OrderBy(g => g.Key.Name, StringComparer.Ordinal))
        {
            var instrument = group.Key;
            var counter = IsCounter(instrument);
            var name = MetricName(instrument) + (counter ? "_total" : string.Empty);
            WriteHeader(s, name, instrument, counter ? "counter" : "gauge");
            foreach (var value in group)
            {
                s.Append(name);
                WriteLabels(s, value.Tags, null);
                s.Append(' ').Append(Number(value.Value)).Append('\n');
            }
        }

        foreach (var group in snapshot.Histograms.GroupBy(h => h.Instrument).OrderBy(g => g.Key.Name, StringComparer.Ordinal))
        {
            var name = MetricName(group.Key);
            WriteHeader(s, name, group.Key, "histogram");
            foreach (var series in group)
            {
                long cumulative = 0;
                for (var i = 0; i <= series.Bounds.Length; i++)
                {
                    cumulative += series.Buckets[i];
                    s.Append(name).Append("_bucket");
                    WriteLabels(s, series.Tags, i < series.Bounds.Length ? Number(series.Bounds[i]) : "+Inf");
                    s.Append(' ').Append(cumulative.ToString(c)).Append('\n');
                }

                s.Append(name).Append("_sum");
                WriteLabels(s, series.Tags, null);
                s.Append(' ').Append(Number(series.Sum)).Append('\n');
                s.Append(name).Append("_count");
                WriteLabels(s, series.Tags, null);
                s.Append(' ').Append(series.Count.ToString(c)).Append('\n');
            }
        }

        return s.ToString();
    }

    /// <summary>The metric's name without the counter suffix: <c>edgerunner_inference_duration_milliseconds</c>.</summary>
    internal static string MetricName(Instrument instrument)
    {
        var name = Sanitize(instrument.Name);
        var unit = instrument.Unit switch
        {
            "s" => "seconds",
            "ms" => "milliseconds",
            "By" => "bytes",
            "1" or null or "" => null,
            { } u when u.StartsWith('{') => null,
            { } u => Sanitize(u),
        };
        return unit is null || name.EndsWith("_" + unit, StringComparison.Ordinal) ? name : $"{name}_{unit}";
    }

    private static bool IsCounter(Instrument instrument)
    {
        var type = instrument.GetType();
        return type.IsGenericType && (type.GetGenericTypeDefinition() == typeof(ObservableCounter<>) || type.GetGenericTypeDefinition() == typeof(Counter<>));
    }

    private static void WriteHeader(StringBuilder s, string name, Instrument instrument, string type)
    {
        if (!string.IsNullOrEmpty(instrument.Description))
        {
            s.Append("# HELP ").Append(name).Append(' ').Append(instrument.Description.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        }

        s.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
    }

    private static void WriteLabels(StringBuilder s, KeyValuePair<string, string?>[] tags, string? le)
    {
        if (tags.Length == 0 && le is null)
        {
            return;
        }

        s.Append('{');
        var first = true;
        foreach (var (key, value) in tags)
        {
            s.Append(first ? string.Empty : ",").Append(Sanitize(key)).Append("=\"").Append(EscapeLabel(value ?? string.Empty)).Append('"');
            first = false;
        }

        if (le is not null)
        {
            s.Append(first ? string.Empty : ",").Append("le=\"").Append(le).Append('"');
        }

        s.Append('}');
    }

    private static string Number(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf" : double.IsNaN(value) ? "NaN" : value.ToString("R", CultureInfo.InvariantCulture);

    private static string EscapeLabel(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>Every character outside <c>[a-zA-Z0-9_]</c> becomes <c>_</c> (names and label names allow no more).</summary>
    private static string Sanitize(string name)
    {
        var chars = name.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!(char.IsAsciiLetterOrDigit(chars[i]) || chars[i] == '_'))
            {
                chars[i] = '_';
            }
        }

        return new string(chars);
    }
}
