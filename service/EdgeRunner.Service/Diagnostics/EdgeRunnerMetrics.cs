using System.Diagnostics.Metrics;

namespace EdgeRunner.Service.Diagnostics;

/// <summary>
/// The daemon's instruments, all on one <see cref="System.Diagnostics.Metrics.Meter"/> named
/// <see cref="MeterName"/> (watch a running daemon with <c>dotnet-counters monitor -n edgerunner --counters EdgeRunner</c>;
/// docs/metrics.md lists them). The meter comes from the host's <see cref="IMeterFactory"/>, so each host (and each
/// test's in-process host) has its own and a <see cref="MeterListener"/> can tell them apart by <see cref="Meter"/>.
/// </summary>
/// <remarks>
/// Counters that already exist as <c>Interlocked</c> fields of the pipelines (frames, steps, published messages)
/// are published as observable instruments read at collection time (<see cref="PipelineMetrics"/>), so the per-frame
/// and per-step paths do nothing more. The two histograms need a value per result: <see cref="RecordInference"/> and
/// <see cref="RecordResultLatency"/> record it with one tag, which allocates nothing, and return at once while no
/// listener is enabled.
/// </remarks>
public sealed class EdgeRunnerMetrics
{
    /// <summary>The meter's name, for <c>dotnet-counters --counters</c> and <see cref="MeterListener"/> filters.</summary>
    public const string MeterName = "EdgeRunner";

    /// <summary>The tag naming a camera (its key under <c>Cameras</c>).</summary>
    public const string CameraTag = "camera";

    /// <summary>The tag naming a sensor stream (its key under <c>Sensors</c>, or a dynamic stream's id).</summary>
    public const string StreamTag = "stream";

    // Milliseconds: from well under one (a small LSTM step) to seconds (a large model on a slow board).
    private static readonly InstrumentAdvice<double> MillisecondBuckets = new()
    {
        HistogramBucketBoundaries = [0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
    };

    private readonly Histogram<double> _inferenceDuration;
    private readonly Histogram<double> _resultLatency;
    private readonly Counter<long> _commands;

    /// <summary>Creates the meter through <paramref name="meterFactory"/> (which owns and disposes it) with the histograms and the process gauges.</summary>
    public EdgeRunnerMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        Meter = meterFactory.Create(new MeterOptions(MeterName) { Version = Cli.AppVersion.Informational });
        _inferenceDuration = Meter.CreateHistogram(
            "edgerunner.inference.duration",
            "ms",
            "Time one model run took: preprocessing and inference of a camera frame, or one step of a sensor stream (its batch included)",
            advice: MillisecondBuckets);
        _resultLatency = Meter.CreateHistogram(
            "edgerunner.result.latency",
            "ms",
            "Time from a camera frame's capture to its result handed to the outputs (queueing, gating, preprocessing, inference, decoding)",
            advice: MillisecondBuckets);

        _commands = Meter.CreateCounter<long>(
            "edgerunner.commands",
            "{command}",
            "MQTT commands received on {prefix}/{device}/cmd/{name}, by command (\"unknown\" for names the daemon does not know) and outcome (ok, failed, timeout, unknown, not-allowed, oversized, malformed, busy)");

        // Per collection, not per frame: small allocations here are fine.
        Meter.CreateObservableCounter(
            "edgerunner.process.cpu.time",
            () => Environment.CpuUsage.TotalTime.TotalSeconds,
            "s",
            "CPU time the daemon's process has used (user and system, all threads); its rate is the CPU load in cores");
        Meter.CreateObservableGauge(
            "edgerunner.process.memory.usage",
            () => Environment.WorkingSet,
            "By",
            "The daemon's resident set size (physical memory mapped to the process)");
    }

    /// <summary>The daemon's meter (named <see cref="MeterName"/>).</summary>
    public Meter Meter { get; }

    /// <summary>Records one model run of <paramref name="id"/> (a camera or a stream, by <paramref name="tag"/>): no allocation, nothing at all without a listener.</summary>
    internal void RecordInference(string tag, string id, double milliseconds)
    {
        if (_inferenceDuration.Enabled)
        {
            _inferenceDuration.Record(milliseconds, new KeyValuePair<string, object?>(tag, id));
        }
    }

    /// <summary>Records the capture-to-result latency of one result of camera <paramref name="cameraId"/>.</summary>
    internal void RecordResultLatency(string cameraId, double milliseconds)
    {
        if (_resultLatency.Enabled)
        {
            _resultLatency.Record(milliseconds, new KeyValuePair<string, object?>(CameraTag, cameraId));
        }
    }

    /// <summary>Counts one MQTT command of <paramref name="command"/> that ended as <paramref name="outcome"/> (rare: tags may allocate).</summary>
    internal void RecordCommand(string command, string outcome) =>
        _commands.Add(1, new KeyValuePair<string, object?>("command", command), new KeyValuePair<string, object?>("outcome", outcome));

    // Model reloads (rare): created with the first one, so a daemon that never reloads lists no such instrument.
    private Counter<long>? _modelReloads;

    /// <summary>Counts one model reload of <paramref name="model"/> with its <paramref name="outcome"/> (swapped, failed).</summary>
    public void RecordModelReload(string model, string outcome)
    {
        var counter = LazyInitializer.EnsureInitialized(ref _modelReloads, () => Meter.CreateCounter<long>(
            "edgerunner.model.reloads",
            "{reload}",
            "Model reloads (reload command or a changed model file), by model and outcome: swapped or failed (the old model kept running)"));
        counter.Add(1, new KeyValuePair<string, object?>("model", model), new KeyValuePair<string, object?>("outcome", outcome));
    }
}
