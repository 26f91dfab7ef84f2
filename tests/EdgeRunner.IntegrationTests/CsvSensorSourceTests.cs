using EdgeRunner.Hardware.Sensors;
using EdgeRunner.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.IntegrationTests;

/// <summary>CSV/TSV replay of real recorded sensor data.</summary>
public sealed class CsvSensorSourceTests
{
    [Fact]
    public async Task ST_fan_recording_replays_every_sample_of_the_selected_axes()
    {
        var ct = TestContext.Current.CancellationToken;
        var path = TestPaths.SharedFile("data/st-fan-vibration/fan_onf.txt");
        await using var source = new CsvSensorSource(
            new CsvSourceOptions { Path = path, Columns = ["A_X", "A_Y", "A_Z"], SampleRateHz = 104, Speed = 0 },
            TimeProvider.System,
            NullLogger.Instance);

        Assert.Equal(["A_X [g]", "A_Y [g]", "A_Z [g]"], source.Channels);
        var block = new float[3 * 100];
        var first = await source.ReadAsync(block, ct);
        Assert.Equal(100, first.Samples);
        Assert.Equal(-0.016836f, block[0], 6);
        Assert.Equal(-0.030317f, block[1], 6);
        Assert.Equal(1.01687f, block[2], 5);

        long total = first.Samples;
        SensorBlock next;
        while ((next = await source.ReadAsync(block, ct)).Samples > 0)
        {
            total += next.Samples;
        }

        // The file: a 4-line preamble and header, then one sample per line.
        var dataLines = File.ReadLines(path).Skip(4).Count(l => !string.IsNullOrWhiteSpace(l));
        Assert.Equal(dataLines, total);
        Assert.Equal(0, source.MalformedLines);
    }

    [Fact]
    public async Task Malformed_lines_are_skipped_and_counted_and_NaN_passes_through()
    {
        var ct = TestContext.Current.CancellationToken;
        var path = Path.Combine(Path.GetTempPath(), $"edgerunner-{Guid.NewGuid():N}.csv");
        await File.WriteAllLinesAsync(path, ["t,x,y", "0.0,1,2", "0.1,oops,3", "0.2,NaN,4", "garbage", "0.3,5"], ct);
        try
        {
            await using var source = new CsvSensorSource(new CsvSourceOptions { Path = path, Columns = ["x", "y"], TimestampColumn = "t", Speed = 0 }, TimeProvider.System, NullLogger.Instance);
            var block = new float[20];

            var read = await source.ReadAsync(block, ct);

            Assert.Equal(2, read.Samples);
            Assert.Equal([1f, 2f], block[..2]);
            Assert.True(float.IsNaN(block[2]));
            Assert.Equal(3, source.MalformedLines);
            Assert.Equal(10, source.SampleRateHz, 6);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Rfc_4180_quoted_headers_and_fields_are_read_and_bad_rows_still_counted()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "quoted.csv");
        // As spreadsheets and pandas write it: every header quoted, a quoted comment holding the separator,
        // a doubled quote, a quoted number, a line break inside quotes, and two bad rows.
        await File.WriteAllTextAsync(
            path,
            "\"t\",\"A_X [g]\",\"note\",\"A_Y [g]\"\r\n"
            + "0.00,0.5,\"idle, \"\"warm\"\"\",1.5\r\n"
            + "0.01,\"0.25\",\"two\nlines\",2.5\r\n"
            + "0.02,oops,x,3.5\r\n"
            + "0.03,0.75\r\n"
            + "0.04,1.0,,4.5\r\n",
            ct);
        await using var source = new CsvSensorSource(
            new CsvSourceOptions { Path = path, Columns = ["A_X", "A_Y"], TimestampColumn = "t", Speed = 0 },
            TimeProvider.System,
            NullLogger.Instance);
        var block = new float[20];

        var read = await source.ReadAsync(block, ct);

        Assert.Equal(["A_X [g]", "A_Y [g]"], source.Channels);
        Assert.Equal(3, read.Samples);
        Assert.Equal([0.5f, 1.5f, 0.25f, 2.5f, 1.0f, 4.5f], block[..6]);
        Assert.Equal(2, source.MalformedLines);
        Assert.Equal(100, source.SampleRateHz, 6);
    }

