using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Hardware.Supervision;
using EdgeRunner.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The serial line source against a real pseudo-terminal: the test plays the device on the master
/// side, the source opens the slave path with System.IO.Ports exactly as it opens /dev/ttyUSB0.
/// </summary>
public sealed class SerialSensorSourceTests
{
    [Fact]
    public async Task Delimited_lines_are_read_in_column_order_and_malformed_lines_counted()
    {
        var ct = TestContext.Current.CancellationToken;
        using var device = PseudoTerminal.Open();
        await using var source = new SerialSensorSource(
            new SerialSourceOptions { Port = device.SlavePath, BaudRate = 115200, Columns = ["2", "0"], SampleRateHz = 100 },
            TimeProvider.System,
            NullLogger.Instance);
        Assert.Equal(["2", "0"], source.Channels);
        var block = new float[4 * 2];

        var pending = source.ReadAsync(block, ct).AsTask();
        await WaitUntilAsync(() => source.Connections == 1 || pending.IsCompleted, ct);
        // The first line after opening may be cut, so it is dropped uncounted; then every separator.
        device.Write("23.4,garbage\n1.5,2.5,3.5\r\n4 5  6\noops,1\n7;8;9\nx,y,z\n\n10\t11\t-1.25e2\n");
        var read = await pending;

        Assert.Equal(4, read.Samples);
        Assert.Equal(0, read.FirstSampleIndex);
        Assert.Equal([3.5f, 1.5f, 6f, 4f, 9f, 7f, -125f, 10f], block);
        Assert.Equal(2, source.MalformedLines);
    }

    [Fact]
    public async Task Json_lines_give_named_fields_and_device_timestamps_give_the_sample_times()
    {
        var ct = TestContext.Current.CancellationToken;
        var now = DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var time = new FakeTimeProvider(now);
        using var device = PseudoTerminal.Open();
        await using var source = new SerialSensorSource(
            new SerialSourceOptions { Port = device.SlavePath, Columns = ["ax", "ay"], TimestampField = "t", SampleRateHz = 2 },
            time,
            NullLogger.Instance);
        var block = new float[3 * 2];

        var pending = source.ReadAsync(block, ct).AsTask();
        await WaitUntilAsync(() => source.Connections == 1 || pending.IsCompleted, ct);
        device.Write(
            "{\"t\":0}\n"
            + "{\"t\":10.0,\"ay\":2,\"ax\":1,\"extra\":{\"n\":[1,2]}}\n"
            + "{\"t\":10.5,\"ax\":3,\"ay\":null}\n"
            + "{\"t\":10.75,\"ax\":5}\n"
            + "{\"t\":10.8,\"ax\":\"bad\",\"ay\":1}\n"
            + "{\"t\":10.9,\"ax\":1,\n"
            + "{\"ax\":1,\"ay\":1}\n"
            + "{\"t\":11.0,\"ax\":7,\"ay\":-8.5}\n");
        var read = await pending;

        Assert.Equal(3, read.Samples);
        Assert.Equal(1f, block[0]);
        Assert.Equal(2f, block[1]);
        Assert.Equal(3f, block[2]);
        Assert.True(float.IsNaN(block[3]));
        Assert.Equal([7f, -8.5f], block[4..]);
        Assert.Equal(4, source.MalformedLines);
        // The device clock is tied to the arrival of its first sample (the fake clock's "now").
        Assert.Equal(now, read.FirstSampleTime);

        device.Write("{\"t\":12.5,\"ax\":0,\"ay\":0}\n{\"t\":13,\"ax\":0,\"ay\":0}\n{\"t\":13.5,\"ax\":0,\"ay\":0}\n");
        read = await source.ReadAsync(block, ct);
        Assert.Equal(3, read.FirstSampleIndex);
        Assert.Equal(now + TimeSpan.FromSeconds(2.5), read.FirstSampleTime);
    }

