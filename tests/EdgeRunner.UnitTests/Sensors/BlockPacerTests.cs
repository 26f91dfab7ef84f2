using EdgeRunner.Hardware.Sensors;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests.Sensors;

/// <summary>The simulated sources' pacer: one block per period, on a grid shared by every pacer of the same rate.</summary>
public sealed class BlockPacerTests
{
    private const double BlocksPerSecond = 4; // 200 Hz in blocks of 50 samples, as the bundled vibration model

    [Fact]
    public async Task Pacers_started_apart_wake_at_the_same_instants()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider();
        time.Advance(TimeSpan.FromMilliseconds(37)); // off the grid
        var first = new BlockPacer(time, BlocksPerSecond);
        await first.WaitAsync(ct); // the first block at once
        time.Advance(TimeSpan.FromMilliseconds(90));
        var second = new BlockPacer(time, BlocksPerSecond);
        await second.WaitAsync(ct);

        Assert.Equal(0, first.NextDue % first.PeriodTicks);
        Assert.Equal(first.NextDue, second.NextDue);
        var margin = time.TimestampFrequency / 1000; // 1 ms
        for (var block = 0; block < 12; block++)
        {
            var due = first.NextDue;
            var a = first.WaitAsync(ct).AsTask();
            var b = second.WaitAsync(ct).AsTask();
            AdvanceTo(time, due - margin);
            Assert.False(a.IsCompleted || b.IsCompleted, $"block {block}: a pacer woke before the grid point");
            AdvanceTo(time, due);
            await Task.WhenAll(a, b);
            Assert.Equal(due + first.PeriodTicks, first.NextDue);
            Assert.Equal(first.NextDue, second.NextDue);
        }
    }

    [Fact]
    public async Task The_second_block_comes_within_one_period_of_a_free_running_pacer_and_the_rate_does_not_drift()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider();
        time.Advance(TimeSpan.FromMilliseconds(113));
        var pacer = new BlockPacer(time, BlocksPerSecond);
        var start = time.GetTimestamp();
        await pacer.WaitAsync(ct);
        var firstDue = pacer.NextDue;
        Assert.InRange(firstDue - start, pacer.PeriodTicks, (2 * pacer.PeriodTicks) - 1);

        for (var block = 1; block <= 400; block++)
        {
            var wait = pacer.WaitAsync(ct).AsTask();
            AdvanceTo(time, pacer.NextDue - pacer.PeriodTicks);
            await wait;
        }

        // 400 blocks later: exactly 400 periods, whatever the waits' rounding.
        Assert.Equal(firstDue + (400 * pacer.PeriodTicks), pacer.NextDue);
    }

    [Fact]
    public async Task Far_behind_it_restarts_on_the_grid_instead_of_bursting()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider();
        var pacer = new BlockPacer(time, BlocksPerSecond);
        await pacer.WaitAsync(ct);
        time.Advance(TimeSpan.FromSeconds(10)); // the consumer blocked for 40 periods

        await pacer.WaitAsync(ct); // late: returns at once
        var now = time.GetTimestamp();
        Assert.InRange(pacer.NextDue - now, pacer.PeriodTicks, (2 * pacer.PeriodTicks) - 1);
        Assert.Equal(0, pacer.NextDue % pacer.PeriodTicks);
        var next = pacer.WaitAsync(ct).AsTask();
        Assert.False(next.IsCompleted, "the pacer burst the missed blocks");
        AdvanceTo(time, pacer.NextDue - pacer.PeriodTicks);
        await next;
    }

    private static void AdvanceTo(FakeTimeProvider time, long timestamp)
    {
        var ticks = (timestamp - time.GetTimestamp()) * TimeSpan.TicksPerSecond / time.TimestampFrequency;
        if (ticks > 0)
        {
            time.Advance(TimeSpan.FromTicks(ticks));
        }
    }
}
