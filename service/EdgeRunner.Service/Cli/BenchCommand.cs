using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Manifests;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace EdgeRunner.Service.Cli;

/// <summary>One model's bench figures.</summary>
internal sealed record BenchResult(
    string Model,
    string Sha256,
    IReadOnlyList<BenchInput> Inputs,
    string RequestedProvider,
    string ExecutionProvider,
    string? FallbackReason,
    int Threads,
    double FirstRunMilliseconds,
    long Runs,
    double Seconds,
    double P50Milliseconds,
    double P90Milliseconds,
    double P99Milliseconds,
    double MeanMilliseconds)
{
    /// <summary>Inferences per second over the timed runs.</summary>
    public double Throughput => Runs / Seconds;

    /// <summary>ONNX Runtime's spin-waiting: "on", "off", or "default" (not set: ONNX Runtime spins).</summary>
    public string Spinning { get; init; } = "default";

    /// <summary>Paced runs per second (<c>--rate</c>); null when run back to back.</summary>
    public double? RatePerSecond { get; init; }

    /// <summary>Process CPU time over the timed runs, per run (all threads, spinning workers included).</summary>
    public double CpuMillisecondsPerRun { get; init; }

    /// <summary>Process CPU time over the timed runs as a percentage of one core.</summary>
    public double CpuPercent { get; init; }
}

/// <summary>One input as fed: name, ONNX element type, concrete shape.</summary>
internal sealed record BenchInput(string Name, string ElementType, IReadOnlyList<long> Shape);

/// <summary>
/// <c>edgerunner bench MODEL [MODEL ...] [--provider P] [--threads N] [--seconds S] [--dim NAME=N] [--json]</c>:
/// opens each model the way the daemon does (provider preference with CPU fallback, a warm-up run), then runs it
/// for S seconds on seeded random input of each input's element type and shape, and prints latency percentiles,
/// throughput and the provider actually used; several models side by side (e.g. FP32 and INT8 of one network).
/// <c>--spinning on|off|both</c> sets ONNX Runtime's spin-waiting (both: each model twice, side by side) and
/// <c>--rate N</c> paces the runs N a second with sleeps between, where spinning workers burn CPU; each column
/// gives the process CPU time per run.
/// </summary>
internal static class BenchCommand
{
    /// <summary>Seed of the synthetic input: the same bytes on every run and machine.</summary>
    public const int InputSeed = 20240613;

    public static Command Create()
    {
        var models = new Argument<FileInfo[]>("MODEL") { Description = "One or more .onnx files or model manifests (model.json); several are shown side by side.", Arity = ArgumentArity.OneOrMore };
        var provider = new Option<string>("--provider") { Description = "Execution provider to ask for (cpu, cuda, tensorrt, openvino, xnnpack); falls back to CPU, and says so.", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (0 = its default: one per physical core).", DefaultValueFactory = _ => 0 };
        var seconds = new Option<double>("--seconds") { Description = "How long to run each model after the warm-up.", DefaultValueFactory = _ => 5 };
        var dims = new Option<string[]>("--dim") { Description = "Value of a symbolic input dimension, NAME=N (repeatable); others are 1.", AllowMultipleArgumentsPerToken = false };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of the table." };
        var spinning = new Option<string?>("--spinning") { Description = "ONNX Runtime's worker spin-waiting: on, off, or both (each model twice, side by side); default: ONNX Runtime's (on)." };
        var rate = new Option<double>("--rate") { Description = "Paced mode: N runs per second with sleeps between (where spinning costs CPU); 0 = back to back.", DefaultValueFactory = _ => 0 };
        var command = new Command("bench", "Measure inference latency (p50/p90/p99) and throughput of models on synthetic input, with the execution provider actually used. Exit 0, 64 on bad options, 65 when a model cannot be loaded or run.")
        {
            models, provider, threads, seconds, dims, json, spinning, rate,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (code, text) = Run(
                [.. parse.GetValue(models)!.Select(f => f.FullName)],
                parse.GetValue(provider)!,
                parse.GetValue(threads),
                parse.GetValue(seconds),
                parse.GetValue(dims) ?? [],
                parse.GetValue(json),
                Console.IsErrorRedirected ? null : Console.Error,
                cancellationToken,
                parse.GetValue(spinning),
                parse.GetValue(rate));
            await (code == 0 ? Console.Out : Console.Error).WriteAsync(text.AsMemory(), cancellationToken);
            return code;
        });
        return command;
    }

