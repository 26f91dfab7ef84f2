using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Hardware.Supervision;
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

    /// <summary>A device that reconnects by itself: it reports the loss and return as scripted, from within a read.</summary>
    private sealed class SelfReconnectingDevice : ISensorSource, IDeviceAvailability
    {
        private float _next;

        public event EventHandler<DeviceAvailabilityChangedEventArgs>? AvailabilityChanged;

        /// <summary>Raised at the start of the next read (then cleared).</summary>
        public DeviceAvailabilityChangedEventArgs? RaiseOnNextRead { get; set; }

        public bool HasSubscribers => AvailabilityChanged is not null;

        public string Description => "self-reconnecting";

        public IReadOnlyList<string> Channels { get; } = ["v"];

        public double SampleRateHz => 10;

        public ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
        {
            if (RaiseOnNextRead is { } e)
            {
                RaiseOnNextRead = null;
                AvailabilityChanged?.Invoke(this, e);
            }

            destination.Span[0] = _next++;
            return ValueTask.FromResult(new SensorBlock(1, DateTimeOffset.UnixEpoch, 0));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
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
        var states = new List<(SourceHealth, string)>();
        source.StateChanged += (_, e) => states.Add((e.State, e.Reason));
        Assert.Equal(SourceHealth.Unavailable, source.State);
        Assert.Equal("no device (attempt 1)", source.Reason);
        Assert.Equal(["x", "y", "z"], source.Channels);

        var buffer = new float[6];
        var block = await ReadAdvancingAsync(source, buffer, time);

        Assert.Equal(4, attempts);
        Assert.Equal(2, block.Samples);
        Assert.Equal([0f, 1, 2, 3, 4, 5], buffer);
        Assert.Equal(SourceHealth.Streaming, source.State);
        Assert.Equal(1, source.Reopens);
        Assert.Equal(
            [(SourceHealth.Unavailable, "no device (attempt 2)"), (SourceHealth.Unavailable, "no device (attempt 3)"), (SourceHealth.Streaming, "reading")],
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
        Assert.Equal(SourceHealth.Streaming, source.State);
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
        Assert.Equal(SourceHealth.Unavailable, source.State);
    }

    [Fact]
    public async Task A_device_opened_at_construction_is_opening_until_its_first_block()
    {
        var time = new FakeTimeProvider();
        await using var source = new ReopeningSensorSource("port", () => new ScriptedDevice(1, 50), ["v"], 50, time, NullLogger.Instance);
        var states = new List<SourceHealth>();
        source.StateChanged += (_, e) => states.Add(e.State);

        Assert.Equal(SourceHealth.Opening, source.State);
        Assert.Equal("opened; waiting for the first samples", source.Reason);
        await ReadAdvancingAsync(source, new float[1], time);

        Assert.Equal([SourceHealth.Streaming], states);
    }

    [Fact]
    public async Task A_device_whose_first_read_fails_goes_from_opening_to_unavailable_never_streaming()
    {
        var time = new FakeTimeProvider();
        var devices = new List<ScriptedDevice>();
        await using var source = new ReopeningSensorSource(
            "mic",
            () =>
            {
                devices.Add(new ScriptedDevice(1, 50) { FailNextRead = devices.Count == 0 ? new SensorSourceException("capture exited: no such device") : null });
                return devices[^1];
            },
            ["v"],
            50,
            time,
            NullLogger.Instance);
        var states = new List<(SourceHealth, string)>();
        source.StateChanged += (_, e) => states.Add((e.State, e.Reason));

        await ReadAdvancingAsync(source, new float[1], time);

        Assert.Equal([(SourceHealth.Unavailable, "capture exited: no such device"), (SourceHealth.Streaming, "reading")], states);
        Assert.True(devices[0].Disposed);
    }

    [Fact]
    public async Task A_device_refused_at_construction_is_disposed_by_the_first_read()
    {
        var time = new FakeTimeProvider();
        var devices = new List<ScriptedDevice>();
        await using var source = new ReopeningSensorSource("chip", () => { devices.Add(new ScriptedDevice(devices.Count == 0 ? 2 : 3, 100)); return devices[^1]; }, ["x", "y", "z"], 100, time, NullLogger.Instance);
        Assert.Equal(SourceHealth.Unavailable, source.State);
        Assert.Contains("has 2 channels", source.Reason, StringComparison.Ordinal);
        Assert.False(devices[0].Disposed);

        var block = await ReadAdvancingAsync(source, new float[3], time);

        Assert.True(devices[0].Disposed);
        Assert.Equal(1, block.Samples);
        Assert.Equal(SourceHealth.Streaming, source.State);
    }

    [Fact]
    public async Task A_self_reconnecting_device_reports_its_loss_and_return_through_the_wrappers_state()
    {
        var time = new FakeTimeProvider();
        var device = new SelfReconnectingDevice();
        var source = new ReopeningSensorSource("serial", () => device, ["v"], 10, time, NullLogger.Instance);
        var states = new List<(SourceHealth, string)>();
        source.StateChanged += (_, e) => states.Add((e.State, e.Reason));
        var buffer = new float[1];
        await ReadAdvancingAsync(source, buffer, time);

        // The device is lost during a read that still hands out what arrived before: unavailable, not streaming.
        device.RaiseOnNextRead = new DeviceAvailabilityChangedEventArgs(false, "Serial port '/dev/ttyUSB0' went away (end of stream); reopening");
        var tail = await ReadAdvancingAsync(source, buffer, time);
        Assert.Equal(1, tail.Samples);
        Assert.Equal(SourceHealth.Unavailable, source.State);
        Assert.Equal("Serial port '/dev/ttyUSB0' went away (end of stream); reopening", source.Reason);

        device.RaiseOnNextRead = new DeviceAvailabilityChangedEventArgs(true, "reading");
        var back = await ReadAdvancingAsync(source, buffer, time);

        Assert.Equal(2, back.FirstSampleIndex);
        Assert.Equal(2f, buffer[0]);
        Assert.Equal(
            [(SourceHealth.Streaming, "reading"), (SourceHealth.Unavailable, "Serial port '/dev/ttyUSB0' went away (end of stream); reopening"), (SourceHealth.Streaming, "reading")],
            states);
        Assert.Equal(0, source.Reopens);

        // Closing unsubscribes: the device no longer reaches the wrapper.
        Assert.True(device.HasSubscribers);
        await source.DisposeAsync();
        Assert.False(device.HasSubscribers);
    }
}