    [Fact]
    public async Task Space_aligned_columns_count_a_run_of_spaces_as_one_separator()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "aligned.txt");
        await File.WriteAllLinesAsync(path, ["time    x      y", "0.0     1.0    -2.0", "0.5    11.0   -12.0"], ct);
        await using var source = new CsvSensorSource(
            new CsvSourceOptions { Path = path, Columns = ["y", "x"], TimestampColumn = "time", Speed = 0 },
            TimeProvider.System,
            NullLogger.Instance);
        var block = new float[8];

        var read = await source.ReadAsync(block, ct);

        Assert.Equal(2, read.Samples);
        Assert.Equal([-2f, 1f, -12f, 11f], block[..4]);
        Assert.Equal(0, source.MalformedLines);
        Assert.Equal(2, source.SampleRateHz, 6);
    }

    [Fact]
    public async Task Replay_is_paced_by_the_recorded_timestamps_and_speed()
    {
        var ct = TestContext.Current.CancellationToken;
        var path = TestPaths.SharedFile("data/nab/realKnownCause/machine_temperature_system_failure.csv");
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        // 5-minute samples replayed 3000× faster: 10 samples span 45 min of recording = 0.9 s.
        await using var source = new CsvSensorSource(new CsvSourceOptions { Path = path, Columns = ["value"], TimestampColumn = "timestamp", Speed = 3000 }, time, NullLogger.Instance);
        Assert.Equal(1 / 300.0, source.SampleRateHz, 9);
        var block = new float[10];

        // Drive the fake clock 10 ms at a time (with a real pause for the file read) until the block is
        // delivered: it must not come before 0.9 s of (fake) time has passed since the read began.
        var pending = source.ReadAsync(block, ct).AsTask();
        var fakeMilliseconds = 0;
        var realDeadline = DateTime.UtcNow.AddSeconds(60);
        while (!pending.IsCompleted && DateTime.UtcNow < realDeadline)
        {
            await Task.Delay(2, ct);
            time.Advance(TimeSpan.FromMilliseconds(10));
            fakeMilliseconds += 10;
        }

        Assert.True(pending.IsCompleted, "the replay never delivered its first block");
        var read = await pending;
        Assert.True(fakeMilliseconds >= 900, $"delivered after {fakeMilliseconds} ms of replay time; 900 ms expected");
        Assert.Equal(10, read.Samples);
        Assert.Equal(73.96732207f, block[0], 4);
    }

    [Fact]
    public void A_missing_column_is_named_with_the_columns_there_are()
    {
        var path = TestPaths.SharedFile("data/st-fan-vibration/fan_off.txt");
        var ex = Assert.Throws<SensorSourceException>(() => new CsvSensorSource(new CsvSourceOptions { Path = path, Columns = ["A_W"], SampleRateHz = 104 }, TimeProvider.System, NullLogger.Instance));

        Assert.Contains("no column 'A_W'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("A_X [g]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_looped_recording_starts_again_with_indices_and_times_going_on()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "three.csv");
        await File.WriteAllLinesAsync(path, ["v", "1", "2", "3"], ct);
        await using var source = new CsvSensorSource(
            new CsvSourceOptions { Path = path, Columns = ["v"], SampleRateHz = 10, Speed = 0, Loop = true },
            TimeProvider.System,
            NullLogger.Instance);

        var values = new List<float>();
        var blocks = new List<SensorBlock>();
        var block = new float[2];
        while (values.Count < 8)
        {
            var read = await source.ReadAsync(block, ct);
            Assert.True(read.Samples > 0, "a looped replay never ends");
            blocks.Add(read);
            values.AddRange(block.Take(read.Samples));
        }

        Assert.Equal([1f, 2, 3, 1, 2, 3, 1, 2], values.Take(8));
        // Sample indices and times keep counting across the loop: 10 Hz, so 0.1 s per sample.
        for (var b = 1; b < blocks.Count; b++)
        {
            Assert.Equal(blocks[b - 1].FirstSampleIndex + blocks[b - 1].Samples, blocks[b].FirstSampleIndex);
            Assert.Equal(blocks[b - 1].Samples * 0.1, (blocks[b].FirstSampleTime - blocks[b - 1].FirstSampleTime).TotalSeconds, 6);
        }
    }
}
