using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Preprocessing;
using EdgeRunner.Service.Catalog;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Diagnostics;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;
using EdgeRunner.Service.Vision.Sources;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Cli;

/// <summary>
/// <c>edgerunner bench-pipeline [--config FILE] [--seconds S] [--warmup S] [--soak] [--sample-seconds S] [--plots DIR] [--no-bare] [--json] [--Section:Key=value…]</c>:
/// runs the daemon's real camera and sensor pipelines in this process (the host <c>run</c> starts, from the configuration
/// given or the built-in demo) against the configured broker, or an embedded one on a free port when none is named, for
/// S seconds after a warm-up, and prints side by side: frames and steps per second, the process's CPU (and its ffmpeg
/// children's, from /proc), CPU per result, allocations, GC counts, RSS, per-stage latency percentiles; then the bare
/// ONNX Runtime loop (<c>edgerunner bench</c>) on each model with the same intra-op threads. <c>--soak</c> samples
/// RSS, GC and CPU every few seconds and reports the slopes. docs/performance.md explains the figures.
/// </summary>
/// <remarks>
/// CPU figures are process CPU time (user + system), not wall-clock: on a shared or busy machine they still say what the
/// pipeline costs. The daemon's logs go to stderr (warnings and worse), so <c>--json</c> output is the only stdout.
/// </remarks>
internal static class BenchPipelineCommand
{
    /// <summary>Clock ticks per second of /proc/{pid}/stat times (USER_HZ: 100 on every Linux architecture the daemon ships for).</summary>
    private const double ClockTicksPerSecond = 100;

