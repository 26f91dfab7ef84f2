using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Hardware.Supervision;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests.Sensors;

/// <summary>
/// The I2C source against simulated chips behind <see cref="System.Device.I2c.I2cDevice"/>: the real
/// dotnet/iot bindings read known register values, and the expected outputs come from the datasheets.
/// </summary>
public sealed class I2cSensorSourceTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 27, 3, 0, 0, TimeSpan.Zero);

    private static I2cSensorSourceOptions Options(I2cSensorChip chip, double rateHz = 100, int rangeG = 2) =>
        new() { Chip = chip, SampleRateHz = rateHz, AccelerationRangeG = rangeG };

    [Fact]
    public async Task Adxl345_reads_acceleration_in_g_for_the_configured_range()
    {
        // ±4 g in 10-bit mode: 128 LSB per g.
        var chip = SimulatedChips.Adxl345(x: 128, y: -64, z: 256);
        var time = new FakeTimeProvider(Start);
        await using var source = new I2cSensorSource(chip, Options(I2cSensorChip.Adxl345, rangeG: 4), time, NullLogger.Instance);

        Assert.Equal(new[] { "ax", "ay", "az" }, source.Channels);
        Assert.Equal(0x01, chip[0x31]); // DATA_FORMAT range bits: ±4 g
        Assert.Equal(0x08, chip[0x2D]); // POWER_CTL: measure
        var buffer = new float[3];
        var block = await ReadAdvancingAsync(source, time, buffer);

        Assert.Equal(1, block.Samples);
        Assert.Equal(new[] { 1.0f, -0.5f, 2.0f }, buffer);
    }

    [Fact]
    public async Task Mpu6050_reads_acceleration_in_g_for_the_configured_range()
    {
        // ±4 g: 8192 LSB per g, big-endian registers.
        var chip = SimulatedChips.Mpu6050(x: 8192, y: -4096, z: 16384);
        var time = new FakeTimeProvider(Start);
        await using var source = new I2cSensorSource(chip, Options(I2cSensorChip.Mpu6050, rangeG: 4), time, NullLogger.Instance);

        Assert.Equal(1 << 3, chip[0x1C]); // ACCEL_CONFIG AFS_SEL = 1
        var buffer = new float[3];
        await ReadAdvancingAsync(source, time, buffer);

        Assert.Equal(1.0, buffer[0], 5);
        Assert.Equal(-0.5, buffer[1], 5);
        Assert.Equal(2.0, buffer[2], 5);
    }

    [Fact]
    public async Task Bme280_reads_temperature_pressure_and_humidity_as_the_datasheet_compensates_them()
    {
        // The datasheet's example: adc_T 519888 → 25.08 °C, adc_P 415148 → 100653.27 Pa.
        const int AdcT = 519888, AdcP = 415148, AdcH = 30000;
        var chip = SimulatedChips.Bme280(AdcT, AdcP, AdcH);
        var time = new FakeTimeProvider(Start);
        await using var source = new I2cSensorSource(chip, Options(I2cSensorChip.Bme280, rateHz: 1), time, NullLogger.Instance);

        Assert.Equal(new[] { "temperature", "pressure", "humidity" }, source.Channels);
        Assert.Equal(0b11, chip[0xF4] & 0b11); // ctrl_meas mode: normal (continuous), so reads never wait
        var buffer = new float[3];
        await ReadAdvancingAsync(source, time, buffer);

        var (celsius, pascals, percent) = SimulatedChips.Bme280Reference(AdcT, AdcP, AdcH);
        Assert.Equal(25.08, celsius, 2);
        Assert.Equal(100653.27, pascals, 2);
        Assert.Equal(celsius, buffer[0], 3);
        Assert.Equal(pascals / 100, buffer[1], 3); // hPa
        Assert.Equal(percent, buffer[2], 3);
        Assert.InRange(buffer[2], 54.9f, 55.1f);
    }

    [Theory]
    [InlineData(I2cSensorChip.Adxl345, 0x53, 0x00, "0xE5")]
    [InlineData(I2cSensorChip.Mpu6050, 0x68, 0x75, "0x68")]
    [InlineData(I2cSensorChip.Bme280, 0x76, 0xD0, "0x60")]
    public void A_wrong_chip_id_fails_naming_bus_address_and_ids(I2cSensorChip chipKind, int address, int idRegister, string expectedId)
    {
        var chip = new SimulatedI2cChip(3, address) { [idRegister] = 0x58 };

        var error = Assert.Throws<SensorSourceException>(() => new I2cSensorSource(chip, Options(chipKind), TimeProvider.System, NullLogger.Instance));

        Assert.Contains("I2C bus 3", error.Message, StringComparison.Ordinal);
        Assert.Contains($"address 0x{address:X2}", error.Message, StringComparison.Ordinal);
        Assert.Contains("wrong chip id 0x58", error.Message, StringComparison.Ordinal);
        Assert.Contains($"expected {expectedId}", error.Message, StringComparison.Ordinal);
        Assert.True(chip.IsDisposed);
    }

    [Fact]
    public void An_absent_device_fails_saying_no_device_answered()
    {
        var chip = SimulatedChips.Bme280(519888, 415148, 30000, busId: 1, address: 0x77);
        chip.Absent = true;

        var error = Assert.Throws<SensorSourceException>(() => new I2cSensorSource(
            chip, Options(I2cSensorChip.Bme280) with { Name = "Sensors:env:Source" }, TimeProvider.System, NullLogger.Instance));

        Assert.StartsWith("Sensors:env:Source (BME280 on I2C bus 1 at address 0x77)", error.Message, StringComparison.Ordinal);
        Assert.Contains("no device answered", error.Message, StringComparison.Ordinal);
        Assert.IsType<IOException>(error.InnerException);
    }

    [Fact]
    public void A_missing_bus_device_fails_naming_the_bus()
    {
        // The production path: /dev/i2c-250 does not exist on this machine (nor on any usual board).
        Assert.False(File.Exists("/dev/i2c-250"));

        var error = Assert.Throws<SensorSourceException>(() => I2cSensorSource.Open(250, 0x53, Options(I2cSensorChip.Adxl345), TimeProvider.System, NullLogger.Instance));

        Assert.Contains("/dev/i2c-250", error.Message, StringComparison.Ordinal);
        Assert.Contains("I2C bus 250", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bus_errors_give_NaN_samples_are_counted_and_logged_rate_limited_and_the_stream_goes_on()
    {
        var chip = SimulatedChips.Adxl345(256, 0, -256);
        var time = new FakeTimeProvider(Start);
        var logger = new CountingLogger();
        await using var source = new I2cSensorSource(chip, Options(I2cSensorChip.Adxl345, rateHz: 100), time, logger);
        var buffer = new float[3];

        await ReadAdvancingAsync(source, time, buffer);
        Assert.Equal(new[] { 1f, 0f, -1f }, buffer);

        // Five failing reads in a row (the bus glitches for 50 ms): NaN, counted, one warning.
        chip.FailingTransfers = 5;
        for (var i = 0; i < 5; i++)
        {
            await ReadAdvancingAsync(source, time, buffer);
            Assert.All(buffer, v => Assert.True(float.IsNaN(v)));
        }

        Assert.Equal(5, source.ReadFailures);
        Assert.Equal(1, logger.Warnings);

        // The bus recovers: good samples again, and a note that it did.
        SimulatedChips.SetAdxl345Output(chip, 0, 256, 0);
        await ReadAdvancingAsync(source, time, buffer);
        Assert.Equal(new[] { 0f, 1f, 0f }, buffer);
        Assert.Equal(1, logger.Informations);

        // Failures again after the log interval: one more warning.
        time.Advance(I2cSensorSource.FailureLogInterval);
        chip.FailingTransfers = 1;
        await ReadAdvancingAsync(source, time, buffer);
        Assert.True(float.IsNaN(buffer[0]));
        Assert.Equal(6, source.ReadFailures);
        Assert.Equal(2, logger.Warnings);
        Assert.Equal(8, source.SamplesRead);
    }

    [Fact]
    public async Task A_chip_that_stops_answering_is_a_glitch_at_first_then_unavailable_until_it_answers_again()
    {
        // 10 Hz, lost after 0.5 s: five failed samples in a row.
        var time = new FakeTimeProvider(Start);
        var options = Options(I2cSensorChip.Adxl345, rateHz: 10) with { DeviceLostAfter = TimeSpan.FromSeconds(0.5) };
        var chips = new List<SimulatedI2cChip>();
        var unplugged = false;
        await using var source = new ReopeningSensorSource(
            "ADXL345",
            () =>
            {
                var chip = SimulatedChips.Adxl345(256, 0, -256);
                chip.Absent = unplugged;
                chips.Add(chip);
                return new I2cSensorSource(chip, options, time, NullLogger.Instance);
            },
            ["ax", "ay", "az"],
            10,
            time,
            NullLogger.Instance);
        var states = new List<(SourceHealth State, string Reason)>();
        source.StateChanged += (_, e) => states.Add((e.State, e.Reason));
        // Opened, but nothing read yet: not "streaming".
        Assert.Equal(SourceHealth.Opening, source.State);
        var buffer = new float[3];

        Assert.Equal(1, (await ReadDrivingAsync(source, time, buffer)).Samples);
        Assert.Equal(new[] { 1f, 0f, -1f }, buffer);
        Assert.Equal(SourceHealth.Streaming, source.State);

        // A glitch of two reads: NaN samples, still streaming, then good values again.
        chips[0].FailingTransfers = 2;
        for (var i = 0; i < 2; i++)
        {
            await ReadDrivingAsync(source, time, buffer);
            Assert.All(buffer, v => Assert.True(float.IsNaN(v)));
            Assert.Equal(SourceHealth.Streaming, source.State);
        }

        await ReadDrivingAsync(source, time, buffer);
        Assert.Equal(new[] { 1f, 0f, -1f }, buffer);

        // Unplugged: four NaN samples are still a glitch, the fifth failed read in a row is a lost chip.
        chips[0].Absent = true;
        unplugged = true;
        for (var i = 0; i < 4; i++)
        {
            await ReadDrivingAsync(source, time, buffer);
            Assert.All(buffer, v => Assert.True(float.IsNaN(v)));
            Assert.Equal(SourceHealth.Streaming, source.State);
        }

        var pending = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        await Eventually.TrueAdvancing(time, TimeSpan.FromMilliseconds(100), () => source.State == SourceHealth.Unavailable, "the lost chip");
        Assert.Contains("stopped answering (5 reads in a row failed)", source.Reason, StringComparison.Ordinal);
        Assert.Contains("No such device or address", source.Reason, StringComparison.Ordinal);
        Assert.True(chips[0].IsDisposed);

        // Reopening fails while it is gone, and no sample flows.
        await Eventually.TrueAdvancing(time, TimeSpan.FromMilliseconds(100), () => chips.Count >= 3, "two failed reopenings");
        Assert.False(pending.IsCompleted);
        Assert.Equal(SourceHealth.Unavailable, source.State);
        Assert.DoesNotContain("stopped answering", source.Reason, StringComparison.Ordinal);
        Assert.Contains("I2C bus 1 at address 0x53", source.Reason, StringComparison.Ordinal);

        // Plugged back in: streaming again with the chip's values; sample indices continue.
        unplugged = false;
        await Eventually.TrueAdvancing(time, TimeSpan.FromMilliseconds(100), () => pending.IsCompleted, "the chip to answer again");
        var block = await pending;
        Assert.Equal(1, block.Samples);
        Assert.Equal(8, block.FirstSampleIndex);
        Assert.Equal(new[] { 1f, 0f, -1f }, buffer);
        Assert.Equal(SourceHealth.Streaming, source.State);
        Assert.Equal(1, source.Reopens);
        Assert.Equal(SourceHealth.Streaming, states[0].State);
        Assert.Equal(SourceHealth.Unavailable, states[1].State);
        Assert.Contains("stopped answering", states[1].Reason, StringComparison.Ordinal);
        Assert.Equal((SourceHealth.Streaming, "reading"), states[^1]);
        Assert.All(states.Skip(1).SkipLast(1), s => Assert.Equal(SourceHealth.Unavailable, s.State));
    }

    [Fact]
    public async Task An_infinite_DeviceLostAfter_keeps_every_failed_read_a_NaN_sample()
    {
        var chip = SimulatedChips.Adxl345(256, 0, -256);
        var time = new FakeTimeProvider(Start);
        await using var source = new I2cSensorSource(chip, Options(I2cSensorChip.Adxl345, rateHz: 10) with { DeviceLostAfter = Timeout.InfiniteTimeSpan }, time, NullLogger.Instance);
        var buffer = new float[3 * 50];
        chip.Absent = true;

        await ReadAdvancingAsync(source, time, buffer);

        Assert.All(buffer, v => Assert.True(float.IsNaN(v)));
        Assert.Equal(50, source.ReadFailures);
    }

    [Fact]
    public async Task Reads_are_paced_one_sample_per_period_of_the_time_provider_with_block_timestamps()
    {
        var chip = SimulatedChips.Adxl345(0, 0, 256);
        var time = new FakeTimeProvider(Start);
        await using var source = new I2cSensorSource(chip, Options(I2cSensorChip.Adxl345, rateHz: 100), time, NullLogger.Instance);
        var buffer = new float[3 * 3];
        var period = TimeSpan.FromMilliseconds(10);

        var read = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        Assert.False(read.IsCompleted);
        Assert.Equal(0, source.SamplesRead); // nothing before the first period has passed

        for (var sample = 1; sample <= 3; sample++)
        {
            time.Advance(period);
            await Eventually.True(() => source.SamplesRead == sample, $"sample {sample}");
            if (sample < 3)
            {
                // No time passes: the next sample is not taken early.
                Assert.False(read.IsCompleted);
            }
        }

        var block = await read;
        Assert.Equal(3, block.Samples);
        Assert.Equal(0, block.FirstSampleIndex);
        Assert.Equal(Start + period, block.FirstSampleTime);

        var next = source.ReadAsync(buffer.AsMemory(0, 3), TestContext.Current.CancellationToken).AsTask();
        time.Advance(period);
        var second = await next;
        Assert.Equal(3, second.FirstSampleIndex);
        Assert.Equal(Start + (4 * period), second.FirstSampleTime);
    }

    [Theory]
    [InlineData(I2cSensorChip.Adxl345)]
    [InlineData(I2cSensorChip.Mpu6050)]
    [InlineData(I2cSensorChip.Bme280)]
    public void Reading_a_sample_allocates_nothing(I2cSensorChip chipKind)
    {
        var chip = chipKind switch
        {
            I2cSensorChip.Adxl345 => SimulatedChips.Adxl345(1, 2, 3),
            I2cSensorChip.Mpu6050 => SimulatedChips.Mpu6050(1, 2, 3),
            _ => SimulatedChips.Bme280(519888, 415148, 30000),
        };
        using var reader = I2cChipReader.Open(chip, Options(chipKind), "test");
        var sample = new float[3];

        AllocationAssert.SteadyStateIsZero(() => reader.Read(sample));
        Assert.DoesNotContain(float.NaN, sample);
    }

    [Fact]
    public async Task Disposing_the_source_disposes_the_device()
    {
        var chip = SimulatedChips.Mpu6050(0, 0, 16384);
        var source = new I2cSensorSource(chip, Options(I2cSensorChip.Mpu6050), TimeProvider.System, NullLogger.Instance);

        await source.DisposeAsync();

        Assert.True(chip.IsDisposed);
    }

    /// <summary>Reads one block through the wrapper, advancing fake time one period at a time until it completes.</summary>
    private static async Task<SensorBlock> ReadDrivingAsync(ReopeningSensorSource source, FakeTimeProvider time, float[] buffer)
    {
        var read = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        await Eventually.TrueAdvancing(time, TimeSpan.FromSeconds(1 / source.SampleRateHz), () => read.IsCompleted, "the read");
        return await read;
    }

    /// <summary>Reads one block of the buffer's size, advancing fake time one period per sample until it completes.</summary>
    private static async Task<SensorBlock> ReadAdvancingAsync(I2cSensorSource source, FakeTimeProvider time, float[] buffer)
    {
        var before = source.SamplesRead;
        var samples = buffer.Length / source.Channels.Count;
        var read = source.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        for (var i = 1; i <= samples; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1 / source.SampleRateHz));
            var expected = before + i;
            await Eventually.True(() => source.SamplesRead >= expected, "the paced read");
        }

        return await read;
    }

    private sealed class CountingLogger : ILogger
    {
        public int Warnings { get; private set; }

        public int Informations { get; private set; }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel == LogLevel.Warning)
            {
                Warnings++;
            }
            else if (logLevel == LogLevel.Information)
            {
                Informations++;
            }
        }
    }
}
