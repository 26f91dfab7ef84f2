using EdgeRunner.Service.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.UnitTests;

/// <summary>
/// The collector behind the Prometheus endpoint, the health message and bench-pipeline: percentiles from its fine
/// buckets are within 8 % of the exact ones, a histogram record allocates nothing in steady state, and the text
/// format has OpenTelemetry's names, cumulative buckets that end at the count, and escaped label values.
/// </summary>
public sealed class PrometheusTextTests
{
    private static ServiceProvider NewServices() =>
        new ServiceCollection().AddMetrics().AddSingleton<EdgeRunnerMetrics>().AddSingleton<MetricsCollector>().BuildServiceProvider();

    [Fact]
    public void Percentiles_from_the_fine_buckets_are_within_8_percent_above_the_exact_ones()
    {
        var random = new Random(7);
        // Log-normal around 5 ms: the shape of real latencies, from well under 1 ms to a few hundred.
        var values = Enumerable.Range(0, 20000).Select(_ => Math.Exp(Math.Log(5) + (random.NextDouble() - 0.5) * 6)).ToArray();
        var fine = new long[MetricsCollector.FineBucketCount];
        foreach (var v in values)
        {
            fine[MetricsCollector.FineIndex(v)]++;
        }

        var sorted = values.Order().ToArray();
        foreach (var q in new[] { 0.5, 0.9, 0.99 })
        {
            var exact = sorted[(int)Math.Ceiling(q * sorted.Length) - 1];
            var estimate = MetricsCollector.Percentile(fine, null, q)!.Value;
            Assert.InRange(estimate, exact, exact * MetricsCollector.FineGrowth * 1.0001);
        }

        // Relative to an earlier copy: only what came since counts.
        var before = (long[])fine.Clone();
        fine[MetricsCollector.FineIndex(1000)] += 10;
        Assert.InRange(MetricsCollector.Percentile(fine, before, 0.5)!.Value, 1000, 1000 * MetricsCollector.FineGrowth);
        Assert.Null(MetricsCollector.Percentile(before, before, 0.5));
    }

    [Fact]
    public void A_histogram_record_with_the_collector_listening_allocates_nothing_in_steady_state()
    {
        using var services = NewServices();
        var metrics = services.GetRequiredService<EdgeRunnerMetrics>();
        _ = services.GetRequiredService<MetricsCollector>();
        var value = 0.0;

        AllocationAssert.SteadyStateIsZero(() =>
        {
            value = value > 100 ? 0.1 : value + 1.3;
            metrics.RecordInference(EdgeRunnerMetrics.CameraTag, "yard", value);
            metrics.RecordResultLatency("yard", value * 2);
        });
    }

    [Fact]
    public void The_text_format_names_counters_gauges_and_histograms_as_opentelemetry_does()
    {
        using var services = NewServices();
        var metrics = services.GetRequiredService<EdgeRunnerMetrics>();
        var collector = services.GetRequiredService<MetricsCollector>();
        long frames = 41;
        metrics.Meter.CreateObservableCounter("edgerunner.frames.captured", () => new System.Diagnostics.Metrics.Measurement<long>(frames, new KeyValuePair<string, object?>("camera", "gate \"A\"\\1")), "{frame}", "Frames");
        metrics.Meter.CreateObservableUpDownCounter("edgerunner.mqtt.queued", () => 3L, "{message}");
        foreach (var ms in new[] { 0.1, 0.3, 3, 7, 7, 12000 })
        {
            metrics.RecordInference(EdgeRunnerMetrics.StreamTag, "pump", ms);
        }

        frames++;
        var text = PrometheusText.Write(collector.Collect());
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Contains("# HELP edgerunner_frames_captured_total Frames", lines);
        Assert.Contains("# TYPE edgerunner_frames_captured_total counter", lines);
        Assert.Contains("edgerunner_frames_captured_total{camera=\"gate \\\"A\\\"\\\\1\"} 42", lines);
        Assert.Contains("# TYPE edgerunner_mqtt_queued gauge", lines);
        Assert.Contains("edgerunner_mqtt_queued 3", lines);
        Assert.Contains("# TYPE edgerunner_process_cpu_time_seconds_total counter", lines);
        Assert.Contains("# TYPE edgerunner_process_memory_usage_bytes gauge", lines);

        Assert.Contains("# TYPE edgerunner_inference_duration_milliseconds histogram", lines);
        var buckets = lines.Where(l => l.StartsWith("edgerunner_inference_duration_milliseconds_bucket{stream=\"pump\",le=", StringComparison.Ordinal)).ToList();
        Assert.Equal("edgerunner_inference_duration_milliseconds_bucket{stream=\"pump\",le=\"0.25\"} 1", buckets[0]);
        Assert.Contains("edgerunner_inference_duration_milliseconds_bucket{stream=\"pump\",le=\"5\"} 3", buckets);
        Assert.Contains("edgerunner_inference_duration_milliseconds_bucket{stream=\"pump\",le=\"10\"} 5", buckets);
        Assert.Contains("edgerunner_inference_duration_milliseconds_bucket{stream=\"pump\",le=\"5000\"} 5", buckets);
        Assert.Equal("edgerunner_inference_duration_milliseconds_bucket{stream=\"pump\",le=\"+Inf\"} 6", buckets[^1]);
        Assert.Contains("edgerunner_inference_duration_milliseconds_count{stream=\"pump\"} 6", lines);
        var sum = Assert.Single(lines, l => l.StartsWith("edgerunner_inference_duration_milliseconds_sum{stream=\"pump\"} ", StringComparison.Ordinal));
        Assert.Equal(12017.4, double.Parse(sum.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), 6);
    }
}