    /// <summary>Runs the bench; <paramref name="progress"/> (a terminal) gets a one-line progress display, rewritten in place.</summary>
    internal static (int ExitCode, string Text) Run(IReadOnlyList<string> paths, string provider, int threads, double seconds, IReadOnlyList<string> dims, bool json, TextWriter? progress, CancellationToken cancellationToken, string? spinning = null, double rate = 0)
    {
        bool?[]? spinChoices = spinning?.ToLowerInvariant() switch
        {
            null => [null],
            "on" => [true],
            "off" => [false],
            "both" => [true, false],
            _ => null,
        };
        if (spinChoices is null)
        {
            return (EdgeRunnerCommandLine.UsageError, $"edgerunner bench: --spinning takes on, off or both (got '{spinning}')\n");
        }

        if (!(rate >= 0 && rate <= 100_000))
        {
            return (EdgeRunnerCommandLine.UsageError, $"edgerunner bench: --rate must be between 0 and 100000 runs per second (got {rate.ToString(CultureInfo.InvariantCulture)})\n");
        }

        if (!ExecutionProviders.Known.ContainsKey(provider))
        {
            return (EdgeRunnerCommandLine.UsageError, $"edgerunner bench: unknown provider '{provider}' (known: {string.Join(", ", ExecutionProviders.Known.Keys)})\n");
        }

        if (!(seconds > 0 && seconds <= 3600))
        {
            return (EdgeRunnerCommandLine.UsageError, $"edgerunner bench: --seconds must be greater than 0 and at most 3600 (got {seconds.ToString(CultureInfo.InvariantCulture)})\n");
        }

        if (threads is < 0 or > 1024)
        {
            return (EdgeRunnerCommandLine.UsageError, $"edgerunner bench: --threads must be between 0 and 1024 (got {threads})\n");
        }

        var dimValues = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var dim in dims)
        {
            var equals = dim.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || !long.TryParse(dim.AsSpan(equals + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value is < 1 or > 1_000_000)
            {
                return (EdgeRunnerCommandLine.UsageError, $"edgerunner bench: --dim takes NAME=N with N from 1 to 1000000 (got '{dim}')\n");
            }

            dimValues[dim[..equals]] = value;
        }

        var results = new List<BenchResult>();
        foreach (var path in paths)
        {
            try
            {
                foreach (var spin in spinChoices)
                {
                    results.Add(Measure(path, provider, threads, seconds, dimValues, progress, spin, rate, cancellationToken));
                }
            }
            catch (Exception ex) when (ex is ModelLoadException or ManifestException or BenchException or IOException or UnauthorizedAccessException)
            {
                return (InspectCommand.ModelError, $"edgerunner bench: {ex.Message}\n");
            }
            catch (OnnxRuntimeException ex)
            {
                return (InspectCommand.ModelError, $"edgerunner bench: {path}: inference failed: {ex.Message}\n");
            }
        }

        return (0, json ? FormatJson(results) : FormatTable(results));
    }

    private static BenchResult Measure(string path, string provider, int threads, double seconds, IReadOnlyDictionary<string, long> dims, TextWriter? progress, bool? spinning, double rate, CancellationToken cancellationToken)
    {
        var modelPath = path;
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            var manifest = ModelManifest.Load(path);
            manifest.VerifySha256();
            modelPath = manifest.ModelPath;
        }

        if (ModelFiles.Problem(modelPath, ModelFiles.MaxModelBytes) is { } problem)
        {
            throw new BenchException($"model file '{modelPath}' {problem}");
        }

        var options = new ModelSessionOptions
        {
            Id = Path.GetFileName(modelPath),
            Path = modelPath,
            ExecutionProviders = [provider],
            IntraOpThreads = threads,
            AllowSpinning = spinning,
        };
        var sha256 = ModelFiles.Sha256(modelPath, ModelFiles.MaxModelBytes);
        var firstRunMs = 0.0;
        using var runner = ProviderSelection.Open(options, NullLogger.Instance, (session, choice) =>
        {
            var candidate = new Runner(session, choice, dims);
            try
            {
                // The warm-up: the first run allocates arenas and picks kernels (on a GPU it may build engines).
                var start = Stopwatch.GetTimestamp();
                candidate.RunOnce();
                firstRunMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                return candidate;
            }
            catch
            {
                candidate.DisposeInputs();
                throw;
            }
        });

        var latencies = new List<double>(4096);
        var label = Path.GetFileName(modelPath);
        var began = Stopwatch.GetTimestamp();
        var lastProgress = began;
        var budget = TimeSpan.FromSeconds(seconds);
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        while (Stopwatch.GetElapsedTime(began) < budget && !cancellationToken.IsCancellationRequested)
        {
            if (rate > 0)
            {
                // Paced: run i starts at i/rate; the wait sleeps, as a daemon waiting for its next frame does.
                var wait = TimeSpan.FromSeconds(latencies.Count / rate) - Stopwatch.GetElapsedTime(began);
                if (wait > TimeSpan.Zero)
                {
                    Thread.Sleep(wait);
                }
            }

            var start = Stopwatch.GetTimestamp();
            runner.RunOnce();
            var end = Stopwatch.GetTimestamp();
            latencies.Add(Stopwatch.GetElapsedTime(start, end).TotalMilliseconds);
            if (progress is not null && Stopwatch.GetElapsedTime(lastProgress, end).TotalMilliseconds >= 200)
            {
                lastProgress = end;
                progress.Write(string.Create(CultureInfo.InvariantCulture, $"\r{label}: {Stopwatch.GetElapsedTime(began, end).TotalSeconds:0.0}/{seconds:0.0} s, {latencies.Count} runs, last {latencies[^1]:0.00} ms   "));
            }
        }

