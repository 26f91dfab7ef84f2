using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using EdgeRunner.Hardware.Imaging;
using Microsoft.Extensions.Logging;
using EdgeRunner.Hardware.Supervision;

namespace EdgeRunner.Hardware.Cameras;

/// <summary>How a <see cref="SupervisedFrameSource"/> watches and restarts its camera.</summary>
public sealed record SupervisionOptions
{
    /// <summary>The camera's name in logs and <see cref="SupervisedFrameSource.Description"/>.</summary>
    public string Name { get; init; } = "camera";

    /// <summary>
    /// A read that has waited this long without a frame is a stall: the inner source is cancelled,
    /// disposed and restarted. Also bounds how long opening a camera may take before its first frame.
    /// </summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Wait before the first reconnect attempt after a failure.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Factor the wait grows by with each consecutive failure.</summary>
    public double BackoffMultiplier { get; init; } = Supervision.Backoff.DefaultMultiplier;

    /// <summary>Longest wait between attempts.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Fraction in [0, 1): each wait is drawn uniformly from [d × (1 − Jitter), d], d the un-jittered wait,
    /// so that cameras behind one failed switch do not reconnect in lockstep, and the cap stays a cap.
    /// </summary>
    public double Jitter { get; init; } = Supervision.Backoff.DefaultJitter;

    /// <summary>After this many failed attempts in a row, go to <see cref="SourceHealth.Failed"/> and throw; null (default) keeps trying forever.</summary>
    public int? MaxConsecutiveFailures { get; init; }

    /// <summary>
    /// Treat the inner source ending (null) as a failure and restart it (for live cameras); false (default)
    /// passes the end on, as a finite file source wants.
    /// </summary>
    public bool RestartWhenEnded { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (StallTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("StallTimeout must be positive.", nameof(StallTimeout));
        }

        if (InitialBackoff < TimeSpan.Zero || MaxBackoff < InitialBackoff)
        {
            throw new ArgumentException("Backoff must satisfy 0 <= InitialBackoff <= MaxBackoff.", nameof(InitialBackoff));
        }

        if (!(BackoffMultiplier >= 1) || double.IsInfinity(BackoffMultiplier))
        {
            throw new ArgumentException("BackoffMultiplier must be at least 1.", nameof(BackoffMultiplier));
        }

        if (!(Jitter >= 0 && Jitter < 1))
        {
            throw new ArgumentException("Jitter must be in [0, 1).", nameof(Jitter));
        }

        if (MaxConsecutiveFailures < 1)
        {
            throw new ArgumentException("MaxConsecutiveFailures must be at least 1 (or null for never).", nameof(MaxConsecutiveFailures));
        }
    }
}

/// <summary>
/// Keeps a camera running without the daemon's help: wraps a factory of <see cref="IFrameSource"/>s
/// and replaces the current one when it throws, ends (with <see cref="SupervisionOptions.RestartWhenEnded"/>)
/// or stalls (no frame within <see cref="SupervisionOptions.StallTimeout"/> of a read), waiting a jittered
/// exponential backoff between attempts. Reports <see cref="SourceHealth"/> changes through
/// <see cref="StateChanged"/> and keeps counters. All timing goes through the <see cref="TimeProvider"/>.
/// </summary>
/// <remarks>
/// Frames pass through untouched except <see cref="Frame.Sequence"/>, renumbered so that it keeps
/// increasing across restarts; the caller owns and disposes each frame as with any source. Inner sources
/// must honour the cancellation token of <see cref="IFrameSource.ReadFrameAsync"/> (the watchdog cancels
/// a stalled read). Cancelling a read of this source disposes the current inner source; the next read
/// opens a new one at once (no backoff, not counted as a failure). One reader at a time;
/// <see cref="StateChanged"/> is raised on the reader's thread.
/// </remarks>
public sealed partial class SupervisedFrameSource : IFrameSource, ICameraHealth
{
    private readonly Func<IFrameSource> _factory;
    private readonly SupervisionOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Random _random;
    private readonly ITimer _watchdog;
    private readonly CancellationTokenSource _lifetime = new();
    private readonly Lock _gate = new();
    private IFrameSource? _inner;
    private CancellationTokenSource? _attempt;
    private string _innerDescription = "not started";
    private bool _waiting;
    private bool _stalled;
    private bool _ended;
    private volatile bool _disposed;
    private volatile SourceHealth _state = SourceHealth.Opening;
    private TimeSpan _pendingDelay;
    private int _consecutiveFailures;
    private long _restarts;
    private long _frames;
    private long _attempts;
    private long _sequence;
    private string? _lastError;

    /// <summary>Creates the supervisor; the first inner source is created on the first read.</summary>
    public SupervisedFrameSource(Func<IFrameSource> factory, SupervisionOptions options, TimeProvider timeProvider, ILogger logger)
        : this(factory, options, timeProvider, logger, Random.Shared)
    {
    }

