using System.Buffers;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests.Sensors;

/// <summary>The queue of an MQTT-fed stream: what one wait on an empty queue costs.</summary>
public sealed class MqttSensorSourceTests
{
    /// <summary>
    /// Bytes the reading thread allocates to start one wait on an empty queue (a wildcard stream fed one
    /// sample per message waits once per message): the smallest over several rounds, since the runtime
    /// itself allocates now and then (tiered JIT).
    /// </summary>
    private static async Task<long> BytesPerWaitAsync(TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        await using var source = new MqttSensorSource(
            "vib/m1", "plant/m1/accel", ["ax", "ay", "az"], 200, 16, TimeSpan.FromSeconds(300), () => false, timeProvider, NullLogger.Instance);
        var destination = new float[3 * 50];
        var least = long.MaxValue;
        for (var round = 0; round < 200; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            var pending = source.ReadAsync(destination, cancellationToken);
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.False(pending.IsCompleted);
            var samples = ArrayPool<float>.Shared.Rent(3);
            samples[0] = round;
            Assert.True(source.TryEnqueue(samples, 1, timeProvider.GetUtcNow()));
            var block = await pending;
            Assert.Equal(1, block.Samples);
            Assert.Equal(round, block.FirstSampleIndex);
            Assert.Equal(round, destination[0]);
            if (round >= 100)
            {
                least = Math.Min(least, allocated);
            }
        }

        return least;
    }

    [Fact]
    public async Task A_wait_for_the_next_message_creates_no_token_sources()
    {
        var ct = TestContext.Current.CancellationToken;

        var bytes = await BytesPerWaitAsync(TimeProvider.System, ct);

        // What is left is the channel's own waiter (it allocates one per wait with a cancelable token);
        // two token sources, a timer and a state machine box per wait were several hundred bytes.
        Assert.True(bytes <= 160, $"{bytes} bytes per wait");
    }

    [Fact]
    public async Task The_reused_idle_timer_restarts_at_every_wait_and_evicts_after_a_full_idle_timeout()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider();
        var asked = 0;
        await using var source = new MqttSensorSource(
            "vib/m1", "plant/m1/accel", ["ax", "ay", "az"], 200, 16, TimeSpan.FromSeconds(10), () => ++asked > 0, time, NullLogger.Instance);
        var destination = new float[3 * 50];
        for (var i = 0; i < 5; i++)
        {
            // 9 s of silence before each message (45 s in all): never a full timeout, since each wait
            // re-arms the one timer (a timer armed once would have evicted the stream at the second gap).
            var pending = source.ReadAsync(destination, ct);
            time.Advance(TimeSpan.FromSeconds(9));
            Assert.True(source.TryEnqueue(ArrayPool<float>.Shared.Rent(3), 1, time.GetUtcNow()));
            var block = await pending;
            Assert.Equal(1, block.Samples);
            Assert.Equal(i, block.FirstSampleIndex);
        }

        Assert.Equal(0, asked);
        var idle = source.ReadAsync(destination, ct);
        time.Advance(TimeSpan.FromSeconds(10));
        var end = await idle;

        Assert.Equal(1, asked);
        Assert.Equal(0, end.Samples);
        Assert.Equal(5, end.FirstSampleIndex);
    }
}