        var elapsed = Stopwatch.GetElapsedTime(began).TotalSeconds;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds;
        if (progress is not null)
        {
            progress.Write("\r" + new string(' ', label.Length + 60) + "\r");
        }

        cancellationToken.ThrowIfCancellationRequested();
        latencies.Sort();
        return new BenchResult(
            modelPath,
            sha256,
            runner.Inputs,
            provider,
            runner.Choice.ExecutionProvider,
            runner.Choice.FallbackReason,
            threads,
            firstRunMs,
            latencies.Count,
            elapsed,
            Percentile(latencies, 0.50),
            Percentile(latencies, 0.90),
            Percentile(latencies, 0.99),
            latencies.Average())
        {
            Spinning = spinning switch { true => "on", false => "off", null => "default" },
            RatePerSecond = rate > 0 ? rate : null,
            CpuMillisecondsPerRun = latencies.Count > 0 ? cpu / latencies.Count : 0,
            CpuPercent = 100 * cpu / 1000 / elapsed,
        };
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    internal static double Percentile(List<double> sorted, double q) =>
        sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Count) - 1, 0, sorted.Count - 1)];

    internal static string FormatTable(IReadOnlyList<BenchResult> results)
    {
        var c = CultureInfo.InvariantCulture;
        var rows = new List<(string Label, string[] Values)>
        {
            ("model", [.. results.Select(r => r.Model)]),
            ("sha256", [.. results.Select(r => r.Sha256[..12] + "…")]),
            ("inputs", [.. results.Select(r => string.Join(" ", r.Inputs.Select(i => $"{i.Name} {i.ElementType} {"[" + string.Join(",", i.Shape) + "]"}")))]),
            ("provider", [.. results.Select(r => r.FallbackReason is null ? r.ExecutionProvider : $"{r.ExecutionProvider} (asked for {r.RequestedProvider}: {r.FallbackReason})")]),
            ("threads", [.. results.Select(r => r.Threads == 0 ? "ONNX Runtime default" : r.Threads.ToString(c))]),
            ("first run", [.. results.Select(r => string.Create(c, $"{r.FirstRunMilliseconds:0.00} ms"))]),
            ("runs", [.. results.Select(r => string.Create(c, $"{r.Runs} in {r.Seconds:0.00} s"))]),
            ("p50", [.. results.Select(r => string.Create(c, $"{r.P50Milliseconds:0.000} ms"))]),
            ("p90", [.. results.Select(r => string.Create(c, $"{r.P90Milliseconds:0.000} ms"))]),
            ("p99", [.. results.Select(r => string.Create(c, $"{r.P99Milliseconds:0.000} ms"))]),
            ("mean", [.. results.Select(r => string.Create(c, $"{r.MeanMilliseconds:0.000} ms"))]),
            ("throughput", [.. results.Select(r => string.Create(c, $"{r.Throughput:0.0} /s"))]),
            ("spinning", [.. results.Select(r => r.Spinning)]),
            ("pace", [.. results.Select(r => r.RatePerSecond is { } pace ? string.Create(c, $"{pace:0.##} runs/s") : "back to back")]),
            ("cpu/run", [.. results.Select(r => string.Create(c, $"{r.CpuMillisecondsPerRun:0.000} ms"))]),
            ("cpu", [.. results.Select(r => string.Create(c, $"{r.CpuPercent:0.0} % of a core"))]),
        };
        var labelWidth = rows.Max(r => r.Label.Length) + 2;
        var widths = Enumerable.Range(0, results.Count).Select(i => rows.Max(r => r.Values[i].Length) + 2).ToArray();
        var s = new StringBuilder();
        foreach (var (label, values) in rows)
        {
            s.Append(label.PadRight(labelWidth));
            for (var i = 0; i < values.Length; i++)
            {
                s.Append(i == values.Length - 1 ? values[i] : values[i].PadRight(widths[i]));
            }

            s.Append('\n');
        }

        return s.ToString();
    }

    internal static string FormatJson(IReadOnlyList<BenchResult> results)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("models");
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteString("model", r.Model);
                w.WriteString("sha256", r.Sha256);
                w.WriteStartArray("inputs");
                foreach (var input in r.Inputs)
                {
                    w.WriteStartObject();
                    w.WriteString("name", input.Name);
                    w.WriteString("element_type", input.ElementType);
                    w.WriteStartArray("shape");
                    foreach (var d in input.Shape)
                    {
                        w.WriteNumberValue(d);
                    }

                    w.WriteEndArray();
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteString("requested_provider", r.RequestedProvider);
                w.WriteString("execution_provider", r.ExecutionProvider);
                if (r.FallbackReason is null)
                {
                    w.WriteNull("fallback_reason");
                }
                else
                {
                    w.WriteString("fallback_reason", r.FallbackReason);
                }

                w.WriteNumber("threads", r.Threads);
                w.WriteNumber("first_run_ms", r.FirstRunMilliseconds);
                w.WriteNumber("runs", r.Runs);
                w.WriteNumber("seconds", r.Seconds);
                w.WriteStartObject("latency_ms");
                w.WriteNumber("p50", r.P50Milliseconds);
                w.WriteNumber("p90", r.P90Milliseconds);
                w.WriteNumber("p99", r.P99Milliseconds);
                w.WriteNumber("mean", r.MeanMilliseconds);
                w.WriteEndObject();
                w.WriteNumber("throughput_per_second", r.Throughput);
                w.WriteString("spinning", r.Spinning);
                if (r.RatePerSecond is { } pace)
                {
                    w.WriteNumber("rate_per_second", pace);
                }
                else
                {
                    w.WriteNull("rate_per_second");
                }

                w.WriteNumber("cpu_ms_per_run", r.CpuMillisecondsPerRun);
                w.WriteNumber("cpu_percent", r.CpuPercent);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>A model that cannot be benchmarked as given (an input type or shape this command cannot synthesise).</summary>
    private sealed class BenchException(string message) : Exception(message);

    /// <summary>An open session with seeded random input for every input, run through one binding.</summary>
    private sealed class Runner : IDisposable
    {
        private readonly InferenceSession _session;
        private readonly RunOptions _runOptions = new();
        private readonly List<OrtValue> _inputs = [];
        private readonly string[] _inputNames;
        private readonly string[] _outputNames;

        public Runner(InferenceSession session, ProviderChoice choice, IReadOnlyDictionary<string, long> dims)
        {
            _session = session;
            Choice = choice;
            var random = new Random(InputSeed);
            var inputs = new List<BenchInput>();
            _inputNames = [.. session.InputNames];
            _outputNames = [.. session.OutputNames];
            try
            {
                foreach (var name in _inputNames)
                {
                    var meta = session.InputMetadata[name];
                    var shape = new long[meta.Dimensions.Length];
                    for (var i = 0; i < shape.Length; i++)
                    {
                        var symbol = i < meta.SymbolicDimensions.Length ? meta.SymbolicDimensions[i] : string.Empty;
                        shape[i] = meta.Dimensions[i] > 0 ? meta.Dimensions[i] : dims.GetValueOrDefault(symbol, 1);
                    }

                    var count = checked((int)shape.Aggregate(1L, (a, b) => checked(a * b)));
                    _inputs.Add(meta.ElementDataType switch
                    {
                        TensorElementType.Float => OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, count).Select(_ => random.NextSingle()).ToArray(), shape),
                        TensorElementType.UInt8 => OrtValue.CreateTensorValueFromMemory(Bytes(random, count), shape),
                        TensorElementType.Int8 => OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(Bytes(random, count), b => unchecked((sbyte)b)), shape),
                        TensorElementType.Int32 => OrtValue.CreateTensorValueFromMemory(new int[count], shape),
                        TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory(new long[count], shape),
                        TensorElementType.Bool => OrtValue.CreateTensorValueFromMemory(new bool[count], shape),
                        var other => throw new BenchException($"{session.ModelMetadata.GraphName}: input '{name}' is {other}; bench synthesises float32, uint8, int8 (seeded random), int32, int64 and bool (zeros)"),
                    });
                    inputs.Add(new BenchInput(name, meta.ElementDataType.ToString().ToLowerInvariant(), shape));
                }
            }
            catch
            {
                DisposeInputs();
                throw;
            }

            Inputs = inputs;
        }

        public ProviderChoice Choice { get; }

        public IReadOnlyList<BenchInput> Inputs { get; }

        public void RunOnce()
        {
            using var outputs = _session.Run(_runOptions, _inputNames, _inputs, _outputNames);
        }

        /// <summary>Everything but the session (which provider selection disposes when the warm-up fails).</summary>
        public void DisposeInputs()
        {
            foreach (var value in _inputs)
            {
                value.Dispose();
            }

            _runOptions.Dispose();
        }

        public void Dispose()
        {
            DisposeInputs();
            _session.Dispose();
        }

        private static byte[] Bytes(Random random, int count)
        {
            var bytes = new byte[count];
            random.NextBytes(bytes);
            return bytes;
        }
    }
}