    /// <summary>The publisher's histogram of seconds from a result queued to its PUBACK (tags <c>kind</c> camera|stream and <c>id</c>); absent from older publishers.</summary>
    private const string PublishAckInstrument = "edgerunner.publish.ack.duration";

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, TypeInfoResolver = BenchPipelineJsonContext.Default };

    public static Command Create(Option<FileInfo?> configOption)
    {
        var seconds = new Option<double>("--seconds") { Description = "How long to measure, after the warm-up.", DefaultValueFactory = _ => 20 };
        var warmup = new Option<double>("--warmup") { Description = "Seconds to run before measuring (JIT tiering settles in about 30 s at a few frames per second; first frames, broker connect).", DefaultValueFactory = _ => 30 };
        var soak = new Option<bool>("--soak") { Description = "Sample RSS, GC and CPU every --sample-seconds and report their slopes (e.g. --soak --seconds 3600)." };
        var sampleSeconds = new Option<double>("--sample-seconds") { Description = "Sampling interval of --soak.", DefaultValueFactory = _ => 5 };
        var plots = new Option<DirectoryInfo?>("--plots") { Description = "Write PNG plots there: latency distribution per stage and camera/stream, and with --soak RSS and CPU over time." };
        var noBare = new Option<bool>("--no-bare") { Description = "Skip the bare ONNX Runtime loop on each model." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of the tables." };
        var fullSpeed = new Option<bool>("--full-speed") { Description = "Unpaced: File cameras read their video as fast as the pipeline takes frames (Source:RealTime=false); the report gives frames/s against the bound the stages alone allow." };
        var command = new Command("bench-pipeline", "Run the configured camera and sensor pipelines (default: the built-in demo) against a real broker (an embedded one on a free port when Mqtt:Host is empty) and print frames/s, CPU per result, allocations, GC, RSS and latency percentiles per stage, beside the bare ONNX Runtime loop on the same models. Exit 0, 64 on bad options, 78 on a configuration error.")
        {
            seconds, warmup, soak, sampleSeconds, plots, noBare, json, fullSpeed,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(async (parse, cancellationToken) =>
        {
            var settings = new BenchPipelineSettings(
                parse.GetValue(configOption)?.FullName,
                [.. parse.UnmatchedTokens],
                parse.GetValue(seconds),
                parse.GetValue(warmup),
                parse.GetValue(soak),
                parse.GetValue(sampleSeconds),
                parse.GetValue(plots)?.FullName,
                !parse.GetValue(noBare),
                parse.GetValue(fullSpeed));
            var (code, report, error) = await RunAsync(settings, cancellationToken);
            if (report is null)
            {
                await Console.Error.WriteLineAsync($"edgerunner bench-pipeline: {error}");
                return code;
            }

            await Console.Out.WriteAsync(parse.GetValue(json) ? JsonSerializer.Serialize(report, JsonOptions) + "\n" : FormatTable(report));
            return code;
        });
        return command;
    }

    /// <summary>Runs the bench: the report, or an exit code and why there is none.</summary>
    internal static async Task<(int ExitCode, BenchPipelineReport? Report, string? Error)> RunAsync(BenchPipelineSettings settings, CancellationToken cancellationToken)
    {
        if (!(settings.Seconds is > 0 and <= 7 * 86400) || !(settings.WarmupSeconds is >= 0 and <= 3600) || !(settings.SampleSeconds is >= 0.1 and <= 3600))
        {
            return (EdgeRunnerCommandLine.UsageError, null, "--seconds must be in (0, 604800], --warmup in [0, 3600], --sample-seconds in [0.1, 3600]");
        }

        var started = TimeProvider.System.GetTimestamp();
        IHost host;
        Microsoft.Extensions.Configuration.IConfigurationRoot configuration;
        try
        {
            // Quiet logs on stderr, then the user's overrides (later wins), then an embedded broker of its own when none is named.
            List<string> overrides = ["--Logging:LogLevel:Default=Warning", "--Logging:Console:LogToStandardErrorThreshold=Trace", .. settings.Overrides];
            configuration = EdgeRunnerHost.BuildConfiguration(settings.ConfigFile, overrides);
            if (settings.FullSpeed)
            {
                // Before the user's overrides win again below: each File camera unpaced (the other kinds pace themselves).
                foreach (var camera in configuration.GetSection(CamerasOptions.SectionName).GetChildren())
                {
                    if (string.Equals(camera["Source:Kind"], "File", StringComparison.OrdinalIgnoreCase))
                    {
                        overrides.Insert(2, $"--{camera.Path}:Source:RealTime=false");
                    }
                }

                configuration = EdgeRunnerHost.BuildConfiguration(settings.ConfigFile, overrides);
            }

            if (string.IsNullOrWhiteSpace(configuration["Mqtt:Host"]))
            {
                overrides.Add($"--Mqtt:EmbeddedBroker:Port={FreeLoopbackPort()}");
                overrides.Add("--Mqtt:EmbeddedBroker:BindAddress=127.0.0.1");
                configuration = EdgeRunnerHost.BuildConfiguration(settings.ConfigFile, overrides);
            }

            host = EdgeRunnerHost.Build(configuration);
            var errors = EdgeRunnerHost.FindConfigurationErrors(configuration, host.Services);
            if (errors.Count > 0)
            {
                host.Dispose();
                return (StartupException.ConfigError, null, "configuration error: " + string.Join("; ", errors));
            }
        }
        catch (StartupException ex)
        {
            return (ex.ExitCode, null, ex.Message);
        }

        var mqtt = host.Services.GetRequiredService<IOptions<MqttOptions>>().Value;
        var broker = string.IsNullOrWhiteSpace(mqtt.Host) ? $"embedded 127.0.0.1:{mqtt.EmbeddedBroker.Port}" : $"{mqtt.Host}:{mqtt.Port}";
        var models = host.Services.GetRequiredService<IOptions<ModelsOptions>>().Value;
        var catalog = host.Services.GetRequiredService<ModelCatalog>();
        var cameraOptions = host.Services.GetRequiredService<IOptions<CamerasOptions>>().Value;
        BenchPipelineReport report;
        List<(string Model, string Path, int Threads)> bareModels = [];
        List<CameraStagesInput> cameraStages = [];
        await using (host as IAsyncDisposable ?? throw new InvalidOperationException("Host is not async-disposable."))
        {
            var vision = host.Services.GetRequiredService<VisionService>();
            var sensors = host.Services.GetRequiredService<SensorService>();
            var publisher = host.Services.GetRequiredService<MqttPublisher>();
            // Before start: the histograms have their listener from the first frame on.
            var collector = host.Services.GetRequiredService<MetricsCollector>();
            try
            {
                await vision.PrepareAsync(cancellationToken);
                await sensors.PrepareAsync(cancellationToken);
                await host.StartAsync(cancellationToken);
            }
            catch (StartupException ex)
            {
                await host.StopAsync(CancellationToken.None);
                return (ex.ExitCode, null, ex.Message);
            }

            var readyMs = TimeProvider.System.GetElapsedTime(started).TotalMilliseconds;
            await Task.Delay(TimeSpan.FromSeconds(settings.WarmupSeconds), cancellationToken);

            var before = Sample.Take(vision, sensors, publisher, collector);
            var samples = new List<SoakSample>();
            if (settings.Soak)
            {
                var previous = before;
                samples.Add(SoakOf(before, before, null));
                var end = before.Timestamp + (long)(settings.Seconds * TimeProvider.System.TimestampFrequency);
                using var timer = new PeriodicTimer(TimeSpan.FromSeconds(settings.SampleSeconds));
                while (TimeProvider.System.GetTimestamp() < end && await timer.WaitForNextTickAsync(cancellationToken))
                {
                    var now = Sample.Take(vision, sensors, publisher, collector);
                    samples.Add(SoakOf(before, now, previous));
                    previous = now;
                }
            }
            else
            {
                await Task.Delay(TimeSpan.FromSeconds(settings.Seconds), cancellationToken);
            }

            var after = Sample.Take(vision, sensors, publisher, collector);
            report = Report(settings, broker, readyMs, vision, sensors, before, after, samples);

            foreach (var pipeline in vision.Pipelines)
            {
                Add(pipeline.Model.Id);
                if (cameraOptions.TryGetValue(pipeline.CameraId, out var camera) && catalog.Get(pipeline.Model.Id).Image is { } spec)
                {
                    cameraStages.Add(new CameraStagesInput(pipeline.CameraId, camera, pipeline.Model.Id, spec, pipeline.Model.InputElementType));
                }
            }

            foreach (var stream in sensors.Streams)
            {
                Add(stream.Processor.Model.Id);
            }

            void Add(string id)
            {
                if (bareModels.All(m => m.Model != id) && models.TryGetValue(id, out var options))
                {
                    bareModels.Add((id, catalog.Get(id).Path, options.IntraOpThreads));
                }
            }

            await host.StopAsync(cancellationToken);
        }

        if (settings.Bare)
        {
            // After the pipelines stopped: the bare loop has the machine to itself, as the pipeline had.
            var bareSeconds = Math.Min(5, settings.Seconds);
            var bare = new List<BareResult>();
            foreach (var (model, path, threads) in bareModels)
            {
                bare.Add(MeasureBare(model, path, threads, bareSeconds, cancellationToken));
                if (threads != 1 && cameraStages.Any(c => c.Model == model))
                {
                    // The yardstick of a camera's CPU per frame: one run on one thread (no worker to wake or spin).
                    bare.Add(MeasureBare(model, path, 1, bareSeconds, cancellationToken));
                }
            }

            var cameras = new List<CameraBench>();
            foreach (var camera in report.Cameras)
            {
                var input = cameraStages.Find(c => c.Camera == camera.Camera);
                cameras.Add(input is null ? camera : camera with { Alone = await MeasureCameraAloneAsync(input, report, bare, bareSeconds, settings.FullSpeed, cancellationToken) });
            }

            report = report with { Bare = bare, Cameras = cameras };
        }

        if (settings.PlotsDirectory is { } plots)
        {
            report = report with { Plots = BenchPlots.Write(plots, report) };
        }

        return (0, report, null);
    }

    private static BenchPipelineReport Report(BenchPipelineSettings settings, string broker, double readyMs, VisionService vision, SensorService sensors, Sample before, Sample after, List<SoakSample> samples)
    {
        var seconds = Math.Max(1e-3, (after.Timestamp - before.Timestamp) / (double)TimeProvider.System.TimestampFrequency);
        var cpuSeconds = (after.Cpu - before.Cpu).TotalSeconds;
        var cameras = new List<CameraBench>();
        long frames = 0;
        foreach (var pipeline in vision.Pipelines)
        {
            var id = pipeline.CameraId;
            var (b, a) = (before.Cameras.GetValueOrDefault(id), after.Cameras.GetValueOrDefault(id));
            frames += a.Inferred - b.Inferred;
            cameras.Add(new CameraBench(
                id,
                pipeline.Model.Id,
                pipeline.Model.ExecutionProvider,
                Round((a.Captured - b.Captured) / seconds),
                Round((a.Inferred - b.Inferred) / seconds),
                a.Dropped - b.Dropped,
                a.Skipped - b.Skipped,
                a.Failed - b.Failed,
                [
                    Stage("preprocess+infer", "edgerunner.inference.duration", EdgeRunnerMetrics.CameraTag, id, before, after),
                    Stage("capture→result", "edgerunner.result.latency", EdgeRunnerMetrics.CameraTag, id, before, after),
                    .. AckStage("camera", id, before, after) is { } ack ? [ack] : Array.Empty<StageLatency>(),
                ]));
        }

        var streams = new List<StreamBench>();
        long steps = 0;
        foreach (var runner in sensors.Streams)
        {
            var id = runner.StreamId;
            var delta = after.Streams.GetValueOrDefault(id) - before.Streams.GetValueOrDefault(id);
            steps += delta;
            streams.Add(new StreamBench(id, runner.Processor.Model.Id, runner.Processor.Model.ExecutionProvider, Round(delta / seconds), Stage("step", "edgerunner.inference.duration", EdgeRunnerMetrics.StreamTag, id, before, after), AckStage("stream", id, before, after)));
        }

        var children = new List<ChildCpu>();
        foreach (var (pid, (name, ticks)) in after.Children)
        {
            var start = before.Children.TryGetValue(pid, out var b) ? b.Ticks : 0;
            children.Add(new ChildCpu(pid, name, Round((ticks - start) / ClockTicksPerSecond / seconds * 100)));
        }

        var results = frames + steps;
        var process = new ProcessBench(
            Round(cpuSeconds / seconds * 100),
            frames > 0 ? Round(cpuSeconds * 1000 / frames, 3) : null,
            results > 0 ? Round(cpuSeconds * 1000 / results, 3) : null,
            after.Allocated - before.Allocated,
            Round((after.Allocated - before.Allocated) / seconds),
            [after.Gc[0] - before.Gc[0], after.Gc[1] - before.Gc[1], after.Gc[2] - before.Gc[2]],
            after.Rss,
            System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64,
            children);
        var mqtt = new MqttBench(Round((after.Published - before.Published) / seconds), after.Dropped - before.Dropped, after.Queued);
        return new BenchPipelineReport(
            settings.ConfigFile ?? Path.Combine(AppContext.BaseDirectory, "appsettings.json"),
            broker,
            Round(readyMs),
            Round(settings.WarmupSeconds),
            Round(seconds),
            process,
            mqtt,
            cameras,
            streams,
            [],
            settings.Soak ? Soak(samples) : null,
            []);
    }

    private static StageLatency Stage(string stage, string instrument, string tag, string id, Sample before, Sample after)
    {
        var now = after.Metrics.Histogram(instrument, tag, id);
        var then = before.Metrics.Histogram(instrument, tag, id);
        if (now is null)
        {
            return new StageLatency(stage, 0, null, null, null, null, []);
        }

        double? P(double q) => MetricsCollector.Percentile(now.Fine, then?.Fine, q) is { } v ? Round(v, 3) : null;
        var count = now.Count - (then?.Count ?? 0);
        var mean = count > 0 ? Round((now.Sum - (then?.Sum ?? 0)) / count, 3) : (double?)null;
        var buckets = new long[now.Fine.Length];
        for (var i = 0; i < buckets.Length; i++)
        {
            buckets[i] = now.Fine[i] - (then?.Fine[i] ?? 0);
        }

        return new StageLatency(stage, count, P(0.5), P(0.9), P(0.99), mean, buckets);
    }

    private static SoakReport Soak(List<SoakSample> samples)
    {
        // Least-squares slope over the samples; RSS in MiB per hour.
        static double Slope(IReadOnlyList<SoakSample> over, Func<SoakSample, double> y)
        {
            if (over.Count < 2)
            {
                return 0;
            }

            var mx = over.Average(s => s.Seconds);
            var my = over.Average(y);
            var sxx = over.Sum(s => (s.Seconds - mx) * (s.Seconds - mx));
            return sxx > 0 ? over.Sum(s => (s.Seconds - mx) * (y(s) - my)) / sxx : 0;
        }

        // The first minutes grow while the GC's gen-0 budget and ONNX Runtime's arenas fill: the second half says
        // whether memory still grows once the daemon has settled.
        var end = samples.Count > 0 ? samples[^1].Seconds : 0;
        var secondHalf = samples.Where(s => s.Seconds >= end / 2).ToList();
        return new SoakReport(
            samples,
            Round(Slope(samples, s => s.RssBytes / 1048576.0) * 3600, 3),
            Round(Slope(secondHalf, s => s.RssBytes / 1048576.0) * 3600, 3),
            Round(Slope(samples, s => s.ManagedHeapBytes / 1048576.0) * 3600, 3),
            Round(samples.Skip(1).Select(s => s.CpuPercent).DefaultIfEmpty(0).Average()),
            Round(Slope(samples, s => s.Gc[2]) * 3600));
    }

    private static BareResult MeasureBare(string model, string path, int threads, double seconds, CancellationToken cancellationToken)
    {
        var (code, text) = BenchCommand.Run([path], "cpu", threads, seconds, [], json: true, progress: null, cancellationToken);
        if (code != 0)
        {
            return new BareResult(model, threads, null, null, null, null, text.Trim());
        }

        using var json = JsonDocument.Parse(text);
        var result = json.RootElement.GetProperty("models")[0];
        var runs = result.GetProperty("runs").GetInt64();
        var latency = result.GetProperty("latency_ms");
        return new BareResult(
            model,
            result.GetProperty("threads").GetInt32(),
            Round(runs / result.GetProperty("seconds").GetDouble()),
            Round(latency.GetProperty("p50").GetDouble(), 3),
            Round(latency.GetProperty("p99").GetDouble(), 3),
            // Process CPU over the timed runs only (not loading, not the warm-up run), all threads.
            runs > 0 ? Round(result.GetProperty("cpu_ms_per_run").GetDouble(), 3) : null,
            null);
    }

    /// <summary>
    /// The camera's stages alone, after the pipelines stopped: its source read for <paramref name="seconds"/> with nothing
    /// else running (frames/s, the daemon's and the ffmpeg child's CPU per frame), then the model's preprocessing of one
    /// of those frames in a loop (CPU per frame); against them and the bare runs, the daemon's CPU per inferred frame and,
    /// at full speed, its frames/s.
    /// </summary>
    private static async Task<CameraAlone> MeasureCameraAloneAsync(CameraStagesInput input, BenchPipelineReport report, List<BareResult> bare, double seconds, bool fullSpeed, CancellationToken cancellationToken)
    {
        var frequency = (double)TimeProvider.System.TimestampFrequency;
        var pool = new FramePool(4);
        IFrameSource source;
        try
        {
            source = input.Options.Source.Create(new CameraSourceContext(input.Camera, input.Options, pool, TimeProvider.System, NullLoggerFactory.Instance));
        }
        catch (Exception ex) when (ex is FrameSourceException or IOException or ArgumentException or UnauthorizedAccessException)
        {
            return CameraAlone.Failed($"cannot open the source: {ex.Message}");
        }

        CapturedFrame? sample = null;
        long frames = 0;
        double captureSeconds, captureCpuMs, childCpuMs;
        try
        {
            // The first frame pays for starting ffmpeg (or rendering the scene's background): not steady state.
            using (var first = await source.ReadFrameAsync(cancellationToken))
            {
                if (first is null)
                {
                    return CameraAlone.Failed("the source gave no frame");
                }
            }

            var children = Sample.ChildCpuTicks();
            var cpu = Environment.CpuUsage.TotalTime;
            var start = TimeProvider.System.GetTimestamp();
            var end = start + (long)(seconds * frequency);
            while (TimeProvider.System.GetTimestamp() < end)
            {
                using var frame = await source.ReadFrameAsync(cancellationToken);
                if (frame is null)
                {
                    break;
                }

                frames++;
                sample ??= new CapturedFrame(frame.Pixels.ToArray(), frame.Width, frame.Height, frame.Stride, frame.PixelFormat);
            }

            captureSeconds = Math.Max(1e-3, (TimeProvider.System.GetTimestamp() - start) / frequency);
            captureCpuMs = (Environment.CpuUsage.TotalTime - cpu).TotalMilliseconds;
            childCpuMs = 0;
            foreach (var (pid, (_, ticks)) in Sample.ChildCpuTicks())
            {
                childCpuMs += (ticks - (children.TryGetValue(pid, out var then) ? then.Ticks : 0)) / ClockTicksPerSecond * 1000;
            }
        }
        catch (FrameSourceException ex)
        {
            return CameraAlone.Failed($"the source failed: {ex.Message}");
        }
        finally
        {
            await source.DisposeAsync();
        }

        if (sample is null || frames == 0)
        {
            return CameraAlone.Failed("the source gave no frame while measured");
        }

        var (preprocessMs, preprocessCpuMs) = MeasurePreprocessing(input, sample, Math.Min(2, seconds));
        var bare1 = bare.Find(b => b.Model == input.Model && b.Threads == 1)?.CpuMillisecondsPerRun;
        var bareModel = bare.Find(b => b.Model == input.Model);
        double? boundCpu = bare1 is { } run ? preprocessCpuMs + run : null;
        var captureFps = frames / captureSeconds;
        double? boundFps = bareModel?.RunsPerSecond is > 0 and var runs ? Math.Min(captureFps, 1000 / (preprocessMs + (1000 / runs))) : null;
        var pipeline = report.Cameras.FirstOrDefault(c => c.Camera == input.Camera);
        return new CameraAlone(
            Round(captureFps),
            Round(captureCpuMs / frames, 3),
            Round(childCpuMs / frames, 3),
            Round(preprocessMs, 3),
            Round(preprocessCpuMs, 3),
            bare1,
            boundCpu is { } b1 ? Round(b1, 3) : null,
            boundCpu is > 0 && report.Process.CpuMillisecondsPerFrame is { } perFrame ? Round(perFrame / boundCpu.Value, 2) : null,
            boundFps is { } bf ? Round(bf) : null,
            fullSpeed && boundFps is > 0 && pipeline is not null ? Round(pipeline.InferenceFps / boundFps.Value, 2) : null,
            null);
    }

    /// <summary>The model's preprocessing of <paramref name="frame"/> in a loop for <paramref name="seconds"/>: wall and CPU ms per frame.</summary>
    private static (double Milliseconds, double CpuMilliseconds) MeasurePreprocessing(CameraStagesInput input, CapturedFrame frame, double seconds)
    {
        var preprocessor = new ImagePreprocessor(input.Spec);
        var count = checked((int)input.Spec.TensorShape().Aggregate(1L, (a, b) => a * b));
        var floats = input.ElementType is InputElementType.UInt8 or InputElementType.Int8 ? [] : new float[count];
        var bytes = input.ElementType == InputElementType.UInt8 ? new byte[count] : [];
        var sbytes = input.ElementType == InputElementType.Int8 ? new sbyte[count] : [];
        var format = frame.Format.ToImageFormat();
        void RunOnce()
        {
            var view = new ImageView(frame.Pixels, frame.Width, frame.Height, frame.Stride, format);
            _ = input.ElementType switch
            {
                InputElementType.UInt8 => preprocessor.Run(view, bytes),
                InputElementType.Int8 => preprocessor.Run(view, sbytes),
                _ => preprocessor.Run(view, floats),
            };
        }

        // Warm-up: the JIT and the preprocessor's tables.
        for (var i = 0; i < 3; i++)
        {
            RunOnce();
        }

        long runs = 0;
        var cpu = Environment.CpuUsage.TotalTime;
        var start = TimeProvider.System.GetTimestamp();
        var end = start + (long)(seconds * TimeProvider.System.TimestampFrequency);
        while (runs < 10 || TimeProvider.System.GetTimestamp() < end)
        {
            RunOnce();
            runs++;
        }

        var elapsed = TimeProvider.System.GetElapsedTime(start).TotalMilliseconds;
        return (elapsed / runs, (Environment.CpuUsage.TotalTime - cpu).TotalMilliseconds / runs);
    }

    /// <summary>A publish→PUBACK stage (<c>edgerunner.publish.ack.duration</c>, seconds, tags kind and id) when the publisher records one; null otherwise.</summary>
    private static StageLatency? AckStage(string kind, string id, Sample before, Sample after)
    {
        static HistogramSnapshot? Find(Sample sample, string kind, string id) =>
            sample.Metrics.Histograms.FirstOrDefault(h => h.Instrument.Name == PublishAckInstrument && h.Tag("kind") == kind && h.Tag("id") == id);
        var now = Find(after, kind, id);
        if (now is null)
        {
            return null;
        }

        var then = Find(before, kind, id);
        var count = now.Count - (then?.Count ?? 0);
        double? P(double q) => MetricsCollector.Percentile(now.Fine, then?.Fine, q) is { } v ? Round(v * 1000, 3) : null;
        var buckets = new long[now.Fine.Length];
        for (var i = 0; i < buckets.Length; i++)
        {
            buckets[i] = now.Fine[i] - (then?.Fine[i] ?? 0);
        }

        return new StageLatency("publish→PUBACK", count, P(0.5), P(0.9), P(0.99), count > 0 ? Round((now.Sum - (then?.Sum ?? 0)) * 1000 / count, 3) : null, buckets);
    }

    /// <summary>The tables: process, cameras, streams, bare loops, soak.</summary>
    internal static string FormatTable(BenchPipelineReport r)
    {
        var c = CultureInfo.InvariantCulture;
        var s = new StringBuilder();
        var p = r.Process;
        s.AppendLine(c, $"bench-pipeline: {r.Config}, broker {r.Broker}: {r.Seconds:0.0} s measured after {r.WarmupSeconds:0.0} s warm-up, ready in {r.ReadyMilliseconds:0} ms");
        s.AppendLine(c, $"process: CPU {p.CpuPercent:0.0} % of a core ({(p.CpuMillisecondsPerFrame is { } f ? $"{f:0.00} ms per inferred frame, " : string.Empty)}{(p.CpuMillisecondsPerResult is { } pr ? $"{pr:0.00} ms per result" : "no results")}), allocated {p.AllocatedBytes / 1048576.0:0.00} MiB ({p.AllocatedBytesPerSecond / 1024:0.0} KiB/s), GC {string.Join("/", p.GcCollections)}, RSS {p.RssBytes / 1048576.0:0.0} MiB (peak {p.PeakRssBytes / 1048576.0:0.0})");
        foreach (var child in p.Children)
        {
            s.AppendLine(c, $"child {child.Name} ({child.Pid}): CPU {child.CpuPercent:0.0} % of a core");
        }

        s.AppendLine(c, $"MQTT: {r.Mqtt.PublishedPerSecond:0.0} published/s, {r.Mqtt.Dropped} dropped, {r.Mqtt.Queued} queued at the end");
        if (r.Cameras.Count > 0)
        {
            s.AppendLine();
            s.AppendLine(c, $"{"CAMERA",-16} {"MODEL",-18} {"CAPTURE/S",9} {"INFER/S",8} {"DROPPED",8} {"STAGE",-17} {"P50 MS",8} {"P90 MS",8} {"P99 MS",8}");
            foreach (var camera in r.Cameras)
            {
                for (var i = 0; i < camera.Stages.Count; i++)
                {
                    var stage = camera.Stages[i];
                    var head = i == 0 ? $"{camera.Camera,-16} {camera.Model,-18} {camera.CaptureFps,9:0.0} {camera.InferenceFps,8:0.0} {camera.FramesDropped,8}" : new string(' ', 16 + 1 + 18 + 1 + 9 + 1 + 8 + 1 + 8);
                    s.AppendLine(c, $"{head} {stage.Stage,-17} {Ms(stage.P50)} {Ms(stage.P90)} {Ms(stage.P99)}");
                }
            }
        }

        foreach (var camera in r.Cameras)
        {
            if (camera.Alone is not { } alone)
            {
                continue;
            }

            if (alone.Error is not null)
            {
                s.AppendLine(c, $"camera {camera.Camera} alone: {alone.Error}");
                continue;
            }

            s.AppendLine(c, $"camera {camera.Camera} alone: capture {alone.CaptureFps:0.0} frames/s ({alone.CaptureCpuMillisecondsPerFrame:0.000} ms CPU + children {alone.CaptureChildCpuMillisecondsPerFrame:0.000} ms per frame), preprocess {alone.PreprocessCpuMillisecondsPerFrame:0.000} ms CPU per frame, one bare run on 1 thread {Opt(alone.Bare1ThreadCpuMillisecondsPerRun)} ms CPU");
            s.AppendLine(c, $"  CPU per inferred frame {Opt(p.CpuMillisecondsPerFrame)} ms against preprocess + bare run {Opt(alone.BoundCpuMillisecondsPerFrame)} ms: ratio {Opt(alone.CpuRatio)} (target <= 1.3; children apart)");
            if (alone.FullSpeedRatio is { } ratio)
            {
                s.AppendLine(c, $"  full speed: {camera.InferenceFps:0.0} inferred frames/s against {alone.FullSpeedBoundFps:0.0} the stages allow (min of capture {alone.CaptureFps:0.0}/s and 1/(preprocess {alone.PreprocessMillisecondsPerFrame:0.000} ms + bare run)): ratio {ratio:0.00} (target >= 0.95)");
            }
        }

        if (r.Streams.Count > 0)
        {
            s.AppendLine();
            s.AppendLine(c, $"{"STREAM",-16} {"MODEL",-18} {"STEPS/S",9} {"P50 MS",8} {"P90 MS",8} {"P99 MS",8}");
            foreach (var stream in r.Streams)
            {
                s.AppendLine(c, $"{stream.Stream,-16} {stream.Model,-18} {stream.StepsPerSecond,9:0.0} {Ms(stream.Step.P50)} {Ms(stream.Step.P90)} {Ms(stream.Step.P99)}");
                if (stream.PublishAck is { } ack)
                {
                    s.AppendLine(c, $"{string.Empty,-16} {"publish→PUBACK",-18} {string.Empty,9} {Ms(ack.P50)} {Ms(ack.P90)} {Ms(ack.P99)}");
                }
            }
        }

        if (r.Bare.Count > 0)
        {
            s.AppendLine();
            s.AppendLine(c, $"bare ONNX Runtime loop, same model and intra-op threads, and 1 thread for a camera's model (edgerunner bench; CPU over the timed runs):");
            s.AppendLine(c, $"{"MODEL",-18} {"THREADS",7} {"RUNS/S",8} {"P50 MS",8} {"P99 MS",8} {"CPU MS/RUN",10}");
            foreach (var bare in r.Bare)
            {
                if (bare.Error is null)
                {
                    s.AppendLine(c, $"{bare.Model,-18} {bare.Threads,7} {bare.RunsPerSecond,8:0.0} {Ms(bare.P50)} {Ms(bare.P99)} {bare.CpuMillisecondsPerRun,10:0.000}");
                }
                else
                {
                    s.AppendLine(c, $"{bare.Model,-18} {bare.Threads,7} failed: {bare.Error}");
                }
            }
        }

        if (r.Soak is { } soak)
        {
            s.AppendLine();
            s.AppendLine(c, $"soak: {soak.Samples.Count} samples; RSS {soak.RssSlopeMibPerHour:+0.000;-0.000} MiB/h ({soak.RssSlopeSecondHalfMibPerHour:+0.000;-0.000} MiB/h over the second half), managed heap {soak.ManagedHeapSlopeMibPerHour:+0.000;-0.000} MiB/h, CPU {soak.CpuPercentMean:0.0} % mean, {soak.Gen2PerHour:0.0} gen-2 GCs/h");
        }

        foreach (var plot in r.Plots)
        {
            s.AppendLine(c, $"plot: {plot}");
        }

        return s.ToString();

        static string Ms(double? v) => v is { } x ? x.ToString("0.000", CultureInfo.InvariantCulture).PadLeft(8) : "       -";
        static string Opt(double? v) => v is { } x ? x.ToString("0.00#", CultureInfo.InvariantCulture) : "-";
    }

    private static SoakSample SoakOf(Sample start, Sample now, Sample? previous)
    {
        var frequency = (double)TimeProvider.System.TimestampFrequency;
        var cpu = previous is null ? 0 : (now.Cpu - previous.Cpu).TotalSeconds / Math.Max(1e-3, (now.Timestamp - previous.Timestamp) / frequency) * 100;
        return new SoakSample(
            Round((now.Timestamp - start.Timestamp) / frequency, 2),
            now.Rss,
            now.ManagedHeap,
            [now.Gc[0] - start.Gc[0], now.Gc[1] - start.Gc[1], now.Gc[2] - start.Gc[2]],
            Round(cpu));
    }

    private static double Round(double value, int digits = 1) => Math.Round(value, digits);

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>What one moment looks like: counters, process figures and a metrics snapshot.</summary>
    private sealed record Sample(
        long Timestamp,
        TimeSpan Cpu,
        long Allocated,
        int[] Gc,
        long Rss,
        long ManagedHeap,
        long Published,
        long Dropped,
        long Queued,
        Dictionary<string, (long Captured, long Inferred, long Dropped, long Skipped, long Failed)> Cameras,
        Dictionary<string, long> Streams,
        Dictionary<int, (string Name, long Ticks)> Children,
        MetricsSnapshot Metrics)
    {
        public static Sample Take(VisionService vision, SensorService sensors, MqttPublisher publisher, MetricsCollector collector)
        {
            var metrics = collector.Collect();
            return new Sample(
                TimeProvider.System.GetTimestamp(),
                Environment.CpuUsage.TotalTime,
                GC.GetTotalAllocatedBytes(precise: true),
                [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)],
                Environment.WorkingSet,
                GC.GetTotalMemory(forceFullCollection: false),
                publisher.Published,
                publisher.Dropped,
                publisher.Queued,
                vision.Pipelines.ToDictionary(p => p.CameraId, p => (p.FramesCaptured, p.FramesProcessed, p.FramesDropped, p.FramesSkippedRate + p.FramesSkippedMotion, p.FramesFailed), StringComparer.Ordinal),
                sensors.Streams.ToDictionary(r => r.StreamId, r => r.Steps, StringComparer.Ordinal),
                ChildCpuTicks(),
                metrics);
        }

        /// <summary>Our child processes (ffmpeg, gst-launch) and their CPU ticks (utime + stime), from /proc; empty elsewhere.</summary>
        internal static Dictionary<int, (string Name, long Ticks)> ChildCpuTicks()
        {
            var children = new Dictionary<int, (string, long)>();
            var self = Environment.ProcessId;
            try
            {
                foreach (var directory in Directory.EnumerateDirectories("/proc"))
                {
                    if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                    {
                        continue;
                    }

                    string stat;
                    try
                    {
                        stat = File.ReadAllText(Path.Combine(directory, "stat"));
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        continue;
                    }

                    // "pid (comm) state ppid … utime(14) stime(15)": comm may hold spaces, so split after its ')'.
                    var close = stat.LastIndexOf(')');
                    var open = stat.IndexOf('(', StringComparison.Ordinal);
                    if (open < 0 || close < open)
                    {
                        continue;
                    }

                    var fields = stat[(close + 2)..].Split(' ');
                    if (fields.Length > 12
                        && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ppid) && ppid == self
                        && long.TryParse(fields[11], NumberStyles.None, CultureInfo.InvariantCulture, out var utime)
                        && long.TryParse(fields[12], NumberStyles.None, CultureInfo.InvariantCulture, out var stime))
                    {
                        children[pid] = (stat[(open + 1)..close], utime + stime);
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // No /proc: no child figures.
            }

            return children;
        }
    }
}

/// <summary>The command's settings.</summary>
internal sealed record BenchPipelineSettings(string? ConfigFile, IReadOnlyList<string> Overrides, double Seconds, double WarmupSeconds, bool Soak, double SampleSeconds, string? PlotsDirectory, bool Bare, bool FullSpeed = false);

/// <summary>One bench-pipeline run (its <c>--json</c> output).</summary>
internal sealed record BenchPipelineReport(
    [property: JsonPropertyName("config")] string Config,
    [property: JsonPropertyName("broker")] string Broker,
    [property: JsonPropertyName("ready_ms")] double ReadyMilliseconds,
    [property: JsonPropertyName("warmup_s")] double WarmupSeconds,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("process")] ProcessBench Process,
    [property: JsonPropertyName("mqtt")] MqttBench Mqtt,
    [property: JsonPropertyName("cameras")] IReadOnlyList<CameraBench> Cameras,
    [property: JsonPropertyName("streams")] IReadOnlyList<StreamBench> Streams,
    [property: JsonPropertyName("bare")] IReadOnlyList<BareResult> Bare,
    [property: JsonPropertyName("soak")] SoakReport? Soak,
    [property: JsonPropertyName("plots")] IReadOnlyList<string> Plots);

