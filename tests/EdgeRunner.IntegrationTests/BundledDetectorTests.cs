using System.Security.Cryptography;
using System.Text.Json;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Preprocessing;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The bundled demo detector (models/bundled/shapes-detector): manifest hashes, that ONNX Runtime really runs the
/// INT8 QDQ model on quantized kernels, and that INT8 agrees with the FP32 model it was quantized from.
/// </summary>
public sealed class BundledDetectorTests
{
    private const int Anchors = 2100;
    private const int Rows = 7; // cx, cy, w, h, circle, square, triangle

    // Measured over 500 held-out frames (models/training/shapes-detector/README.md): per frame, the 99th percentile of
    // |INT8 - FP32| over all 6300 scores was at most 0.0065 and the mean at most 0.00035; of 1764 FP32 detections with
    // score >= 0.5, 1761 had an INT8 detection of the same class with IoU >= 0.5. The bounds leave headroom for the
    // synthetic camera's per-process noise.
    private const double ScoreP99Tolerance = 0.02;
    private const double ScoreMeanTolerance = 0.002;
    private const float MatchIou = 0.5f;

    private static string Folder => Path.Combine(TestPaths.RepositoryRoot, "models", "bundled", "shapes-detector");

    [Fact]
    public async Task Both_model_files_match_the_manifest_hashes()
    {
        var ct = TestContext.Current.CancellationToken;
        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(Folder, "model.json"), ct));
        var root = manifest.RootElement;
        var quantization = root.GetProperty("quantization");

        Assert.Equal("model.onnx", root.GetProperty("file").GetString());
        Assert.Equal("model.fp32.onnx", quantization.GetProperty("float_model").GetString());
        Assert.Equal(root.GetProperty("sha256").GetString(), await Sha256Async(Path.Combine(Folder, "model.onnx"), ct));
        Assert.Equal(quantization.GetProperty("float_sha256").GetString(), await Sha256Async(Path.Combine(Folder, "model.fp32.onnx"), ct));
        Assert.Equal(["circle", "square", "triangle"], (await File.ReadAllLinesAsync(Path.Combine(Folder, "labels.txt"), ct)).Where(l => l.Length > 0));
    }

    [Fact]
    public void Onnx_Runtime_fuses_every_convolution_of_the_int8_model_into_QLinearConv()
    {
        var temp = Directory.CreateTempSubdirectory("edgerunner-detector-");
        try
        {
            var optimized = Path.Combine(temp.FullName, "model.optimized.onnx");
            using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 1, OptimizedModelFilePath = optimized })
            using (new InferenceSession(Path.Combine(Folder, "model.onnx"), options))
            {
            }

            var floatConvs = OnnxOps.Count(File.ReadAllBytes(Path.Combine(Folder, "model.fp32.onnx")));
            var ops = OnnxOps.Count(File.ReadAllBytes(optimized));

            Assert.Equal(18, floatConvs.GetValueOrDefault("Conv"));
            Assert.Equal(floatConvs["Conv"], ops.GetValueOrDefault("QLinearConv"));
            Assert.Equal(0, ops.GetValueOrDefault("Conv"));
            Assert.Equal(0, ops.GetValueOrDefault("FusedConv"));
            Assert.Equal(0, ops.GetValueOrDefault("ConvInteger"));
            // Only the float decode of the head outputs dequantizes: one DequantizeLinear per head output conv (2 per level).
            Assert.Equal(6, ops.GetValueOrDefault("DequantizeLinear"));
        }
        finally
        {
            temp.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData(900_123, 0)]
    [InlineData(900_321, 140)]
    public void Int8_agrees_with_fp32_on_a_synthetic_frame(int seed, long index)
    {
        var scene = new SyntheticScene(640, 480, seed);
        var rgb = new byte[640 * 480 * 3];
        scene.Render(index, rgb);
        var pre = new ImagePreprocessor(new ImagePreprocessingSpec { Width = 320, Height = 320, Resize = ResizeMode.Letterbox, PadValue = 114 });
        var input = new float[pre.TensorLength];
        pre.Run(new ImageView(rgb, 640, 480, 640 * 3, ImagePixelFormat.Rgb24), input);

        var fp32 = Run(Path.Combine(Folder, "model.fp32.onnx"), input);
        var int8 = Run(Path.Combine(Folder, "model.onnx"), input);

        var diffs = new double[(Rows - 4) * Anchors];
        for (var i = 0; i < diffs.Length; i++)
        {
            diffs[i] = Math.Abs(fp32[(4 * Anchors) + i] - int8[(4 * Anchors) + i]);
        }

        Array.Sort(diffs);
        Assert.InRange(diffs[(int)(diffs.Length * 0.99)], 0, ScoreP99Tolerance);
        Assert.InRange(diffs.Average(), 0, ScoreMeanTolerance);

        // What a user sees: every confident FP32 detection has an INT8 detection of the same class on the same object.
        var fp32Detections = Decode(fp32);
        var int8Detections = Decode(int8);
        var confident = fp32Detections.Where(d => d.Score >= 0.5f).ToList();
        Assert.NotEmpty(confident);
        foreach (var d in confident)
        {
            var best = int8Detections.Where(o => o.Class == d.Class).Select(o => Iou(o.Box, d.Box)).DefaultIfEmpty(0f).Max();
            Assert.True(best >= MatchIou, $"FP32 class {d.Class} score {d.Score:F3} at ({d.Box.X1:F0},{d.Box.Y1:F0},{d.Box.X2:F0},{d.Box.Y2:F0}): best INT8 IoU {best:F3}.");
        }
    }

    private readonly record struct Box(float X1, float Y1, float X2, float Y2);

    private readonly record struct Detection(Box Box, float Score, int Class);

    // YOLOv8 layout decode as the manifest configures it: score >= 0.25, class-aware NMS at IoU 0.45 (input pixels).
    private static List<Detection> Decode(float[] output)
    {
        var candidates = new List<Detection>();
        for (var a = 0; a < Anchors; a++)
        {
            var cls = 0;
            for (var c = 1; c < Rows - 4; c++)
            {
                cls = output[((4 + c) * Anchors) + a] > output[((4 + cls) * Anchors) + a] ? c : cls;
            }

            var score = output[((4 + cls) * Anchors) + a];
            if (score < 0.25f)
            {
                continue;
            }

            float cx = output[a], cy = output[Anchors + a], w = output[(2 * Anchors) + a], h = output[(3 * Anchors) + a];
            candidates.Add(new Detection(new Box(cx - (w / 2), cy - (h / 2), cx + (w / 2), cy + (h / 2)), score, cls));
        }

        var kept = new List<Detection>();
        foreach (var d in candidates.OrderByDescending(d => d.Score))
        {
            if (!kept.Any(k => k.Class == d.Class && Iou(k.Box, d.Box) > 0.45f))
            {
                kept.Add(d);
            }
        }

        return kept;
    }

    private static float Iou(Box a, Box b)
    {
        var w = Math.Max(0, Math.Min(a.X2, b.X2) - Math.Max(a.X1, b.X1));
        var h = Math.Max(0, Math.Min(a.Y2, b.Y2) - Math.Max(a.Y1, b.Y1));
        var inter = w * h;
        var union = ((a.X2 - a.X1) * (a.Y2 - a.Y1)) + ((b.X2 - b.X1) * (b.Y2 - b.Y1)) - inter;
        return union > 0 ? inter / union : 0;
    }

    private static float[] Run(string model, float[] input)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 1 };
        using var session = new InferenceSession(model, options);
        var output = new float[Rows * Anchors];
        using var inValue = OrtValue.CreateTensorValueFromMemory(input, [1, 3, 320, 320]);
        using var outValue = OrtValue.CreateTensorValueFromMemory(output, [1, Rows, Anchors]);
        using var run = new RunOptions();
        session.Run(run, ["images"], [inValue], ["output0"], [outValue]);
        return output;
    }

    private static async Task<string> Sha256Async(string path, CancellationToken ct)
    {
        await using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct));
    }

    /// <summary>Counts node op_types of an ONNX ModelProto by walking the protobuf wire format (graph = field 7, node = field 1, op_type = field 4).</summary>
    private static class OnnxOps
    {
        public static Dictionary<string, int> Count(byte[] model)
        {
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var graph in Fields(model, 7))
            {
                foreach (var node in Fields(graph, 1))
                {
                    foreach (var opType in Fields(node, 4))
                    {
                        var name = System.Text.Encoding.UTF8.GetString(opType);
                        counts[name] = counts.GetValueOrDefault(name) + 1;
                    }
                }
            }

            return counts;
        }

        // The length-delimited fields numbered `field` of one message.
        private static List<byte[]> Fields(byte[] message, int field)
        {
            var found = new List<byte[]>();
            var pos = 0;
            while (pos < message.Length)
            {
                var key = Varint(message, ref pos);
                var wire = (int)(key & 7);
                switch (wire)
                {
                    case 0:
                        Varint(message, ref pos);
                        break;
                    case 1:
                        pos += 8;
                        break;
                    case 5:
                        pos += 4;
                        break;
                    case 2:
                        var length = (int)Varint(message, ref pos);
                        if ((int)(key >> 3) == field)
                        {
                            found.Add(message.AsSpan(pos, length).ToArray());
                        }

                        pos += length;
                        break;
                    default:
                        throw new InvalidDataException($"Unsupported protobuf wire type {wire}.");
                }
            }

            return found;
        }

        private static ulong Varint(byte[] data, ref int pos)
        {
            ulong value = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = data[pos++];
                value |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80)
                {
                    return value;
                }
            }
        }
    }
}
