#:package Microsoft.ML.OnnxRuntime@1.31.1
// ONNX Runtime check of the exported model (run by build.sh from a copy outside the repo):
//   dotnet run ort_check.cs -- MODEL.onnx REF_DIR
// REF_DIR holds x.f32 [2, T, 3, 50] (normalised) and probs.f32 [2, T, 4] written by train.py from PyTorch.
// Prints max |diff| of ORT vs PyTorch (whole sequence), and of ORT step by step (state carried) vs ORT whole.
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

var x = Read(Path.Combine(args[1], "x.f32"));
var expected = Read(Path.Combine(args[1], "probs.f32"));
const int B = 2, C = 4, Chunk = 150;
var T = x.Length / (B * Chunk);
using var options = new SessionOptions { IntraOpNumThreads = 1 };
using var session = new InferenceSession(args[0], options);
var H = session.InputMetadata["h0"].Dimensions[2];

float[] Run(float[] xs, int b, int t, ref float[] h, ref float[] c)
{
    using var r = session.Run(new[]
    {
        NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(xs, new[] { b, t, 3, 50 })),
        NamedOnnxValue.CreateFromTensor("h0", new DenseTensor<float>(h, new[] { 1, b, H })),
        NamedOnnxValue.CreateFromTensor("c0", new DenseTensor<float>(c, new[] { 1, b, H })),
    });
    var d = r.ToDictionary(v => v.Name, v => v.AsTensor<float>().ToArray());
    h = d["hn"];
    c = d["cn"];
    return d["probs"];
}

var h = new float[B * H];
var c = new float[B * H];
var whole = Run(x, B, T, ref h, ref c);
double vsTorch = 0;
for (var i = 0; i < whole.Length; i++) vsTorch = Math.Max(vsTorch, Math.Abs(whole[i] - expected[i]));

h = new float[B * H];
c = new float[B * H];
double stepwise = 0;
for (var t = 0; t < T; t++)
{
    var xt = new float[B * Chunk];
    for (var b = 0; b < B; b++) Array.Copy(x, ((b * T) + t) * Chunk, xt, b * Chunk, Chunk);
    var p = Run(xt, B, 1, ref h, ref c);
    for (var b = 0; b < B; b++)
        for (var k = 0; k < C; k++)
            stepwise = Math.Max(stepwise, Math.Abs(p[(b * C) + k] - whole[(((b * T) + t) * C) + k]));
}

Console.WriteLine($"ort_whole_vs_pytorch_max_abs_diff={vsTorch:E3}");
Console.WriteLine($"ort_stepwise_vs_ort_whole_max_abs_diff={stepwise:E3} (batch {B}, {T} steps, steps=1 per call, hn/cn carried)");
return vsTorch < 1e-4 && stepwise < 1e-4 ? 0 : 1;

static float[] Read(string path)
{
    var bytes = File.ReadAllBytes(path);
    var f = new float[bytes.Length / 4];
    Buffer.BlockCopy(bytes, 0, f, 0, bytes.Length);
    return f;
}