/// <summary>The process over the measured time. CPU is process CPU time (all threads), in % of one core.</summary>
internal sealed record ProcessBench(
    [property: JsonPropertyName("cpu_percent")] double CpuPercent,
    [property: JsonPropertyName("cpu_ms_per_frame")] double? CpuMillisecondsPerFrame,
    [property: JsonPropertyName("cpu_ms_per_result")] double? CpuMillisecondsPerResult,
    [property: JsonPropertyName("allocated_bytes")] long AllocatedBytes,
    [property: JsonPropertyName("allocated_bytes_per_s")] double AllocatedBytesPerSecond,
    [property: JsonPropertyName("gc_collections")] IReadOnlyList<int> GcCollections,
    [property: JsonPropertyName("rss_bytes")] long RssBytes,
    [property: JsonPropertyName("peak_rss_bytes")] long PeakRssBytes,
    [property: JsonPropertyName("children")] IReadOnlyList<ChildCpu> Children);

/// <summary>A child process (ffmpeg, gst-launch) and its CPU over the measured time.</summary>
internal sealed record ChildCpu(
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("cpu_percent")] double CpuPercent);

/// <summary>The publisher over the measured time.</summary>
internal sealed record MqttBench(
    [property: JsonPropertyName("published_per_s")] double PublishedPerSecond,
    [property: JsonPropertyName("dropped")] long Dropped,
    [property: JsonPropertyName("queued")] long Queued);

