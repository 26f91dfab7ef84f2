using BenchmarkDotNet.Attributes;
using EdgeRunner.Hardware.Cameras;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// <see cref="SyntheticScene.Render"/> of one 640x480 RGB24 frame, the demo camera's per-frame cost before the
/// model sees it (docs/performance.md §12, "The demo camera's CPU"). Consecutive frame indices, as the camera
/// renders them, so the lighting and the shapes' positions change every call.
/// </summary>
[MemoryDiagnoser]
public class SyntheticSceneBenchmarks
{
    private readonly SyntheticScene _scene = new(640, 480, seed: 42);
    private readonly byte[] _rgb = new byte[640 * 480 * 3];
    private long _index;

    [GlobalSetup]
    public void Setup() => Render();

    [Benchmark(Description = "SyntheticScene.Render 640x480 (demo camera frame)")]
    public byte Render()
    {
        _scene.Render(_index++, _rgb);
        return _rgb[0];
    }
}
