using System.Diagnostics.Metrics;

namespace EdgeRunner.Service.Diagnostics;

/// <summary>
/// Listens to this host's <see cref="EdgeRunnerMetrics.Meter"/> (no other host's meter of the same name) and keeps
/// what the Prometheus endpoint, the health message and <c>edgerunner bench-pipeline</c> read: each histogram's
/// cumulative buckets, sum and count per tag set, and on <see cref="Collect"/> one reading of every observable
/// instrument. Made only when one of those is used (the container creates it on first resolve): until then the
/// histograms have no listener and recording into them costs nothing.
/// </summary>
/// <remarks>
/// A histogram record (once per frame or sensor step) takes a lock and adds to arrays that exist from the first
/// record of its tag set on, so steady state allocates nothing. Besides the advised Prometheus buckets, each
/// series keeps fine logarithmic buckets (8 % wide) from which percentiles are read: within 8 % of the true value,
/// which is plenty for p50/p99 in a health message, at a fixed 3 KiB per series.
/// </remarks>
internal sealed class MetricsCollector : IDisposable
{
    /// <summary>Upper bound of the first fine bucket, in the histogram's unit (0.001 ms; 1 µs for the histograms in seconds).</summary>
    internal const double FineMinimum = 1e-6;

    /// <summary>Each fine bucket's upper bound is this times the previous one's.</summary>
    internal const double FineGrowth = 1.08;

    /// <summary>Fine buckets: from 1e-6 to about 1e6 in 8 % steps (a histogram in ms or in s); larger values land in the last.</summary>
    internal const int FineBucketCount = 362;

    // OpenTelemetry's default boundaries, for a histogram created without advice.
    private static readonly double[] DefaultBounds = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];
    private static readonly double LogGrowth = Math.Log(FineGrowth);

    private readonly Meter _meter;
    private readonly MeterListener _listener;
    private readonly Lock _lock = new();
    private readonly Dictionary<(Instrument Instrument, string Key, string Value, string Second), HistogramSeries> _histograms = [];
    private readonly List<ObservedValue> _observed = [];
    private bool _collecting;

    /// <summary>Starts listening to <paramref name="metrics"/>' meter.</summary>
    public MetricsCollector(EdgeRunnerMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        _meter = metrics.Meter;
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter == _meter)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _listener.SetMeasurementEventCallback<double>(OnMeasurement);
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, state) => OnMeasurement(instrument, value, tags, state));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, state) => OnMeasurement(instrument, value, tags, state));
        _listener.Start();
    }

    /// <summary>Reads every observable instrument once and copies every histogram: one consistent view.</summary>
    public MetricsSnapshot Collect()
    {
        lock (_lock)
        {
            _observed.Clear();
            _collecting = true;
            try
            {
                _listener.RecordObservableInstruments();
            }
            finally
            {
                _collecting = false;
            }

            var histograms = new List<HistogramSnapshot>(_histograms.Count);
            foreach (var series in _histograms.Values)
            {
                histograms.Add(new HistogramSnapshot(series.Instrument, series.Tags, series.Bounds, (long[])series.Buckets.Clone(), series.Sum, series.Count, (long[])series.Fine.Clone()));
            }

            return new MetricsSnapshot([.. _observed], histograms);
        }
    }

    /// <summary>
    /// The value below which a fraction <paramref name="quantile"/> of the records counted in <paramref name="fine"/>
    /// fall (the upper bound of the fine bucket it lies in), less those already in <paramref name="before"/> (an
    /// earlier copy of the same series, for the figures of an interval); null without records.
    /// </summary>
    public static double? Percentile(long[] fine, long[]? before, double quantile)
    {
        ArgumentNullException.ThrowIfNull(fine);
        long total = 0;
        for (var i = 0; i < fine.Length; i++)
        {
            total += fine[i] - (before?[i] ?? 0);
        }

        if (total <= 0)
        {
            return null;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(quantile * total));
        long seen = 0;
        for (var i = 0; i < fine.Length; i++)
        {
            seen += fine[i] - (before?[i] ?? 0);
            if (seen >= rank)
            {
                return FineUpperBound(i);
            }
        }

        return FineUpperBound(fine.Length - 1);
    }

    /// <summary>The upper bound of fine bucket <paramref name="index"/>.</summary>
    internal static double FineUpperBound(int index) => FineMinimum * Math.Pow(FineGrowth, index);

    /// <summary>The fine bucket <paramref name="value"/> falls in.</summary>
    internal static int FineIndex(double value)
    {
        if (!(value > FineMinimum))
        {
            return 0;
        }

        // A hair below the exact power so that a bound itself lands in its own bucket, not the next.
        var index = (int)Math.Ceiling((Math.Log(value / FineMinimum) / LogGrowth) - 1e-9);
        return Math.Min(FineBucketCount - 1, index);
    }

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();

    private void OnMeasurement(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        if (instrument.IsObservable)
        {
            // Only during Collect, which holds the lock.
            if (_collecting)
            {
                _observed.Add(new ObservedValue(instrument, value, CopyTags(tags)));
            }

            return;
        }

        if (instrument is not Histogram<double> histogram)
        {
            return;
        }

        // The daemon's histograms carry one tag (the camera or the stream), or two (the publish timing's kind and id):
        // the first pair and the second value key the series.
        var key = (instrument, tags.Length > 0 ? tags[0].Key : string.Empty, tags.Length > 0 ? tags[0].Value as string ?? string.Empty : string.Empty, tags.Length > 1 ? tags[1].Value as string ?? string.Empty : string.Empty);
        lock (_lock)
        {
            if (!_histograms.TryGetValue(key, out var series))
            {
                var bounds = histogram.Advice?.HistogramBucketBoundaries is { Count: > 0 } advised ? [.. advised] : DefaultBounds;
                series = new HistogramSeries(instrument, CopyTags(tags), bounds);
                _histograms[key] = series;
            }

            series.Add(value);
        }
    }

    private static KeyValuePair<string, string?>[] CopyTags(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
        {
            return [];
        }

        var copy = new KeyValuePair<string, string?>[tags.Length];
        for (var i = 0; i < tags.Length; i++)
        {
            copy[i] = new KeyValuePair<string, string?>(tags[i].Key, Convert.ToString(tags[i].Value, System.Globalization.CultureInfo.InvariantCulture));
        }

        return copy;
    }

    /// <summary>One histogram's records for one tag set.</summary>
    private sealed class HistogramSeries(Instrument instrument, KeyValuePair<string, string?>[] tags, double[] bounds)
    {
        public Instrument Instrument { get; } = instrument;

        public KeyValuePair<string, string?>[] Tags { get; } = tags;

        /// <summary>Upper bounds of the Prometheus buckets (each counts values ≤ its bound); one more bucket counts the rest.</summary>
        public double[] Bounds { get; } = bounds;

        /// <summary>Counts per Prometheus bucket (not cumulative), the last for values above every bound.</summary>
        public long[] Buckets { get; } = new long[bounds.Length + 1];

        public long[] Fine { get; } = new long[FineBucketCount];

        public double Sum { get; private set; }

        public long Count { get; private set; }

        public void Add(double value)
        {
            var bucket = 0;
            while (bucket < Bounds.Length && value > Bounds[bucket])
            {
                bucket++;
            }

            Buckets[bucket]++;
            Fine[FineIndex(value)]++;
            Sum += value;
            Count++;
        }
    }
}

