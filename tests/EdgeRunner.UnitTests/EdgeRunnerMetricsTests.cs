using System.Diagnostics.Metrics;
using EdgeRunner.Service.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.UnitTests;

/// <summary>
/// The daemon's meter made through a meter factory of the test's own (as each host makes its own): named
/// <c>EdgeRunner</c>, its histograms recorded per camera or stream, and recording allocates nothing, with or
/// without a listener, so the per-frame and per-step paths stay at 0 B.
/// </summary>
public sealed class EdgeRunnerMetricsTests
{
    private static ServiceProvider NewServices() => new ServiceCollection().AddMetrics().AddSingleton<EdgeRunnerMetrics>().BuildServiceProvider();

    [Fact]
    public void Each_meter_factory_has_its_own_EdgeRunner_meter()
    {
        using var a = NewServices();
        using var b = NewServices();
        var meterA = a.GetRequiredService<EdgeRunnerMetrics>().Meter;
        var meterB = b.GetRequiredService<EdgeRunnerMetrics>().Meter;

        Assert.Equal("EdgeRunner", meterA.Name);
        Assert.Equal("EdgeRunner", meterB.Name);
        Assert.NotSame(meterA, meterB);
        Assert.Same(a.GetRequiredService<IMeterFactory>(), meterA.Scope);
    }

    [Fact]
    public void Histograms_are_recorded_with_the_camera_or_stream_tag_and_the_process_gauges_read()
    {
        using var services = NewServices();
        var metrics = services.GetRequiredService<EdgeRunnerMetrics>();
        var seen = new List<(string Instrument, double Value, string Tags)>();
        using var listener = Listen(metrics.Meter, (instrument, value, tags) => seen.Add((instrument.Name, value, string.Join(",", tags.ToArray().Select(t => $"{t.Key}={t.Value}")))));

        metrics.RecordInference(EdgeRunnerMetrics.CameraTag, "yard", 12.5);
        metrics.RecordInference(EdgeRunnerMetrics.StreamTag, "pump", 0.75);
        metrics.RecordResultLatency("yard", 40);
        listener.RecordObservableInstruments();

        Assert.Contains(("edgerunner.inference.duration", 12.5, "camera=yard"), seen);
        Assert.Contains(("edgerunner.inference.duration", 0.75, "stream=pump"), seen);
        Assert.Contains(("edgerunner.result.latency", 40.0, "camera=yard"), seen);
        Assert.Contains(seen, s => s.Instrument == "edgerunner.process.cpu.time" && s.Value > 0);
        Assert.Contains(seen, s => s.Instrument == "edgerunner.process.memory.usage" && s.Value > 0);
    }

    [Fact]
    public void Recording_allocates_nothing_without_a_listener()
    {
        using var services = NewServices();
        var metrics = services.GetRequiredService<EdgeRunnerMetrics>();

        AllocationAssert.SteadyStateIsZero(() =>
        {
            metrics.RecordInference(EdgeRunnerMetrics.CameraTag, "yard", 12.5);
            metrics.RecordResultLatency("yard", 40);
        });
    }

    [Fact]
    public void Recording_allocates_nothing_with_a_listener()
    {
        using var services = NewServices();
        var metrics = services.GetRequiredService<EdgeRunnerMetrics>();
        double sum = 0;
        using var listener = Listen(metrics.Meter, (_, value, _) => sum += value);

        AllocationAssert.SteadyStateIsZero(() =>
        {
            metrics.RecordInference(EdgeRunnerMetrics.StreamTag, "pump", 1);
            metrics.RecordResultLatency("yard", 1);
        });
        Assert.True(sum > 0);
    }

    private delegate void OnMeasurement(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags);

    /// <summary>A listener to <paramref name="meter"/> only (other tests' meters share its name).</summary>
    private static MeterListener Listen(Meter meter, OnMeasurement onMeasurement)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter == meter)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => onMeasurement(instrument, value, tags));
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => onMeasurement(instrument, value, tags));
        listener.Start();
        return listener;
    }
}
