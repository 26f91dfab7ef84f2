using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using EdgeRunner.Hardware.Sensors.Simulation;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace EdgeRunner.UnitTests;

public sealed class VibrationSimulatorTests
{
    private const double Fs = 200;

    [Fact]
    public void Same_seed_gives_the_same_samples_whatever_the_block_size()
    {
        var a = Generate(new VibrationSimulator(7), 20_000, block: 20_000);
        var b = Generate(new VibrationSimulator(7), 20_000, block: 37);
        Assert.Equal(a.X, b.X);
        Assert.Equal(a.Y, b.Y);
        Assert.Equal(a.Z, b.Z);
        Assert.Equal(a.Truth, b.Truth);
    }

    [Fact]
    public void Different_seeds_give_different_machines_and_samples()
    {
        var a = new VibrationSimulator(7);
        var b = new VibrationSimulator(8);
        Assert.NotEqual(a.ShaftSpeedHz, b.ShaftSpeedHz);
        var sa = Generate(a, 2000);
        var sb = Generate(b, 2000);
        Assert.NotEqual(sa.X, sb.X);
        Assert.NotEqual(sa.Z, sb.Z);
    }

    [Fact]
    public void Interleaved_read_matches_planar_read()
    {
        var planar = Generate(new VibrationSimulator(3), 1000);
        var sim = new VibrationSimulator(3);
        var xyz = new float[3000];
        var truth = new MachineState[1000];
        sim.ReadInterleaved(xyz, truth);
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(planar.X[i], xyz[3 * i]);
            Assert.Equal(planar.Y[i], xyz[(3 * i) + 1]);
            Assert.Equal(planar.Z[i], xyz[(3 * i) + 2]);
        }

