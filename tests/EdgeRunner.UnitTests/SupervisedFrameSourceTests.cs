using System.Collections.Concurrent;
using System.Threading.Channels;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Hardware.Supervision;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests;

public sealed class SupervisedFrameSourceTests
{
    private static readonly SupervisionOptions Options = new()
    {
        Name = "test",
        StallTimeout = TimeSpan.FromSeconds(10),
        InitialBackoff = TimeSpan.FromSeconds(1),
        BackoffMultiplier = 2,
        MaxBackoff = TimeSpan.FromSeconds(30),
        Jitter = 0.2,
    };

    [Fact]
    public async Task Frames_pass_through_with_one_owner_and_increasing_sequence()
    {
        await using var h = new Harness(Options, configure: c => { c.PushFrame(); c.PushFrame(); c.PushFrame(); });
        var delivered = new List<Frame>();
        for (var i = 0; i < 3; i++)
        {
            var frame = await h.Source.ReadFrameAsync(TestContext.Current.CancellationToken);
            Assert.NotNull(frame);
            Assert.Same(h.Cameras[0].Sent[i], frame);
            Assert.Equal(i, frame.Sequence);
            delivered.Add(frame);
        }

        // Still leased by the caller: the pool hands out a different frame.
        using (var other = h.Pool.Rent(8, 8, FramePixelFormat.Rgb24))
        {
            Assert.DoesNotContain(other, delivered);
        }

        delivered.ForEach(f => f.Dispose());
        Assert.Equal(SourceHealth.Streaming, h.Source.State);
        Assert.Equal(3, h.Source.Frames);
        Assert.Equal(0, h.Source.Restarts);
        Assert.Equal([SourceHealth.Streaming], h.States);
    }

    [Fact]
    public async Task A_stall_restarts_the_camera_after_StallTimeout_and_disposes_the_old_one()
    {
        await using var h = new Harness(Options, random: new FixedRandom(0), configure: c => { if (c.Index == 0) { c.PushFrame(); } });
        var ct = TestContext.Current.CancellationToken;
        (await h.Source.ReadFrameAsync(ct))!.Dispose();

        var pending = h.Source.ReadFrameAsync(ct).AsTask();
        h.Time.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, h.Time.WatchdogFired); // not yet: it would have fired inside Advance
        Assert.False(pending.IsCompleted);
        Assert.Equal(0, h.Cameras[0].CancelledReads);
        Assert.Equal(SourceHealth.Streaming, h.Source.State);

