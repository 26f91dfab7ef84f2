// Throwaway ONNX Runtime harness for the shapes-detector build (built under /tmp by build.sh, never part of the solution).
//   eval     MODEL DUMP_DIR OUT.bin            every frame of DUMP_DIR (labels.jsonl order): PNG -> daemon letterbox -> ORT; raw output0 floats appended to OUT.bin
//   bench    MODEL DUMP_DIR THREADS RUNS       median / p90 latency of one session.Run (preprocessing excluded), 1 frame, after 30 warm-up runs
//   optimize MODEL OUT.onnx                   writes the ORT_ENABLE_ALL optimized graph (CPU EP)
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Preprocessing;
using Microsoft.ML.OnnxRuntime;
using SkiaSharp;

var spec = new ImagePreprocessingSpec { Width = 320, Height = 320, Resize = ResizeMode.Letterbox, PadValue = 114 };

switch (args[0])
{
    case "eval":
        {
            using var session = Open(args[1], 1, null);
            var pre = new ImagePreprocessor(spec);
            var input = new float[pre.TensorLength];
            var output = new float[7 * 2100];
            using var inValue = OrtValue.CreateTensorValueFromMemory(input, [1, 3, 320, 320]);
            using var outValue = OrtValue.CreateTensorValueFromMemory(output, [1, 7, 2100]);
            using var run = new RunOptions();
            using var file = File.Create(args[3]);
            var n = 0;
            foreach (var line in File.ReadLines(Path.Combine(args[2], "labels.jsonl")))
            {
                using var doc = JsonDocument.Parse(line);
                Preprocess(Path.Combine(args[2], doc.RootElement.GetProperty("file").GetString()!), pre, input);
                session.Run(run, ["images"], [inValue], ["output0"], [outValue]);
                file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(output.AsSpan()));
                n++;
            }

            Console.WriteLine($"eval {Path.GetFileName(args[1])}: {n} frames");
            break;
        }

    case "bench":
        {
            var threads = int.Parse(args[3], CultureInfo.InvariantCulture);
            var runs = int.Parse(args[4], CultureInfo.InvariantCulture);
            using var session = Open(args[1], threads, null);
            var pre = new ImagePreprocessor(spec);
            var input = new float[pre.TensorLength];
            var output = new float[7 * 2100];
            var first = File.ReadLines(Path.Combine(args[2], "labels.jsonl")).First();
            using (var doc = JsonDocument.Parse(first))
            {
                Preprocess(Path.Combine(args[2], doc.RootElement.GetProperty("file").GetString()!), pre, input);
            }

            using var inValue = OrtValue.CreateTensorValueFromMemory(input, [1, 3, 320, 320]);
            using var outValue = OrtValue.CreateTensorValueFromMemory(output, [1, 7, 2100]);
            using var run = new RunOptions();
            for (var i = 0; i < 30; i++)
            {
                session.Run(run, ["images"], [inValue], ["output0"], [outValue]);
            }

            var ms = new double[runs];
            for (var i = 0; i < runs; i++)
            {
                var t = Stopwatch.GetTimestamp();
                session.Run(run, ["images"], [inValue], ["output0"], [outValue]);
                ms[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
            }

            Array.Sort(ms);
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                model = Path.GetFileName(args[1]),
                threads,
                runs,
                median_ms = Math.Round(ms[runs / 2], 3),
                p90_ms = Math.Round(ms[(int)(runs * 0.9)], 3),
                min_ms = Math.Round(ms[0], 3),
            }));
            break;
        }

    case "optimize":
        {
            using var session = Open(args[1], 1, args[2]);
            Console.WriteLine($"optimized graph written to {args[2]}");
            break;
        }

    default:
        throw new ArgumentException($"unknown verb {args[0]}");
}

static InferenceSession Open(string model, int threads, string? optimizedPath)
{
    var options = new SessionOptions
    {
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        IntraOpNumThreads = threads,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    };
    if (optimizedPath is not null)
    {
        options.OptimizedModelFilePath = optimizedPath;
    }

    return new InferenceSession(model, options);
}

static void Preprocess(string png, ImagePreprocessor pre, float[] input)
{
    using var decoded = SKBitmap.Decode(png) ?? throw new IOException($"cannot decode {png}");
    using var rgba = decoded.Copy(SKColorType.Rgba8888);
    var view = new ImageView(rgba.GetPixelSpan(), rgba.Width, rgba.Height, rgba.RowBytes, ImagePixelFormat.Rgba32);
    pre.Run(view, input);
}