    [Fact]
    public async Task Named_columns_are_found_in_the_header_line_the_device_prints()
    {
        var ct = TestContext.Current.CancellationToken;
        using var device = PseudoTerminal.Open();
        await using var source = new SerialSensorSource(
            new SerialSourceOptions { Port = device.SlavePath, Columns = ["A_Z", "A_X"], SampleRateHz = 104 },
            TimeProvider.System,
            NullLogger.Instance);
        var block = new float[2 * 2];

        var pending = source.ReadAsync(block, ct).AsTask();
        await WaitUntilAsync(() => source.Connections == 1 || pending.IsCompleted, ct);
        // A line before the header cannot be placed: counted. The header itself is not malformed.
        device.Write("boot\n0.1,0.2,0.3\nA_X,A_Y,A_Z\n1,2,3\n4,5,6\n");
        var read = await pending;

        Assert.Equal(2, read.Samples);
        Assert.Equal([3f, 1f, 6f, 4f], block);
        Assert.Equal(1, source.MalformedLines);
    }

    [Fact]
    public async Task A_port_that_goes_away_is_reopened_and_the_stream_goes_on()
    {
        var ct = TestContext.Current.CancellationToken;
        var folder = Directory.CreateTempSubdirectory("edgerunner-serial-");
        // A stable name (as /dev/serial/by-id/... is) that the test points at a new pseudo-terminal.
        var port = Path.Combine(folder.FullName, "ttyDEVICE");
        try
        {
            var first = PseudoTerminal.Open();
            File.CreateSymbolicLink(port, first.SlavePath);
            await using var source = new SerialSensorSource(
                new SerialSourceOptions
                {
                    Port = port,
                    Columns = ["0"],
                    SampleRateHz = 10,
                    ReconnectMinDelay = TimeSpan.FromMilliseconds(20),
                    ReconnectMaxDelay = TimeSpan.FromMilliseconds(200),
                },
                TimeProvider.System,
                NullLogger.Instance);
            var block = new float[2];

            var pending = source.ReadAsync(block, ct).AsTask();
            await WaitUntilAsync(() => source.Connections == 1 || pending.IsCompleted, ct);
            first.Write("skip\n1\n2\n");
            Assert.Equal(2, (await pending).Samples);
            Assert.Equal([1f, 2f], block);

            // Unplug: the device and its name vanish while the source waits for data.
            pending = source.ReadAsync(block, ct).AsTask();
            File.Delete(port);
            first.Dispose();
            await WaitUntilAsync(() => source.Disconnects == 1, ct);
            Assert.False(pending.IsCompleted);

            // Plug back in: a new terminal behind the same name.
            using var second = PseudoTerminal.Open();
            File.CreateSymbolicLink(port, second.SlavePath);
            await WaitUntilAsync(() => source.Connections == 2 || pending.IsCompleted, ct);
            second.Write("skip\n3\n4\n");
            var read = await pending;

            Assert.Equal(2, read.Samples);
            Assert.Equal(2, read.FirstSampleIndex);
            Assert.Equal([3f, 4f], block);
            Assert.Equal(1, source.Disconnects);
            Assert.Equal(2, source.Connections);
            Assert.Equal(0, source.MalformedLines);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_port_unplugged_while_streaming_turns_the_wrapper_unavailable_until_samples_flow_again()
    {
        var ct = TestContext.Current.CancellationToken;
        var folder = Directory.CreateTempSubdirectory("edgerunner-serial-");
        var port = Path.Combine(folder.FullName, "ttyDEVICE");
        try
        {
            var first = PseudoTerminal.Open();
            File.CreateSymbolicLink(port, first.SlavePath);
            var opened = new List<SerialSensorSource>();
            await using var source = new ReopeningSensorSource(
                $"serial port {port}",
                () =>
                {
                    opened.Add(new SerialSensorSource(
                        new SerialSourceOptions
                        {
                            Port = port,
                            Columns = ["0"],
                            SampleRateHz = 10,
                            ReconnectMinDelay = TimeSpan.FromMilliseconds(20),
                            ReconnectMaxDelay = TimeSpan.FromMilliseconds(200),
                        },
                        TimeProvider.System,
                        NullLogger.Instance));
                    return opened[^1];
                },
                ["0"],
                10,
                TimeProvider.System,
                NullLogger.Instance);
            var states = new System.Collections.Concurrent.ConcurrentQueue<(SourceHealth State, string Reason)>();
            source.StateChanged += (_, e) => states.Enqueue((e.State, e.Reason));
            Assert.Equal(SourceHealth.Opening, source.State);
            var block = new float[2];

            var pending = source.ReadAsync(block, ct).AsTask();
            await WaitUntilAsync(() => opened[0].Connections == 1 || pending.IsCompleted, ct);
            first.Write("skip\n1\n2\n");
            Assert.Equal(2, (await pending).Samples);
            Assert.Equal(SourceHealth.Streaming, source.State);

            // Unplugged: the source waits to reopen the port, and the wrapper says why.
            pending = source.ReadAsync(block, ct).AsTask();
            File.Delete(port);
            first.Dispose();
            await WaitUntilAsync(() => source.State == SourceHealth.Unavailable, ct);
            Assert.Contains($"Serial port '{port}' went away", source.Reason, StringComparison.Ordinal);
            Assert.False(pending.IsCompleted);

            // Plugged back in (a new terminal behind the same name): streaming again once samples arrive.
            using var second = PseudoTerminal.Open();
            File.CreateSymbolicLink(port, second.SlavePath);
            await WaitUntilAsync(() => opened[0].Connections == 2 || pending.IsCompleted, ct);
            Assert.Equal(SourceHealth.Unavailable, source.State);
            second.Write("skip\n3\n4\n");
            var read = await pending;

            Assert.Equal(2, read.Samples);
            Assert.Equal(2, read.FirstSampleIndex);
            Assert.Equal([3f, 4f], block);
            Assert.Equal(SourceHealth.Streaming, source.State);
            Assert.Equal([SourceHealth.Streaming, SourceHealth.Unavailable, SourceHealth.Streaming], states.Select(s => s.State));
            // The source reconnected by itself: the wrapper neither closed nor reopened it.
            Assert.Single(opened);
            Assert.Equal(0, source.Reopens);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Cancelling_a_read_that_waits_for_a_silent_device_ends_it()
    {
        var ct = TestContext.Current.CancellationToken;
        using var device = PseudoTerminal.Open();
        await using var source = new SerialSensorSource(
            new SerialSourceOptions { Port = device.SlavePath, Columns = ["0"], SampleRateHz = 10 }, TimeProvider.System, NullLogger.Instance);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);

        var pending = source.ReadAsync(new float[4], stop.Token).AsTask();
        await WaitUntilAsync(() => source.Connections == 1 || pending.IsCompleted, ct);
        await stop.CancelAsync();

        // The daemon stops its streams by cancelling their reads: a read must not outlive its token.
        // (The 30 s bound only turns a hang into a failure.)
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.WaitAsync(TimeSpan.FromSeconds(30), ct));
    }

    [Fact]
    public void A_missing_port_is_a_clear_error_naming_it()
    {
        var ex = Assert.Throws<SensorSourceException>(() => new SerialSensorSource(
            new SerialSourceOptions { Port = "/dev/ttyEDGERUNNER-missing", Columns = ["0"], SampleRateHz = 10 }, TimeProvider.System, NullLogger.Instance));

        Assert.Contains("'/dev/ttyEDGERUNNER-missing' does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_path_that_is_not_a_serial_port_is_a_clear_error_on_first_open()
    {
        var ct = TestContext.Current.CancellationToken;
        var path = Path.Combine(Path.GetTempPath(), $"edgerunner-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(path, "1\n2\n", ct);
        try
        {
            await using var source = new SerialSensorSource(
                new SerialSourceOptions { Port = path, Columns = ["0"], SampleRateHz = 10 }, TimeProvider.System, NullLogger.Instance);

            var ex = await Assert.ThrowsAsync<SensorSourceException>(async () => await source.ReadAsync(new float[4], ct));

            Assert.Contains($"Serial port '{path}' cannot be opened", ex.Message, StringComparison.Ordinal);
            Assert.Equal(0, source.Connections);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Waits (polling) for a condition the source reaches on its own; the test's token bounds it.</summary>
    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        while (!condition())
        {
            await Task.Delay(10, timeout.Token);
        }
    }
}
