using System.Diagnostics;
using System.Globalization;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Catalog;

/// <summary>The spinning choice for one model session, and why.</summary>
/// <param name="AllowSpinning">True: ONNX Runtime's workers spin-wait between runs; false: they sleep.</param>
/// <param name="DutyCycle">Runs per second × seconds per run; null when the rate is unknown or the choice was configured.</param>
/// <param name="Reason">For the log: "duty cycle 0.07: 5 runs/s × 13.5 ms", "configured", "rate unknown".</param>
internal sealed record SpinningDecision(bool AllowSpinning, double? DutyCycle, string Reason);

/// <summary>
/// <c>Models:{name}:Spinning</c>. Spinning workers pick up the next run without a wake-up, but burn a core for a
/// while after every run; that pays only when the next run arrives while they still spin, i.e. when the model is
/// busy most of the time. <see cref="ModelSpinning.Auto"/> therefore turns spinning on when the duty cycle
/// (expected runs per second × time of one run measured at warm-up) is at least <see cref="AutoThreshold"/>, or
/// when the rate is unknown (ONNX Runtime's default), and off otherwise.
/// </summary>
internal static partial class SpinningPolicy
{
    /// <summary>The duty cycle from which Auto spins.</summary>
    public const double AutoThreshold = 0.5;

    /// <summary>Timed runs after the warm-up run; the median is the run time (the first runs after a load are noisy).</summary>
    private const int TimedRuns = 3;

    /// <summary>The rule: <paramref name="mode"/> for a model run <paramref name="runsPerSecond"/> times a second (null: unknown), each run taking <paramref name="runMilliseconds"/>.</summary>
    public static SpinningDecision Decide(ModelSpinning mode, double? runsPerSecond, double runMilliseconds)
    {
        switch (mode)
        {
            case ModelSpinning.On:
                return new SpinningDecision(true, null, "configured");
            case ModelSpinning.Off:
                return new SpinningDecision(false, null, "configured");
        }

        if (runsPerSecond is not > 0)
        {
            return new SpinningDecision(true, null, "rate unknown");
        }

        var duty = runsPerSecond.Value * runMilliseconds / 1000.0;
        return new SpinningDecision(
            duty >= AutoThreshold,
            duty,
            string.Create(CultureInfo.InvariantCulture, $"duty cycle {duty:0.##}: {runsPerSecond.Value:0.##} runs/s × {runMilliseconds:0.0} ms"));
    }

    /// <summary>
    /// Loads a model under its spinning choice. Auto with a known rate loads it with spinning off, times a few runs
    /// and loads it again with spinning on only when the duty cycle asks for it (rare on a small board: a model busy
    /// half the time), so the common case costs no second load. Logs the decision once per load.
    /// </summary>
    /// <param name="modelId">For the log.</param>
    /// <param name="mode">The configured choice.</param>
    /// <param name="runsPerSecond">Expected runs per second of this session; null or 0 when unknown.</param>
    /// <param name="load">Loads (and warms up) the model with the given AllowSpinning.</param>
    /// <param name="runOnce">Runs the loaded model once.</param>
    /// <param name="logger">Where the decision goes.</param>
    public static T Load<T>(string modelId, ModelSpinning mode, double? runsPerSecond, Func<bool?, T> load, Action<T> runOnce, ILogger logger)
        where T : IDisposable
    {
        ArgumentNullException.ThrowIfNull(load);
        ArgumentNullException.ThrowIfNull(runOnce);
        if (mode != ModelSpinning.Auto || runsPerSecond is not > 0)
        {
            var fixedChoice = Decide(mode, runsPerSecond, 0);
            LogDecision(logger, modelId, fixedChoice.AllowSpinning ? "on" : "off", fixedChoice.Reason);
            return load(fixedChoice.AllowSpinning);
        }

        var model = load(false);
        try
        {
            var decision = Decide(mode, runsPerSecond, MedianRunMilliseconds(model, runOnce));
            LogDecision(logger, modelId, decision.AllowSpinning ? "on" : "off", decision.Reason);
            if (!decision.AllowSpinning)
            {
                return model;
            }

            model.Dispose();
            return load(true);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static double MedianRunMilliseconds<T>(T model, Action<T> runOnce)
    {
        Span<double> times = stackalloc double[TimedRuns];
        for (var i = 0; i < TimedRuns; i++)
        {
            // A measurement of the model's own cost, not a schedule: the Stopwatch, not the injected TimeProvider.
            var start = Stopwatch.GetTimestamp();
            runOnce(model);
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        times.Sort();
        return times[TimedRuns / 2];
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {ModelId}: spinning {Spinning} ({Reason})")]
    private static partial void LogDecision(ILogger logger, string modelId, string spinning, string reason);
}

/// <summary>
/// Each model's expected load for <see cref="SpinningPolicy"/>, asked for by model when it is loaded (through
/// <see cref="ModelCatalog"/>), from the bound <c>Cameras</c> and <c>Sensors</c> options: by then each section has
/// been validated by its own validator, so a bad camera or sensor key is reported once, by its own section.
/// </summary>
internal sealed class ModelRunRates(IOptions<CamerasOptions> cameras, IOptions<SensorsOptions> sensors)
{
    /// <summary>
    /// The highest inferred-frame rate (the smaller of Fps and DetectFps when DetectFps is set) of the enabled cameras
    /// that use <paramref name="modelId"/>; 0 when none does, or when one of them is an unpaced video file
    /// (<c>Source:RealTime</c> false: frames come as fast as the model takes them, so its rate is not known and its
    /// duty cycle is about 1). Each camera opens its own session (own worker threads), so a session's rate is its
    /// camera's: the highest one, not the sum.
    /// </summary>
    public double CameraFramesPerSecond(string modelId)
    {
        double fps = 0;
        foreach (var camera in cameras.Value.Values)
        {
            if (camera.Enabled && string.Equals(camera.Model, modelId, StringComparison.OrdinalIgnoreCase))
            {
                if (camera.Source is Vision.Sources.FileSourceOptions { RealTime: false } && camera.DetectFps <= 0)
                {
                    return 0;
                }

                fps = Math.Max(fps, camera.DetectFps > 0 ? Math.Min(camera.Fps, camera.DetectFps) : camera.Fps);
            }
        }

        return fps;
    }

    /// <summary>How many enabled sensor streams use <paramref name="modelId"/> (they share its session).</summary>
    public int SensorStreams(string modelId) =>
        sensors.Value.Values.Count(stream => stream.Enabled && string.Equals(stream.Model, modelId, StringComparison.OrdinalIgnoreCase));
}