/// <summary>One camera over the measured time.</summary>
internal sealed record CameraBench(
    [property: JsonPropertyName("camera")] string Camera,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("provider")] string Provider,
    [property: JsonPropertyName("capture_fps")] double CaptureFps,
    [property: JsonPropertyName("inference_fps")] double InferenceFps,
    [property: JsonPropertyName("frames_dropped")] long FramesDropped,
    [property: JsonPropertyName("frames_skipped")] long FramesSkipped,
    [property: JsonPropertyName("frames_failed")] long FramesFailed,
    [property: JsonPropertyName("stages")] IReadOnlyList<StageLatency> Stages,
    [property: JsonPropertyName("alone")] CameraAlone? Alone = null);

/// <summary>
/// A camera's stages measured alone after the run (null figures: not measured), and the pipeline against them:
/// <c>cpu_ratio</c> = the daemon's CPU per inferred frame ÷ (preprocessing one frame + one bare run on one thread),
/// target ≤ 1.3; <c>full_speed_ratio</c> (with <c>--full-speed</c>) = inferred frames/s ÷ the bound the stages allow,
/// min(capture frames/s, 1 ÷ (preprocessing + one bare run with the model's threads)), target ≥ 0.95.
/// </summary>
internal sealed record CameraAlone(
    [property: JsonPropertyName("capture_fps")] double? CaptureFps,
    [property: JsonPropertyName("capture_cpu_ms_per_frame")] double? CaptureCpuMillisecondsPerFrame,
    [property: JsonPropertyName("capture_child_cpu_ms_per_frame")] double? CaptureChildCpuMillisecondsPerFrame,
    [property: JsonPropertyName("preprocess_ms_per_frame")] double? PreprocessMillisecondsPerFrame,
    [property: JsonPropertyName("preprocess_cpu_ms_per_frame")] double? PreprocessCpuMillisecondsPerFrame,
    [property: JsonPropertyName("bare_1_thread_cpu_ms_per_run")] double? Bare1ThreadCpuMillisecondsPerRun,
    [property: JsonPropertyName("bound_cpu_ms_per_frame")] double? BoundCpuMillisecondsPerFrame,
    [property: JsonPropertyName("cpu_ratio")] double? CpuRatio,
    [property: JsonPropertyName("full_speed_bound_fps")] double? FullSpeedBoundFps,
    [property: JsonPropertyName("full_speed_ratio")] double? FullSpeedRatio,
    [property: JsonPropertyName("error")] string? Error)
{
    public static CameraAlone Failed(string error) => new(null, null, null, null, null, null, null, null, null, null, error);
}

