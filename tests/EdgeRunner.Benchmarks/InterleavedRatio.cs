using System.Diagnostics;
using System.Globalization;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// EdgeRunner vs plain ONNX Runtime on the demo detector, measured interleaved: each round times
/// <c>frames</c> consecutive calls of every variant, in a rotating order, so load changes on a shared
/// machine hit both sides alike; the ratio is the median of per-round ratios. Not a BenchmarkDotNet run.
/// </summary>
internal static class InterleavedRatio
{
    public static void Run(int rounds, int frames, TextWriter output)
    {
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# Interleaved A/B, {rounds} rounds x {frames} frames per variant; load {File.ReadAllText("/proc/loadavg").Trim()}"));
        output.WriteLine("| Threads | Variant | Median us/frame | Frames/s | EdgeRunner/ORT throughput ratio (median of rounds) |");
        output.WriteLine("|---:|---|---:|---:|---:|");
        foreach (var threads in new[] { 1, 2 })
        {
            using var rig = new VisionRig(threads);
            (string Name, Action Call)[] variants =
            [
                ("ORT InferenceSession.Run", () => rig.OrtInference()),
                ("EdgeRunner ModelSession.Run", rig.Inference),
                ("ORT frame (pre + Run + decode)", () => rig.OrtPipeline()),
                ("EdgeRunner frame (pre + Run + decode)", () => rig.Pipeline()),
            ];
            foreach (var (_, call) in variants)
            {
                for (var i = 0; i < frames; i++)
                {
                    call(); // warm-up (tiering, caches)
                }
            }

            var perFrame = new double[variants.Length][];
            for (var v = 0; v < variants.Length; v++)
            {
                perFrame[v] = new double[rounds];
            }

            for (var r = 0; r < rounds; r++)
            {
                for (var k = 0; k < variants.Length; k++)
                {
                    var v = (r + k) % variants.Length;
                    var call = variants[v].Call;
                    var start = Stopwatch.GetTimestamp();
                    for (var i = 0; i < frames; i++)
                    {
                        call();
                    }

                    perFrame[v][r] = Stopwatch.GetElapsedTime(start).TotalMicroseconds / frames;
                }
            }

            for (var v = 0; v < variants.Length; v++)
            {
                var median = Median(perFrame[v]);
                // Throughput ratio of EdgeRunner (odd rows) to ORT (the even row before it) = ORT time / EdgeRunner time.
                var ratio = v % 2 == 1 ? Median([.. Enumerable.Range(0, rounds).Select(r => perFrame[v - 1][r] / perFrame[v][r])]) : double.NaN;
                output.WriteLine(string.Create(
                    CultureInfo.InvariantCulture,
                    $"| {threads} | {variants[v].Name} | {median:F1} | {1e6 / median:F0} | {(double.IsNaN(ratio) ? "" : ratio.ToString("F3", CultureInfo.InvariantCulture))} |"));
            }
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# load after: {File.ReadAllText("/proc/loadavg").Trim()}"));
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