    internal SupervisedFrameSource(Func<IFrameSource> factory, SupervisionOptions options, TimeProvider timeProvider, ILogger logger, Random random)
    {
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(random);
        options.Validate();
        _factory = factory;
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
        _random = random;
        _watchdog = timeProvider.CreateTimer(static s => ((SupervisedFrameSource)s!).OnWatchdog(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <inheritdoc />
    /// <remarks>Raised on every change of <see cref="State"/>, in order, on the reading thread.</remarks>
    public event EventHandler<SourceHealthChangedEventArgs>? StateChanged;

    /// <inheritdoc />
    public string Description => $"{_options.Name} (supervised): {_innerDescription}";

    /// <summary>The camera's health now; <see cref="SourceHealth.Opening"/> until the first frame.</summary>
    public SourceHealth State => _state;

    /// <inheritdoc />
    /// <remarks>The inner source is recreated each time.</remarks>
    public long Restarts => Interlocked.Read(ref _restarts);

    /// <summary>Failed attempts since the last frame.</summary>
    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    /// <summary>The last failure's reason (the inner source's message, or the stall), or null if none yet.</summary>
    public string? LastError => Volatile.Read(ref _lastError);

    /// <summary>Frames delivered so far.</summary>
    public long Frames => Interlocked.Read(ref _frames);

    /// <summary>The wait before the next attempt, drawn when the last failure happened.</summary>
    public TimeSpan LastBackoff { get; private set; }

    /// <summary>
    /// The wait after <paramref name="consecutiveFailures"/> failures in a row:
    /// min(Initial × Multiplier^(n−1), Max) × (1 − Jitter × <paramref name="sample"/>), sample in [0, 1).
    /// </summary>
    public static TimeSpan ComputeBackoff(SupervisionOptions options, int consecutiveFailures, double sample)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Supervision.Backoff.Exponential(options.InitialBackoff, options.MaxBackoff, consecutiveFailures, options.BackoffMultiplier, options.Jitter, sample);
    }

    /// <inheritdoc />
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<Frame?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            cancellationToken.ThrowIfCancellationRequested();
            if (_state == SourceHealth.Failed)
            {
                throw new FrameSourceException($"Camera {_options.Name} has failed: {_lastError}");
            }

            if (_ended)
            {
                return null;
            }

            var inner = _inner;
            if (inner is null)
            {
                inner = await OpenAsync(cancellationToken).ConfigureAwait(false);
                if (inner is null)
                {
                    continue;
                }
            }

            var attempt = _attempt!;
            lock (_gate)
            {
                _waiting = true;
            }

            _watchdog.Change(_options.StallTimeout, Timeout.InfiniteTimeSpan);
            var registration = cancellationToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), attempt);
            Frame? frame = null;
            Exception? error = null;
            try
            {
                frame = await inner.ReadFrameAsync(attempt.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                error = ex;
            }
            finally
            {
                await registration.DisposeAsync().ConfigureAwait(false);
                _watchdog.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                lock (_gate)
                {
                    _waiting = false;
                }
            }

            if (frame is not null)
            {
                return Deliver(frame);
            }

            if (error is not null && (cancellationToken.IsCancellationRequested || _disposed))
            {
                // The caller cancelled (or disposed us): the inner source may be broken mid-read, so replace it next time.
                await CloseInnerAsync().ConfigureAwait(false);
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (error is OperationCanceledException)
                {
                    ExceptionDispatchInfo.Throw(error);
                }

                cancellationToken.ThrowIfCancellationRequested();
            }

            string reason;
            if (_stalled)
            {
                reason = $"no frame for {_options.StallTimeout.TotalSeconds:0.###} s (stalled)";
            }
            else if (error is not null)
            {
                reason = error.Message;
            }
            else if (_options.RestartWhenEnded)
            {
                reason = $"{_innerDescription} ended";
            }
            else
            {
                _ended = true;
                await CloseInnerAsync().ConfigureAwait(false);
                LogEnded(_logger, _options.Name, _innerDescription);
                return null;
            }

            await FailAsync(reason, error).ConfigureAwait(false);
        }
    }

    /// <summary>Stops the watchdog and disposes the current inner source (cancelling a read in progress).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        bool reading;
        CancellationTokenSource? attempt;
        lock (_gate)
        {
            reading = _waiting;
            attempt = _attempt;
        }

        await _lifetime.CancelAsync().ConfigureAwait(false);
        if (attempt is not null)
        {
            await attempt.CancelAsync().ConfigureAwait(false);
        }

        await _watchdog.DisposeAsync().ConfigureAwait(false);
        if (!reading)
        {
            // A reader in progress disposes the inner source itself on its way out.
            await CloseInnerAsync().ConfigureAwait(false);
        }
    }

    private Frame Deliver(Frame frame)
    {
        frame.Sequence = _sequence++;
        Interlocked.Increment(ref _frames);
        if (_state != SourceHealth.Streaming)
        {
            var reason = _attempts <= 1
                ? $"first frame from {_innerDescription}"
                : $"frames from {_innerDescription} after {_restarts} restart(s)";
            Volatile.Write(ref _consecutiveFailures, 0);
            LogStreaming(_logger, _options.Name, _innerDescription);
            SetState(SourceHealth.Streaming, reason);
        }

        Volatile.Write(ref _consecutiveFailures, 0);
        return frame;
    }

    /// <summary>Waits out the backoff and creates the next inner source; null when that failed (already recorded).</summary>
    private async ValueTask<IFrameSource?> OpenAsync(CancellationToken cancellationToken)
    {
        if (_pendingDelay > TimeSpan.Zero)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _lifetime.Token);
            try
            {
                await Task.Delay(_pendingDelay, _timeProvider, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                throw;
            }

            _pendingDelay = TimeSpan.Zero;
        }

        var attemptNumber = ++_attempts;
        if (attemptNumber > 1)
        {
            Interlocked.Increment(ref _restarts);
        }

        IFrameSource inner;
        try
        {
            inner = _factory();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            await FailAsync($"cannot create the source: {ex.Message}", ex).ConfigureAwait(false);
            return null;
        }

        _innerDescription = inner.Description;
        LogOpening(_logger, _options.Name, _innerDescription, attemptNumber);
        var attempt = new CancellationTokenSource();
        CancellationTokenSource? previous;
        lock (_gate)
        {
            previous = _attempt;
            _attempt = attempt;
            _stalled = false;
            _inner = inner;
        }

        previous?.Dispose();
        if (_disposed)
        {
            await CloseInnerAsync().ConfigureAwait(false);
            ObjectDisposedException.ThrowIf(true, this);
        }

        return inner;
    }

    private async ValueTask FailAsync(string reason, Exception? error)
    {
        await CloseInnerAsync().ConfigureAwait(false);
        var failures = Interlocked.Increment(ref _consecutiveFailures);
        Volatile.Write(ref _lastError, reason);
        if (_options.MaxConsecutiveFailures is { } max && failures >= max)
        {
            LogGaveUp(_logger, _options.Name, failures, reason);
            SetState(SourceHealth.Failed, $"gave up after {failures} failed attempt(s): {reason}");
            throw error is null
                ? new FrameSourceException($"Camera {_options.Name} failed {failures} time(s) in a row: {reason}")
                : new FrameSourceException($"Camera {_options.Name} failed {failures} time(s) in a row: {reason}", error);
        }

        var delay = ComputeBackoff(_options, failures, _random.NextDouble());
        _pendingDelay = delay;
        LastBackoff = delay;
        LogReconnecting(_logger, _options.Name, reason, failures, delay);
        SetState(SourceHealth.Unavailable, reason);
    }

    private async ValueTask CloseInnerAsync()
    {
        IFrameSource? inner;
        lock (_gate)
        {
            inner = _inner;
            _inner = null;
        }

        if (inner is null)
        {
            return;
        }

        try
        {
            await inner.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogDisposeFailed(_logger, ex, _options.Name, inner.Description);
        }
    }

    private void OnWatchdog()
    {
        CancellationTokenSource? attempt;
        lock (_gate)
        {
            if (!_waiting || _stalled)
            {
                return;
            }

            _stalled = true;
            attempt = _attempt;
        }

        try
        {
            attempt?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Replaced meanwhile.
        }
    }

    private void SetState(SourceHealth state, string reason)
    {
        var previous = _state;
        if (previous == state)
        {
            return;
        }

        _state = state;
        try
        {
            StateChanged?.Invoke(this, new SourceHealthChangedEventArgs(previous, state, reason, _timeProvider.GetUtcNow()));
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogHandlerFailed(_logger, ex, _options.Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Camera {Camera}: opening {Source} (attempt {Attempt})")]
    private static partial void LogOpening(ILogger logger, string camera, string source, long attempt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Camera {Camera}: streaming from {Source}")]
    private static partial void LogStreaming(ILogger logger, string camera, string source);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Camera {Camera}: {Reason}; failure {Failures} in a row, reconnecting in {Delay}")]
    private static partial void LogReconnecting(ILogger logger, string camera, string reason, int failures, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Error, Message = "Camera {Camera}: giving up after {Failures} failed attempts in a row: {Reason}")]
    private static partial void LogGaveUp(ILogger logger, string camera, int failures, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Camera {Camera}: {Source} ended")]
    private static partial void LogEnded(ILogger logger, string camera, string source);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Camera {Camera}: disposing {Source} failed")]
    private static partial void LogDisposeFailed(ILogger logger, Exception exception, string camera, string source);

    [LoggerMessage(Level = LogLevel.Error, Message = "Camera {Camera}: a StateChanged handler threw")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception, string camera);
}