        Assert.Equal(planar.Truth, truth);
        Assert.Equal(1000, sim.SampleIndex);
    }

    [Fact]
    public void Mismatched_span_lengths_are_refused()
    {
        var sim = new VibrationSimulator(1);
        Assert.Throws<ArgumentException>(() => sim.Read(new float[10], new float[10], new float[9], new MachineState[10]));
        Assert.Throws<ArgumentException>(() => sim.ReadInterleaved(new float[29], new MachineState[10]));
    }

    [Fact]
    public void Gravity_is_on_z_and_normal_vibration_is_small()
    {
        var s = Generate(Constant(11, MachineState.Normal), 10_000);
        Assert.InRange(s.Z.Average(), 0.97, 1.03);
        Assert.InRange(s.X.Average(), -0.02, 0.02);
        Assert.InRange(Rms(s.X), 0.005, 0.1);
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void Imbalance_is_a_strong_1x_sinusoid_with_x_and_y_in_quadrature(int seed)
    {
        var normal = Generate(Constant(seed, MachineState.Normal), 4096);
        var fault = Generate(Constant(seed, MachineState.Imbalance), 4096);
        var f0 = new VibrationSimulator(seed).ShaftSpeedHz;

        var normal1x = BandFraction(normal.X, f0 * 0.9, f0 * 1.1);
        var fault1x = BandFraction(fault.X, f0 * 0.9, f0 * 1.1);
        var normalEnergy = BandEnergy(normal.X, f0 * 0.9, f0 * 1.1);
        var faultEnergy = BandEnergy(fault.X, f0 * 0.9, f0 * 1.1);
        Log($"seed {seed}: 1x fraction normal {normal1x:F3} imbalance {fault1x:F3}; 1x energy ratio {faultEnergy / normalEnergy:F1}");
        Assert.True(fault1x > 0.85, $"1x fraction {fault1x}");
        Assert.True(faultEnergy > 10 * normalEnergy);
        Assert.True(BandFraction(fault.Y, f0 * 0.9, f0 * 1.1) > 0.85);

        // A rotating force vector: X and Y are 90° apart, so they are uncorrelated although both are strong.
        var corr = Correlation(fault.X, fault.Y);
        Log($"seed {seed}: corr(x, y) = {corr:F3}");
        Assert.InRange(corr, -0.2, 0.2);
    }

    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    [InlineData(23)]
    public void Looseness_shows_harmonics_and_half_order_subharmonics_of_1x(int seed)
    {
        var normal = Generate(Constant(seed, MachineState.Normal), 4096);
        var fault = Generate(Constant(seed, MachineState.Looseness), 4096);
        var f0 = new VibrationSimulator(seed).ShaftSpeedHz;

        double Harmonics(float[] v) => new[] { 2.0, 3, 4 }.Sum(k => BandEnergy(v, f0 * k * 0.92, f0 * k * 1.08));
        double SubHarmonics(float[] v) => new[] { 0.5, 1.5, 2.5 }.Where(k => f0 * k * 1.08 < Fs / 2).Sum(k => BandEnergy(v, f0 * k * 0.92, f0 * k * 1.08));
        var h = Harmonics(fault.Z) / Harmonics(normal.Z);
        var sub = SubHarmonics(fault.Z) / SubHarmonics(normal.Z);
        var fraction = (Harmonics(fault.Z) + SubHarmonics(fault.Z)) / BandEnergy(fault.Z, 0.5, Fs / 2);
        var skew = Skewness(fault.Z);
        Log($"seed {seed}: harmonic energy ×{h:F0}, sub-harmonic ×{sub:F0}, harmonic fraction {fraction:F2}, skewness {skew:F2}");
        Assert.True(h > 5, $"harmonics ×{h}");
        Assert.True(sub > 5, $"sub-harmonics ×{sub}");
        Assert.True(fraction > 0.35, $"harmonic fraction {fraction}");

        // Imbalance at the same speed has almost no harmonic content: looseness is not just "more 1×".
        var imbalance = Generate(Constant(seed, MachineState.Imbalance), 4096);
        Assert.True(Harmonics(fault.X) / BandEnergy(fault.X, f0 * 0.9, f0 * 1.1) > 5 * Harmonics(imbalance.X) / BandEnergy(imbalance.X, f0 * 0.9, f0 * 1.1));
    }

    [Theory]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(33)]
    public void Bearing_wear_rings_the_resonance_at_the_defect_frequency(int seed)
    {
        var normal = Generate(Constant(seed, MachineState.Normal), 4096);
        var fault = Generate(Constant(seed, MachineState.BearingWear), 4096);
        var sim = new VibrationSimulator(seed);
        var fr = sim.ResonanceHz;

        var normalRes = BandEnergy(normal.X, fr - 10, fr + 10);
        var faultRes = BandEnergy(fault.X, fr - 10, fr + 10);
        var fraction = BandFraction(fault.X, fr - 10, fr + 10);
        var normalFraction = BandFraction(normal.X, fr - 10, fr + 10);
        var noiseRatio = BandEnergy(fault.X, 1, 6) / BandEnergy(normal.X, 1, 6);
        var fd = sim.BearingDefectOrder * sim.ShaftSpeedHz;
        Log($"seed {seed}: resonance {fr:F1} Hz energy ×{faultRes / normalRes:F0}, fraction {fraction:F2} (normal {normalFraction:F2}); low-band noise ×{noiseRatio:F1}; defect {sim.BearingDefectOrder:F2}× = {fd:F1} Hz; kurtosis {Kurtosis(fault.X):F2} vs {Kurtosis(normal.X):F2}");
        Assert.True(faultRes > 20 * normalRes, $"resonance energy ×{faultRes / normalRes}");
        Assert.True(fraction > 2 * normalFraction, $"resonance fraction {fraction} vs {normalFraction}");
        Assert.True(noiseRatio > 1.5, $"broadband noise ×{noiseRatio}");
        Assert.True(Math.Abs(sim.BearingDefectOrder - Math.Round(sim.BearingDefectOrder)) >= 0.15, "defect order is a harmonic of 1×");
    }

    [Theory]
    [InlineData(41)]
    [InlineData(42)]
    public void Truth_labels_follow_the_schedule(int seed)
    {
        var scenario = VibrationScenario.Default;
        var sim = new VibrationSimulator(seed, Fs, scenario);
        var n = (int)(3600 * Fs);
        var truth = new MachineState[n];
        var x = new float[1];
        var y = new float[1];
        var z = new float[1];
        var one = new MachineState[1];
        for (var i = 0; i < n; i++)
        {
            var announced = sim.CurrentState;
            sim.Read(x, y, z, one);
            Assert.Equal(announced, one[0]);
            truth[i] = one[0];
        }

        var segments = Segments(truth);
        Assert.True(segments.Count >= 30, $"{segments.Count} segments in an hour");
        Assert.Equal(3, segments.Select(s => s.State).Where(s => s != MachineState.Normal).Distinct().Count());
        for (var k = 1; k < segments.Count - 1; k++)
        {
            var (state, start, length) = segments[k];
            var seconds = length / Fs;
            if (state == MachineState.Normal)
            {
                Assert.InRange(seconds, scenario.MinNormalSeconds - 0.01, scenario.MaxNormalSeconds + 0.01);
                Assert.NotEqual(MachineState.Normal, segments[k - 1].State);
            }
            else
            {
                Assert.InRange(seconds, scenario.MinFaultSeconds - 0.01, scenario.MaxFaultSeconds + 0.01);
            }

            Assert.NotEqual(segments[k - 1].State, state);
            Assert.Equal(segments[k - 1].Start + segments[k - 1].Length, start);
        }
    }

    [Fact]
    public void Signal_changes_where_the_label_says_a_fault_starts()
    {
        // Imbalance onsets: 1× RMS on X rises from the 4 s before the onset to the 4 s after the ramp (≤ 3 s).
        var checkedOnsets = 0;
        for (var seed = 50; seed < 60; seed++)
        {
            var s = Generate(new VibrationSimulator(seed), (int)(1200 * Fs));
            foreach (var (state, start, length) in Segments(s.Truth))
            {
                if (state != MachineState.Imbalance || start < 4 * Fs || length < 7 * Fs || s.Truth[start - 1] != MachineState.Normal)
                {
                    continue;
                }

                var before = Rms(s.X.AsSpan(start - (int)(4 * Fs), (int)(4 * Fs)));
                var after = Rms(s.X.AsSpan(start + (int)(3 * Fs), (int)(4 * Fs)));
                Assert.True(after > 2 * before, $"seed {seed} onset at {start / Fs} s: rms {before} -> {after}");
                checkedOnsets++;
            }
        }

        Assert.True(checkedOnsets >= 3, $"only {checkedOnsets} normal→imbalance onsets");
    }

    [Fact]
    public void Bundled_lstm_gives_the_same_probabilities_step_by_step_and_detects_faults()
    {
        var dir = Path.Combine(RepoRoot(), "models", "bundled", "vibration-lstm");
        var modelPath = Path.Combine(dir, "model.onnx");
        // Committed to the repository: missing is a failure, never a skip.
        Assert.True(File.Exists(modelPath), $"{modelPath} is missing: it is committed (rebuild with models/build.sh).");

        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "model.json")));
        var stream = manifest.RootElement.GetProperty("stream");
        var chunk = stream.GetProperty("chunk_samples").GetInt32();
        var mean = stream.GetProperty("mean").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        var std = stream.GetProperty("std").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        var hidden = manifest.RootElement.GetProperty("inputs")[1].GetProperty("shape")[2].GetInt32();
        var labels = manifest.RootElement.GetProperty("labels").GetArrayLength();
        Assert.Equal(50, chunk);
        Assert.Equal(4, labels);

        // A seed far from the training (1000-1031), validation (3000-3003) and test (9000-9007) seeds.
        const int Steps = 2400; // 10 minutes
        var s = Generate(new VibrationSimulator(424_242), Steps * chunk);
        var x = new float[Steps * 3 * chunk];
        var chunkTruth = new int[Steps];
        for (var t = 0; t < Steps; t++)
        {
            for (var i = 0; i < chunk; i++)
            {
                var n = (t * chunk) + i;
                x[(((t * 3) + 0) * chunk) + i] = (s.X[n] - mean[0]) / std[0];
                x[(((t * 3) + 1) * chunk) + i] = (s.Y[n] - mean[1]) / std[1];
                x[(((t * 3) + 2) * chunk) + i] = (s.Z[n] - mean[2]) / std[2];
            }

            chunkTruth[t] = (int)s.Truth[((t + 1) * chunk) - 1];
        }

        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(modelPath, options);
        var h = new float[hidden];
        var c = new float[hidden];
        var whole = RunModel(session, x, Steps, chunk, ref h, ref c);

        h = new float[hidden];
        c = new float[hidden];
        var maxDiff = 0.0;
        for (var t = 0; t < Steps; t++)
        {
            var p = RunModel(session, x.AsSpan(t * 3 * chunk, 3 * chunk).ToArray(), 1, chunk, ref h, ref c);
            for (var k = 0; k < labels; k++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(p[k] - whole[(t * labels) + k]));
            }
        }

        var correct = 0;
        for (var t = 0; t < Steps; t++)
        {
            var best = 0;
            for (var k = 1; k < labels; k++)
            {
                if (whole[(t * labels) + k] > whole[(t * labels) + best])
                {
                    best = k;
                }
            }

            correct += best == chunkTruth[t] ? 1 : 0;
        }

        var accuracy = (double)correct / Steps;
        Log($"step-by-step vs whole max |diff| {maxDiff:E2}; accuracy {accuracy:P1} over {Steps} steps");
        Assert.True(maxDiff < 1e-4, $"step-by-step differs from whole-sequence by {maxDiff}");
        Assert.True(accuracy > 0.85, $"accuracy {accuracy}");
    }

    private static float[] RunModel(InferenceSession session, float[] x, int steps, int chunk, ref float[] h, ref float[] c)
    {
        var inputs = new[]
        {
            NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(x, [1, steps, 3, chunk])),
            NamedOnnxValue.CreateFromTensor("h0", new DenseTensor<float>(h, [1, 1, h.Length])),
            NamedOnnxValue.CreateFromTensor("c0", new DenseTensor<float>(c, [1, 1, c.Length])),
        };
        using var results = session.Run(inputs);
        float[]? probs = null;
        foreach (var r in results)
        {
            switch (r.Name)
            {
                case "probs": probs = r.AsTensor<float>().ToArray(); break;
                case "hn": h = r.AsTensor<float>().ToArray(); break;
                case "cn": c = r.AsTensor<float>().ToArray(); break;
                default: break;
            }
        }

        return probs!;
    }

    private static VibrationSimulator Constant(int seed, MachineState state) =>
        new(seed, Fs, new VibrationScenario { ConstantState = state });

    private static (float[] X, float[] Y, float[] Z, MachineState[] Truth) Generate(VibrationSimulator sim, int n, int block = 1000)
    {
        var x = new float[n];
        var y = new float[n];
        var z = new float[n];
        var truth = new MachineState[n];
        for (var i = 0; i < n; i += block)
        {
            var m = Math.Min(block, n - i);
            sim.Read(x.AsSpan(i, m), y.AsSpan(i, m), z.AsSpan(i, m), truth.AsSpan(i, m));
        }

        return (x, y, z, truth);
    }

    private static List<(MachineState State, int Start, int Length)> Segments(MachineState[] truth)
    {
        var list = new List<(MachineState, int, int)>();
        var start = 0;
        for (var i = 1; i <= truth.Length; i++)
        {
            if (i == truth.Length || truth[i] != truth[start])
            {
                list.Add((truth[start], start, i - start));
                start = i;
            }
        }

        return list;
    }

    /// <summary>Power spectrum (Hann window, mean removed) by direct DFT; bin k is at k·Fs/N Hz.</summary>
    private static double[] PowerSpectrum(float[] v)
    {
        var n = v.Length;
        var mean = v.Average();
        var w = new double[n];
        for (var i = 0; i < n; i++)
        {
            w[i] = (v[i] - mean) * (0.5 - (0.5 * Math.Cos(2 * Math.PI * i / n)));
        }

        var power = new double[(n / 2) + 1];
        for (var k = 0; k < power.Length; k++)
        {
            // Recurrence for e^{-i 2π k j / n}, re-anchored every 256 samples to bound rounding error.
            var sum = Complex.Zero;
            var step = Complex.FromPolarCoordinates(1, -2 * Math.PI * k / n);
            var rot = Complex.One;
            for (var j = 0; j < n; j++)
            {
                if ((j & 255) == 0)
                {
                    rot = Complex.FromPolarCoordinates(1, -2 * Math.PI * k * (double)j / n);
                }

                sum += w[j] * rot;
                rot *= step;
            }

            power[k] = sum.Magnitude * sum.Magnitude;
        }

        return power;
    }

    private static readonly ConditionalWeakTable<float[], double[]> SpectrumCache = [];

    private static double BandEnergy(float[] v, double fromHz, double toHz)
    {
        var p = SpectrumCache.GetValue(v, PowerSpectrum);
        var n = (p.Length - 1) * 2;
        var e = 0.0;
        for (var k = 1; k < p.Length; k++)
        {
            var f = k * Fs / n;
            if (f >= fromHz && f < toHz)
            {
                e += p[k];
            }
        }

        return e;
    }

    private static double BandFraction(float[] v, double fromHz, double toHz) => BandEnergy(v, fromHz, toHz) / BandEnergy(v, 0.1, Fs);

    private static double Rms(ReadOnlySpan<float> v)
    {
        var mean = 0.0;
        foreach (var s in v)
        {
            mean += s;
        }

        mean /= v.Length;
        var e = 0.0;
        foreach (var s in v)
        {
            e += (s - mean) * (s - mean);
        }

        return Math.Sqrt(e / v.Length);
    }

    private static double Correlation(float[] a, float[] b)
    {
        double ma = a.Average(), mb = b.Average(), sab = 0, saa = 0, sbb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            sab += (a[i] - ma) * (b[i] - mb);
            saa += (a[i] - ma) * (a[i] - ma);
            sbb += (b[i] - mb) * (b[i] - mb);
        }

        return sab / Math.Sqrt(saa * sbb);
    }

    private static double Moment(float[] v, int order)
    {
        var m = v.Average();
        return v.Average(s => Math.Pow(s - m, order));
    }

    private static double Kurtosis(float[] v) => Moment(v, 4) / Math.Pow(Moment(v, 2), 2);

    private static double Skewness(float[] v) => Moment(v, 3) / Math.Pow(Moment(v, 2), 1.5);

    private static void Log(string message) => TestContext.Current.TestOutputHelper?.WriteLine(message);

    private static string RepoRoot([CallerFilePath] string path = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, "..", ".."));
}
