using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The daemon's meter seen from outside, as <c>dotnet-counters</c> would see it: an in-process daemon on the bundled
/// demo models (a synthetic camera on the shapes detector, a simulated machine on the vibration LSTM) with a real
/// mosquitto, read through a <see cref="MeterListener"/> that listens to this host's meter only.
/// </summary>
public sealed class MetricsTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    /// <summary>One measurement: the instrument, the value and its tags.</summary>
    private sealed record Reading(string Instrument, double Value, IReadOnlyDictionary<string, string?> Tags);

    [Fact]
    public async Task Frames_steps_and_published_messages_move_per_camera_and_stream_and_the_histograms_are_recorded()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("metrics", ct);
        await using var probe = await scenario.ProbeAsync("+/+/result", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject
                {
                    ["detector"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("shapes-detector") },
                    ["lstm"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("vibration-lstm") },
                },
                ["Cameras"] = new JsonObject
                {
                    ["yard"] = new JsonObject { ["Model"] = "detector", ["Fps"] = 10, ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 320, ["Height"] = 240, ["Seed"] = 3 } },
                },
                ["Sensors"] = new JsonObject
                {
                    ["pump"] = new JsonObject { ["Model"] = "lstm", ["Source"] = new JsonObject { ["Kind"] = "SimulatedVibration", ["Seed"] = 5 } },
                },
            },
            ct);
        var meter = host.Services.GetRequiredService<EdgeRunnerMetrics>().Meter;
        Assert.Equal(EdgeRunnerMetrics.MeterName, meter.Name);

        // Observable instruments' readings (one collection at a time) apart from the histograms' records (all kept).
        var readings = new ConcurrentQueue<Reading>();
        var histograms = new ConcurrentQueue<Reading>();
        using var listener = new MeterListener();
        // This host's meter only: other tests' daemons in this process have meters of the same name.
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == meter)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => readings.Enqueue(Read(instrument, value, tags)));
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => (instrument.IsObservable ? readings : histograms).Enqueue(Read(instrument, value, tags)));
        listener.Start();

        // Results of both on the broker, with the histograms enabled: their records are the listener's.
        await probe.WaitForAsync(m => m.Topic == scenario.Topic("vision/yard/result"), Wait, ct);
        await probe.WaitForAsync(m => m.Topic == scenario.Topic("sensors/pump/result"), Wait, ct);
        await WaitUntilAsync(() => histograms.Any(r => r.Instrument == "edgerunner.inference.duration" && r.Tags.ContainsKey("camera")), "no camera inference recorded", ct);
        await WaitUntilAsync(() => histograms.Any(r => r.Instrument == "edgerunner.inference.duration" && r.Tags.ContainsKey("stream")), "no sensor step recorded", ct);

        var first = Collect(listener, readings);
        // Counters move: wait for more frames, steps and acknowledged messages, then collect again.
        await WaitUntilAsync(
            () =>
            {
                var now = Collect(listener, readings);
                return Value(now, "edgerunner.frames.captured", "camera", "yard") > Value(first, "edgerunner.frames.captured", "camera", "yard")
                    && Value(now, "edgerunner.sensor.steps", "stream", "pump") > Value(first, "edgerunner.sensor.steps", "stream", "pump")
                    && Value(now, "edgerunner.mqtt.published") > Value(first, "edgerunner.mqtt.published");
            },
            "frames, steps or published messages did not move",
            ct);
        var last = Collect(listener, readings);
        await host.StopAsync(ct);

        Assert.True(Value(last, "edgerunner.frames.inferred", "camera", "yard") > 0);
        Assert.True(Value(last, "edgerunner.frames.captured", "camera", "yard") >= Value(last, "edgerunner.frames.inferred", "camera", "yard"));
        Assert.Contains(last, r => r.Instrument == "edgerunner.frames.dropped" && r.Tags["camera"] == "yard");
        Assert.Contains(last, r => r.Instrument == "edgerunner.frames.skipped" && r.Tags["camera"] == "yard" && r.Tags["reason"] == "rate");
        Assert.Contains(last, r => r.Instrument == "edgerunner.frames.skipped" && r.Tags["camera"] == "yard" && r.Tags["reason"] == "motion");
        Assert.Contains(last, r => r.Instrument == "edgerunner.sensor.resets" && r.Tags["stream"] == "pump");
        Assert.Contains(last, r => r.Instrument == "edgerunner.sensor.invalid_samples" && r.Tags["stream"] == "pump");
        Assert.True(Value(last, "edgerunner.mqtt.published") > 0);
        Assert.Contains(last, r => r.Instrument == "edgerunner.mqtt.dropped");
        Assert.Equal(0, Value(last, "edgerunner.mqtt.reconnects"));
        Assert.True(Value(last, "edgerunner.process.cpu.time") > 0);
        Assert.True(Value(last, "edgerunner.process.memory.usage") > 0);

        Assert.Contains(histograms, r => r.Instrument == "edgerunner.inference.duration" && r.Tags.GetValueOrDefault("camera") == "yard" && r.Value > 0);
        Assert.Contains(histograms, r => r.Instrument == "edgerunner.inference.duration" && r.Tags.GetValueOrDefault("stream") == "pump" && r.Value > 0);
        Assert.Contains(histograms, r => r.Instrument == "edgerunner.result.latency" && r.Tags.GetValueOrDefault("camera") == "yard" && r.Value > 0);
    }

    /// <summary>Reads every observable instrument once; returns what that collection measured.</summary>
    private static List<Reading> Collect(MeterListener listener, ConcurrentQueue<Reading> readings)
    {
        readings.Clear();
        listener.RecordObservableInstruments();
        return [.. readings];
    }

    /// <summary>The one value of <paramref name="instrument"/> (for tag <paramref name="tag"/> = <paramref name="id"/> when given).</summary>
    private static double Value(List<Reading> readings, string instrument, string? tag = null, string? id = null) =>
        Assert.Single(readings, r => r.Instrument == instrument && (tag is null || r.Tags.GetValueOrDefault(tag) == id)).Value;

    private static Reading Read<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        where T : struct, IConvertible
    {
        var copy = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            copy[tag.Key] = tag.Value?.ToString();
        }

        return new Reading(instrument.Name, value.ToDouble(System.Globalization.CultureInfo.InvariantCulture), copy);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            await Task.Delay(100, ct);
        }
    }
}
