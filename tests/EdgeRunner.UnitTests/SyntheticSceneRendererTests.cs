using EdgeRunner.Hardware.Cameras;

namespace EdgeRunner.UnitTests;

/// <summary>
/// The fast <see cref="SyntheticScene.Render"/> (jumped-ahead noise lanes, a per-frame lookup table) against the
/// serial renderer it replaced, kept in <see cref="ReferenceSyntheticScene"/>: byte for byte, over sizes whose
/// byte count is and is not a multiple of the lane count, several seeds and frames across the lighting cycle.
/// </summary>
public sealed class SyntheticSceneRendererTests
{
    public static TheoryData<int, int, int, int?> Scenes => new()
    {
        { 640, 480, 42, null },
        { 640, 480, 7, 6 },
        { 320, 240, 3, null },
        { 160, 120, 11, 0 },
        { 64, 48, 5, 2 },
        { 33, 37, 1234567, 1 },
        { 321, 241, -5, null },
        { 32, 32, int.MaxValue, 3 },
    };

    [Theory]
    [MemberData(nameof(Scenes))]
    public void Fast_renderer_matches_the_reference_byte_for_byte(int width, int height, int seed, int? objectCount)
    {
        var scene = new SyntheticScene(width, height, seed, objectCount);
        var reference = new ReferenceSyntheticScene(width, height, seed, objectCount);
        var fast = new byte[width * height * 3];
        var expected = new byte[width * height * 3];
        var truth = new SyntheticObject[scene.ObjectCount];
        var expectedTruth = new SyntheticObject[reference.ObjectCount];

        foreach (var index in new long[] { 0, 1, 2, 94, 95, 188, 283, 377, 1000, 123_457, -3 })
        {
            scene.Render(index, fast);
            reference.Render(index, expected);
            scene.GetTruth(index, truth);
            reference.GetTruth(index, expectedTruth);

            Assert.True(expected.AsSpan().SequenceEqual(fast), $"frame {index} of {width}x{height} seed {seed} differs from the reference");
            Assert.Equal(expectedTruth, truth);
        }
    }

    [Fact]
    public void Rendering_into_a_larger_buffer_writes_only_the_frame()
    {
        var scene = new SyntheticScene(64, 48, seed: 9);
        var reference = new ReferenceSyntheticScene(64, 48, seed: 9);
        var buffer = new byte[(64 * 48 * 3) + 100];
        buffer.AsSpan().Fill(0xA5);
        var expected = new byte[64 * 48 * 3];

        scene.Render(17, buffer);
        reference.Render(17, expected);

        Assert.True(expected.AsSpan().SequenceEqual(buffer.AsSpan(0, expected.Length)));
        Assert.All(buffer[expected.Length..], b => Assert.Equal(0xA5, b));
    }

    [Fact]
    public void Rendering_frames_allocates_nothing_after_the_first()
    {
        // The first frame of a size computes the noise jump matrices; every later frame reuses them.
        var scene = new SyntheticScene(320, 240, seed: 21);
        var pixels = new byte[320 * 240 * 3];
        long index = 0;

        AllocationAssert.SteadyStateIsZero(() => scene.Render(index++, pixels), warmupCalls: 2);
        Assert.True(index > 2);
    }
}
