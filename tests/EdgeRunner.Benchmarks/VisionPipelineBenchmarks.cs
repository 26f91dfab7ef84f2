using BenchmarkDotNet.Attributes;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// Frames per second (Op/s) of the per-frame vision work on the bundled INT8 demo detector (320x320 letterbox,
/// yolov8 [1,7,2100]) from a 640x480 RGB24 frame, EdgeRunner vs plain ONNX Runtime, same process, same
/// intra-op thread count. See <see cref="VisionRig"/> for exactly what each side includes.
/// </summary>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet disposes through [GlobalCleanup].")]
public class VisionPipelineBenchmarks
{
    private VisionRig _rig = null!;

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _rig = new VisionRig(Threads);
        Console.WriteLine($"// demo detector {_rig.ModelPath}, intra-op threads {Threads}: {_rig.LastDetections} detections on the last warm-up frame");
    }

    [GlobalCleanup]
    public void Cleanup() => _rig.Dispose();

    [Benchmark(Description = "EdgeRunner inference: ModelSession.Run")]
    public void ModelSessionRun() => _rig.Inference();

    [Benchmark(Description = "ORT inference: InferenceSession.Run")]
    public int OrtRun() => _rig.OrtInference();

    [Benchmark(Description = "EdgeRunner frame: preprocess + ModelSession.Run + decode")]
    public int Pipeline() => _rig.Pipeline();

    [Benchmark(Description = "ORT frame: preprocess + InferenceSession.Run + decode")]
    public int OrtPipeline() => _rig.OrtPipeline();
}