/// <summary>One <see cref="MetricsCollector.Collect"/>: every observable instrument's readings and a copy of every histogram series.</summary>
internal sealed record MetricsSnapshot(IReadOnlyList<ObservedValue> Values, IReadOnlyList<HistogramSnapshot> Histograms)
{
    /// <summary>The sum of <paramref name="instrument"/>'s readings whose tag <paramref name="tag"/> is <paramref name="id"/> (all of them when <paramref name="tag"/> is null); 0 when none.</summary>
    public double Sum(string instrument, string? tag = null, string? id = null)
    {
        double sum = 0;
        foreach (var value in Values)
        {
            if (value.Instrument.Name == instrument && (tag is null || value.Tag(tag) == id))
            {
                sum += value.Value;
            }
        }

        return sum;
    }

    /// <summary>The series of histogram <paramref name="instrument"/> for tag <paramref name="tag"/> = <paramref name="id"/>; null before its first record.</summary>
    public HistogramSnapshot? Histogram(string instrument, string tag, string id) =>
        Histograms.FirstOrDefault(h => h.Instrument.Name == instrument && h.Tag(tag) == id);
}

/// <summary>One reading of an observable instrument.</summary>
internal sealed record ObservedValue(Instrument Instrument, double Value, KeyValuePair<string, string?>[] Tags)
{
    /// <summary>The value of tag <paramref name="key"/>; null when absent.</summary>
    public string? Tag(string key) => Tags.FirstOrDefault(t => t.Key == key).Value;
}

/// <summary>A copy of one histogram series: Prometheus buckets (per bucket, not cumulative), sum, count and the fine buckets for percentiles.</summary>
internal sealed record HistogramSnapshot(Instrument Instrument, KeyValuePair<string, string?>[] Tags, double[] Bounds, long[] Buckets, double Sum, long Count, long[] Fine)
{
    /// <summary>The value of tag <paramref name="key"/>; null when absent.</summary>
    public string? Tag(string key) => Tags.FirstOrDefault(t => t.Key == key).Value;
}
