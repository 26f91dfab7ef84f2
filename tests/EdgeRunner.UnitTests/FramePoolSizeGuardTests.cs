using EdgeRunner.Hardware.Imaging;

namespace EdgeRunner.UnitTests;

/// <summary>Sizes read from hostile image headers reach <see cref="FramePool"/>: they are refused, never overflowed.</summary>
public sealed class FramePoolSizeGuardTests
{
    [Theory]
    [InlineData(50_000, 50_000, FramePixelFormat.Rgba32)]
    [InlineData(int.MaxValue, int.MaxValue, FramePixelFormat.Rgb24)]
    [InlineData(int.MaxValue, 1, FramePixelFormat.Bgra32)]
    [InlineData(23_171, 23_171, FramePixelFormat.Rgba32)]
    public void A_frame_larger_than_one_array_is_refused_with_an_argument_error_not_an_overflow(int width, int height, FramePixelFormat format)
    {
        var pool = new FramePool();

        Assert.Equal(-1, FramePool.ByteCount(width, height, format));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(width, height, format));
        Assert.Contains($"{width}x{height}", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, pool.Allocations);
    }

    [Fact]
    public void Sizes_that_fit_are_counted_exactly_and_rented()
    {
        var pool = new FramePool();

        Assert.Equal(7680L * 4320 * 4, FramePool.ByteCount(7680, 4320, FramePixelFormat.Rgba32));
        Assert.Equal(-1, FramePool.ByteCount(0, 10, FramePixelFormat.Rgb24));
        using var frame = pool.Rent(640, 480, FramePixelFormat.Bgr24);
        Assert.Equal(640 * 480 * 3, frame.Pixels.Length);
    }
}