        var timers = h.Time.TimersCreated;
        h.Time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, h.Time.WatchdogFired);
        await Harness.WaitUntilAsync(() => h.Time.TimersCreated > timers, ct); // the backoff delay is waiting
        Assert.Equal(1, h.Cameras[0].CancelledReads);
        Assert.Equal(1, h.Cameras[0].DisposeCount);
        Assert.Equal(SourceHealth.Unavailable, h.Source.State);
        Assert.Contains("stalled", h.Source.LastError, StringComparison.Ordinal);
        Assert.Single(h.Cameras);

        h.Time.Advance(TimeSpan.FromSeconds(1)); // InitialBackoff, jitter sample 0
        await Harness.WaitUntilAsync(() => h.Cameras.Length == 2, ct);
        h.Cameras[1].PushFrame();
        using var frame = await pending.WaitAsync(TimeSpan.FromSeconds(5), ct);
        Assert.NotNull(frame);
        Assert.Equal(1, frame.Sequence);
        Assert.Equal(1, h.Source.Restarts);
        Assert.Equal(SourceHealth.Streaming, h.Source.State);
        Assert.Equal([SourceHealth.Streaming, SourceHealth.Unavailable, SourceHealth.Streaming], h.States);
        Assert.Equal(0, h.Cameras[1].DisposeCount);
    }

    [Fact]
    public async Task Backoff_doubles_per_consecutive_failure_and_is_capped()
    {
        // Every attempt fails at once (as ffmpeg does on "Connection refused"); sample 0 = no jitter.
        await using var h = new Harness(Options, random: new FixedRandom(0), configure: c => c.PushError($"Connection refused ({c.Index})"));
        var ct = TestContext.Current.CancellationToken;
        var pending = h.Source.ReadFrameAsync(ct).AsTask();
        double[] expected = [1, 2, 4, 8, 16, 30, 30, 30];
        for (var i = 0; i < expected.Length; i++)
        {
            var wait = TimeSpan.FromSeconds(expected[i]);
            await Harness.WaitUntilAsync(() => h.Time.TimersCreated == i + 1, ct); // backoff i is waiting
            Assert.Equal(wait, h.Source.LastBackoff);
            Assert.Equal(i + 1, h.Source.ConsecutiveFailures);
            var fired = h.Time.OtherTimersFired;
            h.Time.Advance(wait - TimeSpan.FromMilliseconds(1));
            Assert.Equal(fired, h.Time.OtherTimersFired); // the backoff delay has not elapsed: no new camera can be coming
            Assert.Equal(i + 1, h.Cameras.Length);
            h.Time.Advance(TimeSpan.FromMilliseconds(1));
            Assert.Equal(fired + 1, h.Time.OtherTimersFired);
            await Harness.WaitUntilAsync(() => h.Cameras.Length == i + 2, ct);
            Assert.Equal(1, h.Cameras[i].DisposeCount);
        }

        Assert.False(pending.IsCompleted);
        Assert.Equal(SourceHealth.Unavailable, h.Source.State);
        Assert.Equal([SourceHealth.Unavailable], h.States); // reported once, not per attempt
        Assert.Equal(expected.Length, h.Source.Restarts);
        Assert.StartsWith("Connection refused", h.Source.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void Backoff_is_jittered_within_bounds()
    {
        var seen = new HashSet<TimeSpan>();
        var random = new Random(1234);
        for (var failures = 1; failures <= 12; failures++)
        {
            var nominal = Math.Min(Math.Pow(2, failures - 1), 30);
            for (var i = 0; i < 200; i++)
            {
                var delay = SupervisedFrameSource.ComputeBackoff(Options, failures, random.NextDouble()).TotalSeconds;
                Assert.InRange(delay, (nominal * 0.8) - 1e-9, nominal + 1e-9);
                Assert.True(delay <= 30 + 1e-9);
                seen.Add(TimeSpan.FromSeconds(delay));
            }
        }

        Assert.True(seen.Count > 1000, "jitter spreads the delays");
        Assert.Equal(TimeSpan.FromSeconds(0.8), SupervisedFrameSource.ComputeBackoff(Options, 1, 1.0));
        Assert.Equal(TimeSpan.FromSeconds(30), SupervisedFrameSource.ComputeBackoff(Options, 1000, 0.0));
    }

    [Fact]
    public async Task A_throwing_camera_reports_its_reason_and_recovers_with_states_in_order()
    {
        await using var h = new Harness(Options, random: new FixedRandom(0.5), configure: c =>
        {
            if (c.Index == 0)
            {
                c.PushFrame();
                c.PushError("ffmpeg failed (exit code 1): Invalid data found when processing input");
            }
            else
            {
                c.PushFrame();
            }
        });
        var ct = TestContext.Current.CancellationToken;
        (await h.Source.ReadFrameAsync(ct))!.Dispose();
        var pending = h.Source.ReadFrameAsync(ct).AsTask();
        await Harness.WaitUntilAsync(() => h.Time.TimersCreated == 1, ct);
        Assert.Equal(TimeSpan.FromSeconds(0.9), h.Source.LastBackoff); // 1 s × (1 − 0.2 × 0.5)
        h.Time.Advance(TimeSpan.FromSeconds(0.9));
        using var frame = await pending.WaitAsync(TimeSpan.FromSeconds(5), ct);
        Assert.NotNull(frame);
        Assert.Equal([SourceHealth.Streaming, SourceHealth.Unavailable, SourceHealth.Streaming], h.States);
        Assert.Contains("Invalid data found", h.Reasons[1], StringComparison.Ordinal);
        Assert.Equal(1, h.Cameras[0].DisposeCount);
        Assert.Equal(0, h.Source.ConsecutiveFailures);
        Assert.Contains("Invalid data found", h.Source.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gives_up_after_MaxConsecutiveFailures_when_configured()
    {
        await using var h = new Harness(Options with { MaxConsecutiveFailures = 3 }, random: new FixedRandom(0), configure: c => c.PushError("No such file or directory"));
        var ct = TestContext.Current.CancellationToken;
        var pending = h.Source.ReadFrameAsync(ct).AsTask();
        for (var i = 1; i <= 2; i++)
        {
            await Harness.WaitUntilAsync(() => h.Time.TimersCreated == i, ct);
            h.Time.Advance(h.Source.LastBackoff);
        }

        var error = await Assert.ThrowsAsync<FrameSourceException>(() => pending.WaitAsync(TimeSpan.FromSeconds(5), ct));
        Assert.Contains("No such file or directory", error.Message, StringComparison.Ordinal);
        Assert.Equal(SourceHealth.Failed, h.Source.State);
        Assert.Equal([SourceHealth.Unavailable, SourceHealth.Failed], h.States);
        Assert.Equal(3, h.Cameras.Length);
        Assert.All(h.Cameras, c => Assert.Equal(1, c.DisposeCount));
        await Assert.ThrowsAsync<FrameSourceException>(async () => await h.Source.ReadFrameAsync(ct));
    }

    [Fact]
    public async Task A_factory_that_throws_counts_as_a_failed_attempt()
    {
        var calls = 0;
        await using var h = new Harness(Options, random: new FixedRandom(0), configure: c =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                throw new InvalidOperationException("device busy");
            }

            c.PushFrame();
        });
        var ct = TestContext.Current.CancellationToken;
        var pending = h.Source.ReadFrameAsync(ct).AsTask();
        await Harness.WaitUntilAsync(() => h.Time.TimersCreated == 1, ct);
        Assert.Contains("device busy", h.Source.LastError, StringComparison.Ordinal);
        h.Time.Advance(TimeSpan.FromSeconds(1));
        using var frame = await pending.WaitAsync(TimeSpan.FromSeconds(5), ct);
        Assert.NotNull(frame);
        Assert.Equal([SourceHealth.Unavailable, SourceHealth.Streaming], h.States);
    }

    [Fact]
    public async Task End_of_a_finite_source_passes_through_unless_RestartWhenEnded()
    {
        var ct = TestContext.Current.CancellationToken;
        await using (var h = new Harness(Options, configure: c => { c.PushFrame(); c.PushEnd(); }))
        {
            (await h.Source.ReadFrameAsync(ct))!.Dispose();
            Assert.Null(await h.Source.ReadFrameAsync(ct));
            Assert.Null(await h.Source.ReadFrameAsync(ct));
            Assert.Single(h.Cameras);
            Assert.Equal(1, h.Cameras[0].DisposeCount);
        }

        await using (var h = new Harness(Options with { RestartWhenEnded = true }, random: new FixedRandom(0), configure: c => { c.PushFrame(); c.PushEnd(); }))
        {
            (await h.Source.ReadFrameAsync(ct))!.Dispose();
            var pending = h.Source.ReadFrameAsync(ct).AsTask();
            await Harness.WaitUntilAsync(() => h.Time.TimersCreated == 1, ct);
            Assert.Contains("ended", h.Source.LastError, StringComparison.Ordinal);
            h.Time.Advance(TimeSpan.FromSeconds(1));
            using var frame = await pending.WaitAsync(TimeSpan.FromSeconds(5), ct);
            Assert.NotNull(frame);
            Assert.Equal(2, h.Cameras.Length);
        }
    }

    [Fact]
    public async Task Dispose_cancels_a_pending_read_and_disposes_the_inner_source_once()
    {
        var h = new Harness(Options);
        var ct = TestContext.Current.CancellationToken;
        var pending = h.Source.ReadFrameAsync(ct).AsTask();
        await Harness.WaitUntilAsync(() => h.Cameras.Length == 1, ct);
        await h.DisposeAsync();
        await Assert.ThrowsAnyAsync<ObjectDisposedException>(() => pending.WaitAsync(TimeSpan.FromSeconds(5), ct));
        Assert.Equal(1, h.Cameras[0].DisposeCount);
        Assert.Equal(1, h.Cameras[0].CancelledReads);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await h.Source.ReadFrameAsync(ct));
        Assert.Single(h.Cameras);
    }

    [Fact]
    public async Task Caller_cancellation_replaces_the_inner_source_without_counting_a_failure()
    {
        await using var h = new Harness(Options, configure: c => { if (c.Index == 1) { c.PushFrame(); } });
        var ct = TestContext.Current.CancellationToken;
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            var pending = h.Source.ReadFrameAsync(cts.Token).AsTask();
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.WaitAsync(TimeSpan.FromSeconds(5), ct));
        }

        Assert.Equal(1, h.Cameras[0].DisposeCount);
        using var frame = await h.Source.ReadFrameAsync(ct); // reopens at once, no backoff
        Assert.NotNull(frame);
        Assert.Equal(0, h.Source.ConsecutiveFailures);
        Assert.Null(h.Source.LastError);
        Assert.Equal([SourceHealth.Streaming], h.States);
    }

    private sealed class FixedRandom(double sample) : Random
    {
        public override double NextDouble() => sample;
    }

    /// <summary>
    /// A FakeTimeProvider that counts timers (so a test knows when a backoff delay is waiting) and the
    /// callbacks they ran. FakeTimeProvider runs due callbacks synchronously inside <c>Advance</c>, so
    /// "not yet" is a count read right after advancing, never a pause hoping nothing happens.
    /// </summary>
    private sealed class CountingTimeProvider : FakeTimeProvider
    {
        private int _timers;
        private int _watchdogFired;
        private int _otherTimersFired;

        public CountingTimeProvider()
            : base(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero))
        {
        }

        public int TimersCreated => Volatile.Read(ref _timers) - 1; // minus the watchdog

        /// <summary>Times the stall watchdog (the first timer the source creates) fired.</summary>
        public int WatchdogFired => Volatile.Read(ref _watchdogFired);

        /// <summary>Times any other timer (the backoff delays) fired.</summary>
        public int OtherTimersFired => Volatile.Read(ref _otherTimersFired);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var isWatchdog = Interlocked.Increment(ref _timers) == 1;
            return base.CreateTimer(
                s =>
                {
                    Interlocked.Increment(ref isWatchdog ? ref _watchdogFired : ref _otherTimersFired);
                    callback(s);
                },
                state,
                dueTime,
                period);
        }
    }

    /// <summary>An inner source driven step by step: frames, errors and ends are pushed; with nothing pushed, reads hang (a stall).</summary>
    private sealed class FakeCamera(int index, FramePool pool) : IFrameSource
    {
        private readonly Channel<Func<Frame?>> _steps = Channel.CreateUnbounded<Func<Frame?>>();
        private int _disposeCount;
        private int _cancelledReads;

        public int Index => index;

        public ConcurrentQueue<Frame> SentQueue { get; } = new();

        public Frame[] Sent => SentQueue.ToArray();

        public int DisposeCount => Volatile.Read(ref _disposeCount);

        public int CancelledReads => Volatile.Read(ref _cancelledReads);

        public string Description => $"fake camera {index}";

        public void PushFrame() => _steps.Writer.TryWrite(() =>
        {
            var frame = pool.Rent(8, 8, FramePixelFormat.Rgb24);
            SentQueue.Enqueue(frame);
            return frame;
        });

        public void PushError(string message) => _steps.Writer.TryWrite(() => throw new FrameSourceException(message));

        public void PushEnd() => _steps.Writer.TryWrite(() => null);

        public async ValueTask<Frame?> ReadFrameAsync(CancellationToken cancellationToken)
        {
            ObjectDisposedException.ThrowIf(DisposeCount > 0, this);
            try
            {
                var step = await _steps.Reader.ReadAsync(cancellationToken);
                return step();
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref _cancelledReads);
                throw;
            }
        }

        public ValueTask DisposeAsync()
        {
            Interlocked.Increment(ref _disposeCount);
            return ValueTask.CompletedTask;
        }
    }

    private sealed class Harness : IAsyncDisposable
    {
        private readonly ConcurrentQueue<FakeCamera> _cameras = new();
        private readonly ConcurrentQueue<SourceHealthChangedEventArgs> _events = new();

        public Harness(SupervisionOptions options, Random? random = null, Action<FakeCamera>? configure = null)
        {
            Source = new SupervisedFrameSource(
                () =>
                {
                    var camera = new FakeCamera(_cameras.Count, Pool);
                    _cameras.Enqueue(camera);
                    configure?.Invoke(camera);
                    return camera;
                },
                options,
                Time,
                NullLogger.Instance,
                random ?? new Random(42));
            Source.StateChanged += (_, e) => _events.Enqueue(e);
        }

        public CountingTimeProvider Time { get; } = new();

        public FramePool Pool { get; } = new();

        public SupervisedFrameSource Source { get; }

        public FakeCamera[] Cameras => _cameras.ToArray();

        public SourceHealth[] States => _events.Select(e => e.State).ToArray();

        public string[] Reasons => _events.Select(e => e.Reason).ToArray();

        public static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while (!condition())
            {
                Assert.True(DateTime.UtcNow < deadline, "condition not met within 5 s");
                await Task.Delay(1, cancellationToken);
            }
        }

        public ValueTask DisposeAsync() => Source.DisposeAsync();
    }
}