/// <summary>What the stages-alone measurement needs of a camera, taken while its pipeline ran.</summary>
internal sealed record CameraStagesInput(string Camera, CameraOptions Options, string Model, ImagePreprocessingSpec Spec, InputElementType ElementType);

/// <summary>A copy of one captured frame's pixels.</summary>
internal sealed record CapturedFrame(byte[] Pixels, int Width, int Height, int Stride, FramePixelFormat Format);

/// <summary>One sensor stream over the measured time.</summary>
internal sealed record StreamBench(
    [property: JsonPropertyName("stream")] string Stream,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("provider")] string Provider,
    [property: JsonPropertyName("steps_per_s")] double StepsPerSecond,
    [property: JsonPropertyName("step")] StageLatency Step,
    [property: JsonPropertyName("publish_ack")] StageLatency? PublishAck = null);

/// <summary>Latency of one stage over the measured time (ms; percentiles within 8 %), and its fine buckets for plots.</summary>
internal sealed record StageLatency(
    [property: JsonPropertyName("stage")] string Stage,
    [property: JsonPropertyName("count")] long Count,
    [property: JsonPropertyName("p50_ms")] double? P50,
    [property: JsonPropertyName("p90_ms")] double? P90,
    [property: JsonPropertyName("p99_ms")] double? P99,
    [property: JsonPropertyName("mean_ms")] double? Mean,
    [property: JsonIgnore] IReadOnlyList<long> FineBuckets);

