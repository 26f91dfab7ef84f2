using EdgeRunner.Hardware.Imaging;

namespace EdgeRunner.Hardware.Cameras;

/// <summary>
/// A camera or camera-like source. Sources pace themselves (a real camera delivers at its own rate;
/// file and synthetic sources wait for their configured rate) and hand out pooled frames that the
/// caller owns and must dispose.
/// </summary>
public interface IFrameSource : IAsyncDisposable
{
    /// <summary>Human-readable description for logs, e.g. "synthetic 640x480 seed 42".</summary>
    string Description { get; }

    /// <summary>
    /// Waits for and returns the next frame, or null when the source has ended (a finite file source
    /// without looping). Throws <see cref="FrameSourceException"/> when the source cannot deliver.
    /// </summary>
    ValueTask<Frame?> ReadFrameAsync(CancellationToken cancellationToken);
}

/// <summary>A source failed in a way its caller should report (unreadable file, device gone).</summary>
public sealed class FrameSourceException : Exception
{
    /// <summary>Creates the exception.</summary>
    public FrameSourceException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public FrameSourceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public FrameSourceException()
    {
    }
}
