using System.Device.Gpio;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Hardware.Supervision;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests.Sensors;

/// <summary>
/// The GPIO source against a scripted <see cref="GpioDriver"/> behind a real <see cref="GpioController"/>:
/// edges are raised through the controller's callback registration, periods pass on a fake clock.
/// </summary>
public sealed class GpioSensorSourceTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 27, 3, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Period = TimeSpan.FromMilliseconds(100);

    private static GpioSensorSourceOptions Options(GpioEdge edge, params int[] pins) =>
        new() { Pins = pins, SampleRateHz = 10, Edge = edge };

    [Fact]
    public async Task Counts_rising_edges_per_period_for_each_pin()
    {
        var driver = new ScriptedGpioDriver();
        var time = new FakeTimeProvider(Start);
        await using var source = new GpioSensorSource(new GpioController(driver), Options(GpioEdge.Rising, 5, 6), time, NullLogger.Instance);
        Assert.Equal(new[] { "gpio5_rising", "gpio6_rising" }, source.Channels);
        var buffer = new float[3 * 2];

        var read = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        // Period 1: pin 5 pulses twice, pin 6 once.
        driver.Pulse(5);
        driver.Pulse(5);
        driver.Pulse(6);
        await EndPeriodAsync(time, source, 1);
        // Period 2: pin 6 pulses three times, pin 5 only rises (no full pulse).
        driver.Pulse(6);
        driver.Pulse(6);
        driver.Pulse(6);
        driver.Drive(5, PinValue.High);
        await EndPeriodAsync(time, source, 2);
        // Period 3: pin 5 falls: not a rising edge.
        driver.Drive(5, PinValue.Low);
        await EndPeriodAsync(time, source, 3);

        var block = await read;
        Assert.Equal(3, block.Samples);
        Assert.Equal(Start + Period, block.FirstSampleTime);
        Assert.Equal(new[] { 2f, 1f, 1f, 3f, 0f, 0f }, buffer);
    }

    [Theory]
    [InlineData(GpioEdge.Falling, 2f, 1f)]
    [InlineData(GpioEdge.Both, 4f, 2f)]
    public async Task Counts_falling_or_both_edges(GpioEdge edge, float period1, float period2)
    {
        var driver = new ScriptedGpioDriver();
        var time = new FakeTimeProvider(Start);
        await using var source = new GpioSensorSource(new GpioController(driver), Options(edge, 17), time, NullLogger.Instance);
        var buffer = new float[2];

        var read = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        driver.Pulse(17);
        driver.Pulse(17);
        await EndPeriodAsync(time, source, 1);
        driver.Pulse(17);
        await EndPeriodAsync(time, source, 2);
        await read;

        Assert.Equal(new[] { period1, period2 }, buffer);
    }

    [Fact]
    public async Task Edges_before_the_first_read_are_not_counted()
    {
        var driver = new ScriptedGpioDriver();
        var time = new FakeTimeProvider(Start);
        await using var source = new GpioSensorSource(new GpioController(driver), Options(GpioEdge.Rising, 4), time, NullLogger.Instance);
        driver.Pulse(4);
        driver.Pulse(4);
        var buffer = new float[1];

        var read = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        driver.Pulse(4);
        await EndPeriodAsync(time, source, 1);
        await read;

        Assert.Equal(1f, buffer[0]);
    }

    [Fact]
    public async Task Debounce_drops_edges_that_follow_a_counted_edge_too_closely()
    {
        var driver = new ScriptedGpioDriver();
        var time = new FakeTimeProvider(Start);
        var options = Options(GpioEdge.Rising, 22) with { Debounce = TimeSpan.FromMilliseconds(5) };
        await using var source = new GpioSensorSource(new GpioController(driver), options, time, NullLogger.Instance);
        var buffer = new float[1];

        var read = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        // A press that bounces: rising edges at 0, 1 and 2 ms count once; a second press at 20 ms counts.
        driver.Pulse(22);
        time.Advance(TimeSpan.FromMilliseconds(1));
        driver.Pulse(22);
        time.Advance(TimeSpan.FromMilliseconds(1));
        driver.Pulse(22);
        time.Advance(TimeSpan.FromMilliseconds(18));
        driver.Pulse(22);
        time.Advance(Period - TimeSpan.FromMilliseconds(20));
        await Eventually.True(() => source.SamplesRead == 1, "the first period's sample");
        await read;

        Assert.Equal(2f, buffer[0]);
        Assert.Equal(2, source.EdgesIgnored);
    }

    [Fact]
    public async Task Level_mode_samples_the_pin_levels_at_the_end_of_each_period()
    {
        var driver = new ScriptedGpioDriver();
        var time = new FakeTimeProvider(Start);
        var options = Options(GpioEdge.None, 2, 3) with { Pull = GpioPull.Up };
        await using var source = new GpioSensorSource(new GpioController(driver), options, time, NullLogger.Instance);
        Assert.Equal(PinMode.InputPullUp, driver.ModeOf(2));
        Assert.Equal(0, driver.CallbackCount); // levels are read, not counted
        var buffer = new float[2 * 2];

        var read = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        driver.Drive(2, PinValue.High);
        await EndPeriodAsync(time, source, 1);
        driver.Drive(2, PinValue.Low);
        driver.Drive(3, PinValue.High);
        await EndPeriodAsync(time, source, 2);
        await read;

        Assert.Equal(new[] { 1f, 0f, 0f, 1f }, buffer);
        Assert.Equal(new[] { "gpio2_level", "gpio3_level" }, source.Channels);
    }

    [Fact]
    public async Task Disposing_unregisters_callbacks_closes_pins_and_the_controller()
    {
        var driver = new ScriptedGpioDriver();
        var source = new GpioSensorSource(new GpioController(driver), Options(GpioEdge.Both, 7, 8), TimeProvider.System, NullLogger.Instance);
        Assert.Equal(2, driver.CallbackCount);
        Assert.Equal(new HashSet<int> { 7, 8 }, driver.OpenPins);

        await source.DisposeAsync();

        Assert.Equal(0, driver.CallbackCount);
        Assert.Empty(driver.OpenPins);
        Assert.True(driver.IsDisposed);
    }

    [Fact]
    public void A_pin_listed_twice_or_no_pins_is_a_clear_error()
    {
        var driver = new ScriptedGpioDriver();
        var twice = Assert.Throws<SensorSourceException>(() => new GpioSensorSource(
            new GpioController(driver), Options(GpioEdge.Rising, 5, 5) with { Name = "Sensors:door:Source" }, TimeProvider.System, NullLogger.Instance));
        Assert.Contains("Sensors:door:Source", twice.Message, StringComparison.Ordinal);
        Assert.Contains("listed twice", twice.Message, StringComparison.Ordinal);

        var none = Assert.Throws<SensorSourceException>(() => new GpioSensorSource(
            new GpioController(driver), Options(GpioEdge.Rising), TimeProvider.System, NullLogger.Instance));
        Assert.Contains("no pins", none.Message, StringComparison.Ordinal);
        Assert.Empty(driver.OpenPins);
    }

    [Fact]
    public void A_pin_the_controller_cannot_open_is_named()
    {
        var driver = new ScriptedGpioDriver();

        var error = Assert.Throws<SensorSourceException>(() => new GpioSensorSource(
            new GpioController(driver), Options(GpioEdge.Rising, 3, 99), TimeProvider.System, NullLogger.Instance));

        Assert.Contains("pin 99", error.Message, StringComparison.Ordinal);
        Assert.Empty(driver.OpenPins); // pin 3, opened first, was closed again
        Assert.Equal(0, driver.CallbackCount);
    }

    [Fact]
    public async Task Level_reads_that_keep_failing_make_the_stream_unavailable_until_the_pins_read_again()
    {
        // 10 Hz, lost after 0.3 s: three failed samples in a row.
        var time = new FakeTimeProvider(Start);
        var drivers = new List<ScriptedGpioDriver>();
        IOException? gone = null;
        await using var source = new ReopeningSensorSource(
            "GPIO pin 4",
            () =>
            {
                var driver = new ScriptedGpioDriver { ReadFailure = gone };
                driver.Drive(4, PinValue.High);
                drivers.Add(driver);
                return new GpioSensorSource(new GpioController(driver), Options(GpioEdge.None, 4) with { DeviceLostAfter = TimeSpan.FromSeconds(0.3) }, time, NullLogger.Instance);
            },
            ["gpio4_level"],
            10,
            time,
            NullLogger.Instance);
        var states = new List<(SourceHealth State, string Reason)>();
        source.StateChanged += (_, e) => states.Add((e.State, e.Reason));
        var buffer = new float[1];

        Assert.Equal(1f, await ReadDrivingAsync(source, time, buffer));
        // A glitch: two NaN samples, still streaming, then the level again.
        drivers[0].FailingReads = 2;
        Assert.True(float.IsNaN(await ReadDrivingAsync(source, time, buffer)));
        Assert.True(float.IsNaN(await ReadDrivingAsync(source, time, buffer)));
        Assert.Equal(SourceHealth.Streaming, source.State);
        Assert.Equal(1f, await ReadDrivingAsync(source, time, buffer));

        // The GPIO chip goes away: two NaN samples, and the third failure in a row is a lost device.
        gone = new IOException("No such device");
        drivers[0].ReadFailure = gone;
        Assert.True(float.IsNaN(await ReadDrivingAsync(source, time, buffer)));
        Assert.True(float.IsNaN(await ReadDrivingAsync(source, time, buffer)));
        var pending = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        await Eventually.TrueAdvancing(time, Period, () => source.State == SourceHealth.Unavailable, "the lost device");
        Assert.Contains("GPIO reads failed for 3 samples in a row: No such device", source.Reason, StringComparison.Ordinal);

        // Reopened while still gone: the first read fails at once, no NaN sample, no "streaming" in between.
        await Eventually.TrueAdvancing(time, Period, () => drivers.Count >= 3, "two reopenings");
        Assert.False(pending.IsCompleted);
        Assert.Contains("failed right after opening: No such device", source.Reason, StringComparison.Ordinal);

        gone = null;
        await Eventually.TrueAdvancing(time, Period, () => pending.IsCompleted, "the pins to read again");
        var block = await pending;
        Assert.Equal(1, block.Samples);
        Assert.Equal(1f, buffer[0]);
        Assert.Equal(6, block.FirstSampleIndex);
        Assert.Equal(SourceHealth.Streaming, source.State);
        Assert.Equal(
            [SourceHealth.Streaming, SourceHealth.Unavailable, SourceHealth.Unavailable, SourceHealth.Streaming],
            states.Select(s => s.State));
        Assert.True(drivers[0].IsDisposed);
    }

    /// <summary>Reads one one-sample block through the wrapper, advancing fake time a period at a time; returns the value.</summary>
    private static async Task<float> ReadDrivingAsync(ReopeningSensorSource source, FakeTimeProvider time, float[] buffer)
    {
        var read = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        await Eventually.TrueAdvancing(time, Period, () => read.IsCompleted, "the read");
        Assert.Equal(1, (await read).Samples);
        return buffer[0];
    }

    /// <summary>Ends sample period <paramref name="sample"/> on the fake clock and waits until the source has taken that sample.</summary>
    private static async Task EndPeriodAsync(FakeTimeProvider time, GpioSensorSource source, int sample)
    {
        time.Advance(Period);
        await Eventually.True(() => source.SamplesRead == sample, $"sample {sample}");
    }
}
