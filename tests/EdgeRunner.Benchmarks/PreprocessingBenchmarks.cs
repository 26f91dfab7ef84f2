using BenchmarkDotNet.Attributes;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// <see cref="ImagePreprocessor.Run"/> on one 640x480 RGB24 camera frame (a <see cref="SyntheticScene"/> frame in a
/// pooled <see cref="Frame"/>), into a preallocated float tensor. The filter tables are built by the first call
/// (in GlobalSetup); a steady camera resolution must then allocate nothing per frame. Each vector path
/// (<see cref="SimdPath"/>) runs on its own, so the 128-bit path that ARM boards take can be compared with
/// AVX2 and scalar on one x64 machine (its NEON speed needs real ARM hardware: qemu proves correctness only).
/// </summary>
[MemoryDiagnoser]
public class PreprocessingBenchmarks
{
    private Frame _frame = null!;
    private ImagePreprocessor _crop224 = null!;
    private ImagePreprocessor _letterbox640 = null!;
    private ImagePreprocessor _letterbox320 = null!;
    private float[] _tensor = null!;

    /// <summary>The vector path every preprocessor of this run uses.</summary>
    [ParamsSource(nameof(SupportedPaths))]
    public SimdPath Simd { get; set; }

    /// <summary>The paths this CPU runs.</summary>
    public static IEnumerable<SimdPath> SupportedPaths() => Enum.GetValues<SimdPath>().Where(SimdPaths.IsSupported);

    [GlobalSetup]
    public void Setup()
    {
        _frame = new SyntheticScene(640, 480, seed: 42).RenderFrame(new FramePool(), 10);

        // torchvision ImageNet eval transform: Resize(256) + CenterCrop(224) + Normalize(mean, std).
        _crop224 = new ImagePreprocessor(
            new ImagePreprocessingSpec
            {
                Width = 224,
                Height = 224,
                Resize = ResizeMode.CenterCrop,
                ResizeShorterSide = 256,
                Mean = [0.485f, 0.456f, 0.406f],
                Std = [0.229f, 0.224f, 0.225f],
            },
            Simd);
        // Ultralytics YOLO input: letterbox to 640x640, pad 114, 0-1 scale.
        _letterbox640 = new ImagePreprocessor(new ImagePreprocessingSpec { Width = 640, Height = 640, Resize = ResizeMode.Letterbox }, Simd);
        // The bundled demo detector's own preprocessing, from its manifest (320x320 letterbox).
        var manifest = ModelManifest.Load(Paths.Bundled("shapes-detector", "model.json"));
        _letterbox320 = new ImagePreprocessor(manifest.Preprocess!.ToSpec(), Simd);

        _tensor = new float[640 * 640 * 3];
        // First call per instance builds the filter tables for 640x480 (allocates once, not per frame).
        Crop224();
        Letterbox640();
        Letterbox320();
    }

    [GlobalCleanup]
    public void Cleanup() => _frame.Dispose();

    [Benchmark(Description = "640x480 -> 224x224 center crop (resize 256), ImageNet mean/std")]
    public SourceMapping Crop224() => _crop224.Run(View(), _tensor);

    [Benchmark(Description = "640x480 -> 640x640 letterbox")]
    public SourceMapping Letterbox640() => _letterbox640.Run(View(), _tensor);

    [Benchmark(Description = "640x480 -> 320x320 letterbox (demo detector)")]
    public SourceMapping Letterbox320() => _letterbox320.Run(View(), _tensor);

    private ImageView View() => new(_frame.Pixels, _frame.Width, _frame.Height, _frame.Stride, ImagePixelFormat.Rgb24);
}
