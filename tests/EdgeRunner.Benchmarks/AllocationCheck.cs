using System.Globalization;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// Exact managed allocation per call of each hot path: after warm-up, N calls between two reads of
/// <see cref="GC.GetAllocatedBytesForCurrentThread"/> (the calling thread only, so background JIT/tiering or
/// timer allocations on other threads are not counted, unlike BenchmarkDotNet's in-process MemoryDiagnoser,
/// which can show a few bytes of such noise averaged over operations). Native (ONNX Runtime) memory is not managed
/// memory and is not counted by either.
/// </summary>
internal static class AllocationCheck
{
    private const int WarmUpMilliseconds = 1500;

    public static void Run(int calls, TextWriter output)
    {
        output.WriteLine($"# Managed bytes allocated per call on the calling thread ({calls} calls after warm-up)");
        output.WriteLine("| Hot path | Bytes/call, steady state | Bytes, first call after setup |");
        output.WriteLine("|---|---:|---:|");

        var pre = new PreprocessingBenchmarks();
        pre.Setup();
        Report(output, "ImagePreprocessor.Run 640x480 -> 224x224 crop", calls, () => pre.Crop224());
        Report(output, "ImagePreprocessor.Run 640x480 -> 640x640 letterbox", calls, () => pre.Letterbox640());
        Report(output, "ImagePreprocessor.Run 640x480 -> 320x320 letterbox", calls, () => pre.Letterbox320());
        pre.Cleanup();

        var yolo = new YoloDecodeBenchmarks();
        yolo.Setup();
        Report(output, "YoloV8Decoder.Decode [1,84,8400]", calls, () => yolo.Decode());

        using (var rig = new VisionRig(1))
        {
            Report(output, "ModelSession.Run (demo detector)", calls, rig.Inference);
            Report(output, "EdgeRunner frame: preprocess + ModelSession.Run + decode", calls, () => rig.Pipeline());
            Report(output, "ORT InferenceSession.Run(RunOptions, names, OrtValues, outputNames)", calls, () => rig.OrtInference());
            Report(output, "ORT frame: preprocess + InferenceSession.Run + decode", calls, () => rig.OrtPipeline());
        }

        foreach (var streams in new[] { 1, 1024 })
        {
            var seq = new SequenceBenchmarks { Streams = streams };
            seq.Setup();
            var n = streams == 1 ? calls : Math.Max(10, calls / 100);
            Report(output, $"SequenceModel.StepBatch, {streams} streams (per batch call)", n, seq.StepBatch);
            Report(output, $"SequenceModel.Step x {streams} streams (per round)", n, seq.StepPerStream);
            Report(output, $"stateless window W=256 batched, {streams} streams", n, seq.Stateless256Batched);
            Report(output, $"SequenceModel.RunSequence (W=64, 2 chunks) x {streams} streams", n, () => seq.RunSequence64());
            Report(output, $"SequenceModel.RunSequence (W=256, 6 chunks) x {streams} streams", n, () => seq.RunSequence256());
            seq.Cleanup();
        }
    }

    private static void Report(TextWriter output, string name, int calls, Action call)
    {
        // Warm-up long enough for tiered compilation to reach tier 1 with dynamic PGO (as in a long-running daemon):
        // at tier 0 some paths allocate what the optimised code does not (see docs/performance.md).
        var warmUntil = Environment.TickCount64 + WarmUpMilliseconds;
        var tier0Before = GC.GetAllocatedBytesForCurrentThread();
        call();
        var firstCall = GC.GetAllocatedBytesForCurrentThread() - tier0Before;
        while (Environment.TickCount64 < warmUntil)
        {
            call();
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < calls; i++)
        {
            call();
        }

        var bytes = (double)(GC.GetAllocatedBytesForCurrentThread() - before) / calls;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {bytes:0.##} | {firstCall} |"));
    }
}
