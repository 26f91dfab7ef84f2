namespace EdgeRunner.Hardware.Imaging;

/// <summary>
/// One captured image in a pooled buffer. A frame has exactly one owner at a time: whoever holds it
/// must <see cref="Dispose"/> it (or hand it on), which returns the buffer to its <see cref="FramePool"/>.
/// </summary>
public sealed class Frame : IDisposable
{
    private readonly FramePool _pool;
    private int _leased;

    internal Frame(FramePool pool, byte[] buffer)
    {
        _pool = pool;
        Buffer = buffer;
    }

    internal byte[] Buffer { get; set; }

    /// <summary>Width in pixels.</summary>
    public int Width { get; private set; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; private set; }

    /// <summary>Bytes from the start of one row to the start of the next.</summary>
    public int Stride { get; private set; }

    /// <summary>Pixel layout of <see cref="Pixels"/>.</summary>
    public FramePixelFormat PixelFormat { get; private set; }

    /// <summary>Sequence number assigned by the source, starting at 0 and increasing by one per frame produced.</summary>
    public long Sequence { get; set; }

    /// <summary>When the frame was captured (wall clock of the capturing device).</summary>
    public DateTimeOffset Timestamp { get; set; }

    /// <summary>Where the pixels came from when that is meaningful (an image file name); otherwise null.</summary>
    public string? Origin { get; set; }

    /// <summary>The pixel rows, <see cref="Stride"/> × <see cref="Height"/> bytes.</summary>
    public Span<byte> Pixels => Buffer.AsSpan(0, Stride * Height);

    internal void Lease(int width, int height, FramePixelFormat format)
    {
        if (Interlocked.Exchange(ref _leased, 1) != 0)
        {
            throw new InvalidOperationException("Frame is already leased.");
        }

        Width = width;
        Height = height;
        PixelFormat = format;
        Stride = width * format.BytesPerPixel();
        Sequence = 0;
        Timestamp = default;
        Origin = null;
    }

    /// <summary>Returns the frame to its pool. Calling it twice is harmless.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _leased, 0) == 1)
        {
            _pool.Return(this);
        }
    }
}
