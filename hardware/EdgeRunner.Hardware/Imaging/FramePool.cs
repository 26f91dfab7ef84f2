using System.Buffers;
using System.Collections.Concurrent;

namespace EdgeRunner.Hardware.Imaging;

/// <summary>
/// Recycles <see cref="Frame"/> objects and their pixel buffers so that capture allocates nothing
/// in steady state. Thread-safe: frames are rented on the capture thread and returned on the
/// inference thread.
/// </summary>
public sealed class FramePool
{
    private readonly ConcurrentQueue<Frame> _free = new();
    private readonly int _maxRetained;
    private int _retained;
    private long _allocations;

    /// <summary>Creates a pool that keeps at most <paramref name="maxRetained"/> idle frames.</summary>
    public FramePool(int maxRetained = 8)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRetained, 1);
        _maxRetained = maxRetained;
    }

    /// <summary>How many times a new pixel buffer had to be obtained (a steady-state pipeline stops increasing this).</summary>
    public long Allocations => Interlocked.Read(ref _allocations);

    /// <summary>
    /// The bytes a <paramref name="width"/> × <paramref name="height"/> frame of <paramref name="format"/>
    /// needs, or -1 when that is more than one array can hold (so a size read from a hostile image header
    /// is refused before anything is allocated, rather than overflowing).
    /// </summary>
    public static long ByteCount(int width, int height, FramePixelFormat format)
    {
        if (width < 1 || height < 1)
        {
            return -1;
        }

        // int × int fits a long (< 2^62); × 4 would not, so the pixel count is bounded first.
        var pixels = (long)width * height;
        if (pixels > Array.MaxLength)
        {
            return -1;
        }

        var bytes = pixels * format.BytesPerPixel();
        return bytes > Array.MaxLength ? -1 : bytes;
    }

    /// <summary>Rents a frame with room for <paramref name="width"/> × <paramref name="height"/> pixels of <paramref name="format"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A dimension is below 1, or the frame would be larger than one array can hold.</exception>
    public Frame Rent(int width, int height, FramePixelFormat format)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        var bytes = ByteCount(width, height, format);
        if (bytes < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(width), $"A {width}x{height} frame of {format} needs more than {Array.MaxLength} bytes.");
        }

        var needed = (int)bytes;

        if (_free.TryDequeue(out var frame))
        {
            Interlocked.Decrement(ref _retained);
            if (frame.Buffer.Length < needed)
            {
                ArrayPool<byte>.Shared.Return(frame.Buffer);
                frame.Buffer = ArrayPool<byte>.Shared.Rent(needed);
                Interlocked.Increment(ref _allocations);
            }
        }
        else
        {
            frame = new Frame(this, ArrayPool<byte>.Shared.Rent(needed));
            Interlocked.Increment(ref _allocations);
        }

        frame.Lease(width, height, format);
        return frame;
    }

    internal void Return(Frame frame)
    {
        if (Interlocked.Increment(ref _retained) <= _maxRetained)
        {
            _free.Enqueue(frame);
            return;
        }

        Interlocked.Decrement(ref _retained);
        ArrayPool<byte>.Shared.Return(frame.Buffer);
        frame.Buffer = [];
    }
}
