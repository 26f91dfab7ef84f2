using EdgeRunner.Service.Sensors;

namespace EdgeRunner.UnitTests.Sensors;

/// <summary>The window clock of a stream, driven by explicit sample times (10 Hz model rate, steps of 5 samples = 0.5 s).</summary>
public sealed class StreamWindowClockTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static StreamWindowClock Started(DateTimeOffset first)
    {
        var clock = new StreamWindowClock(modelRateHz: 10);
        clock.Anchor(first);
        clock.BlockRead(first, TimeSpan.FromSeconds(1));
        return clock;
    }

    [Fact]
    public void Windows_follow_the_model_rate_sample_clock_not_the_block_times()
    {
        var clock = new StreamWindowClock(modelRateHz: 10);
        Assert.False(clock.Started);
        clock.Anchor(T0);
        clock.BlockRead(T0, TimeSpan.FromSeconds(1));
        Assert.True(clock.Started);
        Assert.Equal(T0.AddSeconds(1), clock.ExpectedNextSample);

        Assert.Equal((T0, T0.AddSeconds(0.5)), clock.NextWindow(5));
        Assert.Equal((T0.AddSeconds(0.5), T0.AddSeconds(1)), clock.NextWindow(5));

        // The next block comes 3 ms late: the windows stay on the sample clock.
        clock.BlockRead(T0.AddMilliseconds(1003), TimeSpan.FromSeconds(1));
        clock.ApplyRestart();
        Assert.Equal((T0.AddSeconds(1), T0.AddSeconds(1.5)), clock.NextWindow(5));
        Assert.Equal(15, clock.ModelSampleIndex);
        Assert.Equal(T0.AddMilliseconds(2003), clock.ExpectedNextSample);
    }

    [Fact]
    public void A_resumed_stream_goes_on_with_its_sample_index_from_the_first_block()
    {
        var clock = new StreamWindowClock(modelRateHz: 10);
        clock.Resume(modelSampleIndex: 20);
        clock.Anchor(T0);
        clock.BlockRead(T0, TimeSpan.FromSeconds(1));

        Assert.Equal((T0, T0.AddSeconds(0.5)), clock.NextWindow(5));
        Assert.Equal(25, clock.ModelSampleIndex);
    }

    [Fact]
    public void A_reset_that_drops_samples_restarts_the_clock_at_the_next_block()
    {
        var clock = Started(T0);
        clock.NextWindow(5);
        clock.RestartAtNextBlock();

        // Nothing changes until the next block is read.
        var later = T0.AddSeconds(42);
        clock.BlockRead(later, TimeSpan.FromSeconds(1));
        clock.ApplyRestart();

        Assert.Equal((later, later.AddSeconds(0.5)), clock.NextWindow(5));
    }

    [Fact]
    public void A_reset_within_a_block_restarts_the_clock_at_the_first_sample_kept_after_it()
    {
        var clock = Started(T0);
        clock.RestartAtNextBlock();
        var block = T0.AddSeconds(1);
        clock.BlockRead(block, TimeSpan.FromSeconds(1));

        // An invalid sample at 1.3 s resets again: the kept samples start at 1.4 s.
        clock.RestartAt(block.AddSeconds(0.4));
        clock.ApplyRestart();

        Assert.Equal((block.AddSeconds(0.4), block.AddSeconds(0.9)), clock.NextWindow(5));
    }

    [Fact]
    public void A_dropped_sample_stretches_the_window_it_fell_in_and_delays_the_next()
    {
        var clock = Started(T0);
        clock.SampleDropped(TimeSpan.FromSeconds(0.1));
        clock.ApplyRestart(); // no restart pending: the drop stays

        Assert.Equal((T0, T0.AddSeconds(0.6)), clock.NextWindow(5));
        Assert.Equal((T0.AddSeconds(0.6), T0.AddSeconds(1.1)), clock.NextWindow(5));
    }

    [Fact]
    public void A_restart_forgets_the_time_of_samples_dropped_before_it()
    {
        var clock = Started(T0);
        clock.SampleDropped(TimeSpan.FromSeconds(0.1));
        clock.RestartAt(T0.AddSeconds(0.3));
        clock.ApplyRestart();

        Assert.Equal((T0.AddSeconds(0.3), T0.AddSeconds(0.8)), clock.NextWindow(5));
    }

    [Fact]
    public void A_skipped_window_keeps_the_clock_going()
    {
        var clock = Started(T0);
        clock.SkipWindow(5);

        Assert.Equal((T0.AddSeconds(0.5), T0.AddSeconds(1)), clock.NextWindow(5));
    }
}
