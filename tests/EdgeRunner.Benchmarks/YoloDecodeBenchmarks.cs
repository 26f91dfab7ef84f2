using BenchmarkDotNet.Attributes;
using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// <see cref="YoloV8Decoder"/> (created through <see cref="DetectionDecoders.Create(string, DetectionDecoderOptions, int, int, IModelOutputs)"/>
/// as the service does) on a [1, 84, 8400] output: per-anchor best class over 80 classes, 0.25 threshold, top-K,
/// class-aware NMS at IoU 0.45, mapping back to a 640x480 frame letterboxed into 640x640.
/// </summary>
[MemoryDiagnoser]
public class YoloDecodeBenchmarks
{
    private const int Classes = 80;

    /// <summary>Objects in the synthetic scene (each a cluster of candidates).</summary>
    private const int Objects = 12;
    private ArrayModelOutputs _outputs = null!;
    private IDetectionDecoder _decoder = null!;
    private readonly Detection[] _detections = new Detection[100];

    // 640x480 letterboxed into 640x640: scale 1, 80 rows of padding on top.
    private readonly SourceMapping _mapping = new(1f, 0f, 1f, -80f);

    [GlobalSetup]
    public void Setup()
    {
        var data = SyntheticYoloOutput.Create(Classes, Objects, seed: 7, out var anchors);
        _outputs = new ArrayModelOutputs().Add("output0", data, [1, 4 + Classes, anchors]);
        var options = new DetectionDecoderOptions { ScoreThreshold = 0.25f, IouThreshold = 0.45f, MaxDetections = 100 };
        _decoder = DetectionDecoders.Create("yolov8", options, SyntheticYoloOutput.InputSize, SyntheticYoloOutput.InputSize, _outputs);
        var above = SyntheticYoloOutput.CountAbove(data, Classes, anchors, options.ScoreThreshold);
        var kept = Decode();
        Console.WriteLine($"// YOLOv8 synthetic output [1,{4 + Classes},{anchors}]: {above} anchors >= {options.ScoreThreshold} before NMS, {kept} detections after NMS");
    }

    [Benchmark(Description = "YOLOv8 decode + NMS [1,84,8400]")]
    public int Decode() => _decoder.Decode(_outputs, _mapping, 640, 480, _detections);
}
