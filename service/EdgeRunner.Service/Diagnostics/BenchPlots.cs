using System.Globalization;
using EdgeRunner.Service.Cli;

namespace EdgeRunner.Service.Diagnostics;

/// <summary>
/// The PNG plots of <c>edgerunner bench-pipeline --plots DIR</c>, drawn with ScottPlot (SkiaSharp underneath, headless):
/// the latency distribution of each stage per camera and per stream (share of records per 8 % bucket, on a log scale),
/// and with <c>--soak</c> RSS and CPU over time.
/// </summary>
internal static class BenchPlots
{
    private const int Width = 900;
    private const int Height = 500;

    /// <summary>Writes the plots of <paramref name="report"/> into <paramref name="directory"/> (created); returns their paths.</summary>
    public static IReadOnlyList<string> Write(string directory, BenchPipelineReport report)
    {
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        foreach (var camera in report.Cameras)
        {
            written.Add(Distribution(Path.Combine(directory, $"latency-camera-{Safe(camera.Camera)}.png"), $"camera {camera.Camera} ({camera.Model}, {camera.InferenceFps:0.0} inferences/s)", camera.Stages));
        }

        foreach (var stream in report.Streams)
        {
            written.Add(Distribution(Path.Combine(directory, $"latency-stream-{Safe(stream.Stream)}.png"), $"stream {stream.Stream} ({stream.Model}, {stream.StepsPerSecond:0.0} steps/s)", [stream.Step]));
        }

        if (report.Soak is { Samples.Count: > 1 } soak)
        {
            double[] t = [.. soak.Samples.Select(s => s.Seconds / 60)];
            written.Add(Line(Path.Combine(directory, "soak-rss.png"), "RSS over the soak", "minutes", "RSS, MiB", t, [.. soak.Samples.Select(s => s.RssBytes / 1048576.0)], $"slope {soak.RssSlopeMibPerHour:+0.000;-0.000} MiB/h, second half {soak.RssSlopeSecondHalfMibPerHour:+0.000;-0.000} MiB/h"));
            written.Add(Line(Path.Combine(directory, "soak-cpu.png"), "CPU over the soak", "minutes", "CPU, % of one core", t[1..], [.. soak.Samples.Skip(1).Select(s => s.CpuPercent)], $"mean {soak.CpuPercentMean:0.0} %"));
        }

        return written;
    }

    private static string Distribution(string path, string title, IReadOnlyList<StageLatency> stages)
    {
        var plot = new ScottPlot.Plot();
        foreach (var stage in stages)
        {
            var total = stage.FineBuckets.Sum();
            if (total == 0)
            {
                continue;
            }

            var first = Math.Max(0, IndexOf(stage.FineBuckets, b => b > 0) - 1);
            var last = Math.Min(stage.FineBuckets.Count - 1, LastIndexOf(stage.FineBuckets, b => b > 0) + 1);
            var xs = new double[last - first + 1];
            var ys = new double[xs.Length];
            for (var i = first; i <= last; i++)
            {
                xs[i - first] = Math.Log10(MetricsCollector.FineUpperBound(i));
                ys[i - first] = stage.FineBuckets[i] * 100.0 / total;
            }

            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = string.Create(CultureInfo.InvariantCulture, $"{stage.Stage}: p50 {stage.P50:0.00} ms, p99 {stage.P99:0.00} ms ({stage.Count})");
        }

        plot.Title(title);
        plot.XLabel("latency, log10(ms)");
        plot.YLabel("% of records per 8 % bucket");
        plot.ShowLegend();
        plot.SavePng(path, Width, Height);
        return path;
    }

    private static string Line(string path, string title, string x, string y, double[] xs, double[] ys, string legend)
    {
        var plot = new ScottPlot.Plot();
        var line = plot.Add.Scatter(xs, ys);
        line.LegendText = legend;
        plot.Title(title);
        plot.XLabel(x);
        plot.YLabel(y);
        plot.ShowLegend();
        plot.SavePng(path, Width, Height);
        return path;
    }

    private static int IndexOf(IReadOnlyList<long> values, Func<long, bool> predicate)
    {
        for (var i = 0; i < values.Count; i++)
        {
            if (predicate(values[i]))
            {
                return i;
            }
        }

        return 0;
    }

    private static int LastIndexOf(IReadOnlyList<long> values, Func<long, bool> predicate)
    {
        for (var i = values.Count - 1; i >= 0; i--)
        {
            if (predicate(values[i]))
            {
                return i;
            }
        }

        return values.Count - 1;
    }

    private static string Safe(string id) => string.Concat(id.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' ? ch : '_'));
}
