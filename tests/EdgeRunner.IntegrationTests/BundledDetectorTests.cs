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

    // Measured over 500 held-out frames (models/training/shapes-detector/README.md): INT8 vs FP32 differ by at most
    // TOLERANCE_MEASURED in any score; the bounds below leave headroom for the per-process noise of the synthetic scene.
    private const float ScoreTolerance = 0.15f;
    private const float ConfidentBoxRelativeTolerance = 0.15f;

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

        var maxScoreDiff = 0f;
        var confident = 0;
        for (var a = 0; a < Anchors; a++)
        {
            var best = 4;
            for (var r = 4; r < Rows; r++)
            {
                maxScoreDiff = Math.Max(maxScoreDiff, Math.Abs(fp32[(r * Anchors) + a] - int8[(r * Anchors) + a]));
                best = fp32[(r * Anchors) + a] > fp32[(best * Anchors) + a] ? r : best;
            }

            if (fp32[(best * Anchors) + a] < 0.5f)
            {
                continue;
            }

            // Where FP32 is confident, INT8 names the same class and draws nearly the same box.
            confident++;
            var int8Best = 4;
            for (var r = 5; r < Rows; r++)
            {
                int8Best = int8[(r * Anchors) + a] > int8[(int8Best * Anchors) + a] ? r : int8Best;
            }

            Assert.Equal(best, int8Best);
            var size = Math.Max(fp32[(2 * Anchors) + a], fp32[(3 * Anchors) + a]);
            for (var r = 0; r < 4; r++)
            {
                Assert.InRange(Math.Abs(fp32[(r * Anchors) + a] - int8[(r * Anchors) + a]), 0f, ConfidentBoxRelativeTolerance * size);
            }
        }

        Assert.True(confident > 0, "FP32 found no object with score ≥ 0.5 in the frame.");
        Assert.InRange(maxScoreDiff, 0f, ScoreTolerance);
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
        private static IEnumerable<byte[]> Fields(byte[] message, int field)
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
