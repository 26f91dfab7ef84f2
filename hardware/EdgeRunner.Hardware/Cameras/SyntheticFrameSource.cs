using EdgeRunner.Hardware.Imaging;

namespace EdgeRunner.Hardware.Cameras;

/// <summary>
/// A camera that renders a <see cref="SyntheticScene"/> at a fixed rate. Deterministic: the same
/// seed gives the same pixels for the same sequence number.
/// </summary>
public sealed class SyntheticFrameSource : IFrameSource
{
    private readonly SyntheticScene _scene;
    private readonly FramePool _pool;
    private readonly FramePacer _pacer;
    private readonly TimeProvider _timeProvider;
    private long _next;

    /// <summary>Creates the source.</summary>
    public SyntheticFrameSource(int width, int height, int seed, double framesPerSecond, FramePool pool, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _scene = new SyntheticScene(width, height, seed);
        _pool = pool;
        _timeProvider = timeProvider;
        _pacer = new FramePacer(timeProvider, framesPerSecond);
        Description = $"synthetic {width}x{height} seed {seed} at {framesPerSecond} fps";
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <summary>The scene being rendered (ground truth for evaluation).</summary>
    public SyntheticScene Scene => _scene;

    /// <inheritdoc />
    public async ValueTask<Frame?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        await _pacer.WaitAsync(cancellationToken).ConfigureAwait(false);
        var frame = _scene.RenderFrame(_pool, _next++);
        frame.Timestamp = _timeProvider.GetUtcNow();
        return frame;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
