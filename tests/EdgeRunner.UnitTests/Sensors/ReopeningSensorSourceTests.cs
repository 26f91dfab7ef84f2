using EdgeRunner.Hardware.Sensors;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests.Sensors;

public sealed class ReopeningSensorSourceTests
{
    /// <summary>A device that delivers blocks of a counter, or fails as scripted.</summary>
    private sealed class ScriptedDevice(int channels, double rate) : ISensorSource
    {
        private float _next;

        public Exception? FailNextRead { get; set; }

        public bool Disposed { get; private set; }

        public string Description => "scripted";

        public IReadOnlyList<string> Channels { get; } = [.. Enumerable.Range(0, channels).Select(c => $"c{c}")];

        public double SampleRateHz => rate;

        public ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
        {
            if (FailNextRead is { } failure)
            {
                FailNextRead = null;
                throw failure;
            }

            var samples = destination.Length / Channels.Count;
            for (var i = 0; i < samples * Channels.Count; i++)
            {
                destination.Span[i] = _next++;
            }

            return ValueTask.FromResult(new SensorBlock(samples, DateTimeOffset.UnixEpoch, 0));
        }

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }

    private static async Task<SensorBlock> ReadAdvancingAsync(ReopeningSensorSource source, float[] buffer, FakeTimeProvider time)
    {
        var read = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        for (var i = 0; i < 1000 && !read.IsCompleted; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Yield();
        }

        return await read.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task A_device_absent_at_start_is_reported_and_read_once_it_appears()
    {
        var time = new FakeTimeProvider();
        var attempts = 0;
        ScriptedDevice? device = null;
        var source = new ReopeningSensorSource(
            "chip",
            () => ++attempts < 4 ? throw new SensorSourceException($"no device (attempt {attempts})") : device = new ScriptedDevice(3, 100),
            ["x", "y", "z"],
            100,
            time,
            NullLogger.Instance);
        var states = new List<(SensorSourceState, string)>();
        source.StateChanged += (_, e) => states.Add((e.State, e.Reason));
        Assert.Equal(SensorSourceState.Unavailable, source.State);
        Assert.Equal("no device (attempt 1)", source.Reason);
        Assert.Equal(["x", "y", "z"], source.Channels);

        var buffer = new float[6];
        var block = await ReadAdvancingAsync(source, buffer, time);

        Assert.Equal(4, attempts);
        Assert.Equal(2, block.Samples);
        Assert.Equal([0f, 1, 2, 3, 4, 5], buffer);
        Assert.Equal(SensorSourceState.Streaming, source.State);
        Assert.Equal(1, source.Reopens);
        Assert.Equal(
            [(SensorSourceState.Unavailable, "no device (attempt 2)"), (SensorSourceState.Unavailable, "no device (attempt 3)"), (SensorSourceState.Streaming, "reading")],
            states);
        Assert.NotNull(device);
    }

    [Fact]
    public async Task A_device_lost_while_reading_is_closed_reopened_and_sample_indices_continue()
    {
        var time = new FakeTimeProvider();
        var devices = new List<ScriptedDevice>();
        var source = new ReopeningSensorSource("port", () => { devices.Add(new ScriptedDevice(1, 50)); return devices[^1]; }, ["v"], 50, time, NullLogger.Instance);
        var buffer = new float[4];
        Assert.Equal(0, (await ReadAdvancingAsync(source, buffer, time)).FirstSampleIndex);

        devices[0].FailNextRead = new IOException("Input/output error");
        var afterLoss = await ReadAdvancingAsync(source, buffer, time);

        Assert.True(devices[0].Disposed);
        Assert.Equal(2, devices.Count);
        Assert.Equal(4, afterLoss.FirstSampleIndex);
        Assert.Equal(SensorSourceState.Streaming, source.State);
        Assert.Equal(1, source.Reopens);
    }

    [Fact]
    public async Task A_device_that_comes_back_with_other_channels_is_refused()
    {
        var time = new FakeTimeProvider();
        var opened = 0;
        var source = new ReopeningSensorSource(
            "chip",
            () => ++opened == 1 ? throw new SensorSourceException("absent") : new ScriptedDevice(opened == 2 ? 2 : 3, 100),
            ["x", "y", "z"],
            100,
            time,
            NullLogger.Instance);
        var reasons = new List<string>();
        source.StateChanged += (_, e) => reasons.Add(e.Reason);

        var block = await ReadAdvancingAsync(source, new float[3], time);

        Assert.Equal(1, block.Samples);
        Assert.Contains(reasons, r => r.Contains("has 2 channels", StringComparison.Ordinal) && r.Contains("expects 3", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cancellation_while_waiting_for_the_device_ends_the_read()
    {
        var source = new ReopeningSensorSource("chip", () => throw new SensorSourceException("absent"), ["x"], 10, TimeProvider.System, NullLogger.Instance, initialBackoff: TimeSpan.FromMinutes(5));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await source.ReadAsync(new float[1], cts.Token));
        Assert.Equal(SensorSourceState.Unavailable, source.State);
    }
}