/// <summary>The bare ONNX Runtime loop on one model.</summary>
internal sealed record BareResult(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("threads")] int Threads,
    [property: JsonPropertyName("runs_per_s")] double? RunsPerSecond,
    [property: JsonPropertyName("p50_ms")] double? P50,
    [property: JsonPropertyName("p99_ms")] double? P99,
    [property: JsonPropertyName("cpu_ms_per_run")] double? CpuMillisecondsPerRun,
    [property: JsonPropertyName("error")] string? Error);

/// <summary>The soak: samples and slopes.</summary>
internal sealed record SoakReport(
    [property: JsonPropertyName("samples")] IReadOnlyList<SoakSample> Samples,
    [property: JsonPropertyName("rss_slope_mib_per_h")] double RssSlopeMibPerHour,
    [property: JsonPropertyName("rss_slope_second_half_mib_per_h")] double RssSlopeSecondHalfMibPerHour,
    [property: JsonPropertyName("managed_heap_slope_mib_per_h")] double ManagedHeapSlopeMibPerHour,
    [property: JsonPropertyName("cpu_percent_mean")] double CpuPercentMean,
    [property: JsonPropertyName("gen2_per_h")] double Gen2PerHour);

/// <summary>One soak sample: seconds since the measuring began, RSS, heap, GC counts since then and CPU since the previous sample.</summary>
internal sealed record SoakSample(
    [property: JsonPropertyName("t_s")] double Seconds,
    [property: JsonPropertyName("rss_bytes")] long RssBytes,
    [property: JsonPropertyName("managed_heap_bytes")] long ManagedHeapBytes,
    [property: JsonPropertyName("gc")] IReadOnlyList<int> Gc,
    [property: JsonPropertyName("cpu_percent")] double CpuPercent);

[JsonSerializable(typeof(BenchPipelineReport))]
internal sealed partial class BenchPipelineJsonContext : JsonSerializerContext;
