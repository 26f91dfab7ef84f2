using System.Globalization;
using Microsoft.Extensions.Logging;
using nietras.SeparatedValues;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>How a <see cref="CsvSensorSource"/> reads its file.</summary>
public sealed record CsvSourceOptions
{
    /// <summary>The CSV/TSV file.</summary>
    public required string Path { get; init; }

    /// <summary>
    /// Columns to read, in order: header names (a name matches a header that equals it or starts with it
    /// followed by a space, so "A_X" matches "A_X [g]") or zero-based indices ("0", "1", …).
    /// </summary>
    public required IReadOnlyList<string> Columns { get; init; }

    /// <summary>Column holding each sample's time (seconds as a number, or an ISO 8601 date-time); empty for a fixed rate.</summary>
    public string TimestampColumn { get; init; } = string.Empty;

    /// <summary>Samples per second when there is no timestamp column.</summary>
    public double SampleRateHz { get; init; }

    /// <summary>Replay speed: 1 = real time, 10 = ten times faster, 0 = as fast as read.</summary>
    public double Speed { get; init; } = 1;

    /// <summary>Start again after the last line.</summary>
    public bool Loop { get; init; }

    /// <summary>
    /// With a timestamp column: stamp samples with the recording's own time (true, the default), so results
    /// can be matched with the recording's labels; false stamps them with the replay's clock (now, paced). A
    /// loop goes on past the recording's last time by the recording's length. No effect without a timestamp column.
    /// </summary>
    public bool RecordingTime { get; init; } = true;
}

/// <summary>A source whose sample times may be a recording's own rather than the time the samples were taken here (a replay).</summary>
public interface IRecordedTimeSource
{
    /// <summary>Whether the block times this source returns are the recording's own (<see cref="SensorBlock.FirstSampleTime"/>), not the replay's clock.</summary>
    bool StampsRecordingTime { get; }
}

/// <summary>
/// Replays a recorded sensor stream from a CSV or TSV file (comma, semicolon, tab or spaces; a
/// preamble before the header is skipped), at its recorded pace or faster. A line that cannot be
/// parsed is skipped, counted and logged (rate-limited), and the replay goes on. Values that parse
/// as NaN are passed through for the stream's own NaN policy to handle.
/// </summary>
/// <remarks>
/// Rows are read by Sep (RFC 4180: quoted headers and fields such as <c>"t","A_X [g]"</c>, separators and
/// line breaks inside quotes, doubled quotes), trimmed, without allocating per row. An empty field between
/// two separators is a field; with spaces as the separator a run of spaces is one (aligned columns).
/// Values and timestamps are read as <see cref="SampleLineParser"/> reads them for serial and MQTT.
/// </remarks>
public sealed partial class CsvSensorSource : IResumableSensorSource, IRecordedTimeSource
{
    private readonly CsvSourceOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly string[] _channels;
    private readonly int[] _columnIndexes;
    private readonly int _timestampIndex;
    private readonly char _separator;
    private readonly int _headerLine;
    private StreamReader? _file;
    private SepReader? _reader;
    private int _lineNumber;
    private long _sampleIndex;
    private long _sampleIndexWithinPass;
    private double _firstSampleSeconds = double.NaN;
    private double _fileFirstSeconds = double.NaN;
    private long _replayStartTimestamp;
    private double _loopOffsetSeconds;
    private double _lastSampleSeconds;
    private DateTimeOffset _startTime;

    // The recording's own time in exact ticks since 1970 (doubles of seconds since 1970 lose ticks), for RecordingTime.
    private long _rowTicks;
    private long _fileFirstTicks = long.MinValue;
    private long _loopOffsetTicks;
    private long _lastRecordingTicks;

    /// <summary>Opens the file and locates the header and columns. Throws <see cref="SensorSourceException"/> naming the file and the problem.</summary>
    public CsvSensorSource(CsvSourceOptions options, TimeProvider timeProvider, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
        if (!File.Exists(options.Path))
        {
            throw new SensorSourceException($"CSV file '{options.Path}' does not exist.");
        }

        if (options.Columns.Count == 0)
        {
            throw new SensorSourceException($"CSV file '{options.Path}': no columns selected.");
        }

        if (string.IsNullOrEmpty(options.TimestampColumn) && !(options.SampleRateHz > 0))
        {
            throw new SensorSourceException($"CSV file '{options.Path}': give a timestamp column or a sample rate.");
        }

        (_headerLine, var header, _separator) = FindHeader(options);
        _columnIndexes = [.. options.Columns.Select(c => ResolveColumn(options, header, c))];
        _timestampIndex = string.IsNullOrEmpty(options.TimestampColumn) ? -1 : ResolveColumn(options, header, options.TimestampColumn);
        _channels = [.. _columnIndexes.Select(i => header.Length > i ? header[i] : i.ToString(CultureInfo.InvariantCulture))];
        SampleRateHz = options.SampleRateHz > 0 ? options.SampleRateHz : EstimateRate();
        Description = $"CSV replay {options.Path} ({string.Join(", ", _channels)}) at {SampleRateHz:0.###} Hz × {options.Speed}{(options.Loop ? ", loop" : string.Empty)}";
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Channels => _channels;

    /// <inheritdoc />
    public double SampleRateHz { get; }

    /// <inheritdoc />
    public bool StampsRecordingTime => _timestampIndex >= 0 && _options.RecordingTime;

    /// <summary>Lines skipped because they could not be parsed.</summary>
    public long MalformedLines { get; private set; }

    /// <inheritdoc />
    public async ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        if (_replayStartTimestamp == 0)
        {
            // The replay clock starts when the stream is first read, before any file I/O.
            _replayStartTimestamp = _timeProvider.GetTimestamp();
            _startTime = _timeProvider.GetUtcNow();
        }

        var firstIndex = _sampleIndex;
        var (written, firstSeconds, firstTicks) = await ReadSamplesAsync(destination, cancellationToken).ConfigureAwait(false);
        if (written > 0 && _options.Speed > 0)
        {
            // Deliver the block when its last sample would have been taken, at the replay speed.
            var due = (_lastSampleSeconds - _firstSampleSeconds) / _options.Speed;
            var elapsed = _timeProvider.GetElapsedTime(_replayStartTimestamp).TotalSeconds;
            if (due > elapsed)
            {
                await Task.Delay(TimeSpan.FromSeconds(due - elapsed), _timeProvider, cancellationToken).ConfigureAwait(false);
            }
        }

        // The recording's own time (its timestamp column, seconds since 1970 or a date-time), else the replay's clock.
        var firstTime = StampsRecordingTime
            ? DateTimeOffset.UnixEpoch + TimeSpan.FromTicks(firstTicks)
            : _startTime + TimeSpan.FromSeconds(firstSeconds - (double.IsNaN(_firstSampleSeconds) ? 0 : _firstSampleSeconds));
        return new SensorBlock(written, firstTime, firstIndex);
    }

    private async ValueTask<(int Written, double FirstSeconds, long FirstTicks)> ReadSamplesAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        var channels = _channels.Length;
        var capacity = destination.Length / channels;
        var written = 0;
        double firstSeconds = 0;
        long firstTicks = 0;
        while (written < capacity)
        {
            if (!await NextRowAsync(cancellationToken).ConfigureAwait(false))
            {
                break;
            }

            if (!TryParse(_reader!.Current, destination.Span.Slice(written * channels, channels), out var seconds))
            {
                MalformedLines++;
                if (MalformedLines <= 10 || MalformedLines % 1000 == 0)
                {
                    LogMalformed(_logger, _options.Path, _lineNumber, MalformedLines);
                }

                continue;
            }

            if (double.IsNaN(_fileFirstSeconds))
            {
                _fileFirstSeconds = seconds;
                _fileFirstTicks = _rowTicks;
            }

            seconds += _loopOffsetSeconds;
            _lastRecordingTicks = _rowTicks + _loopOffsetTicks;
            if (double.IsNaN(_firstSampleSeconds))
            {
                // First sample since the replay clock (re)started: pacing and block times count from it.
                _firstSampleSeconds = seconds;
            }

            _lastSampleSeconds = seconds;
            if (written == 0)
            {
                firstSeconds = seconds;
                firstTicks = _lastRecordingTicks;
            }

            written++;
            _sampleIndex++;
        }

        return (written, firstSeconds, firstTicks);
    }

    /// <inheritdoc />
    public async ValueTask SeekAsync(long sampleIndex, CancellationToken cancellationToken)
    {
        // Read and drop samples until the position is reached; the replay clock restarts at the next read.
        var scratch = new float[_channels.Length * 256];
        while (_sampleIndex < sampleIndex)
        {
            var want = (int)Math.Min(256, sampleIndex - _sampleIndex);
            var (read, _, _) = await ReadSamplesAsync(scratch.AsMemory(0, want * _channels.Length), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }
        }

        _replayStartTimestamp = 0;
        _firstSampleSeconds = double.NaN;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        CloseFile();
        return ValueTask.CompletedTask;
    }

    private void CloseFile()
    {
        _reader?.Dispose();
        _reader = null;
        _file?.Dispose();
        _file = null;
    }

    /// <summary>A Sep reader over the file after its header line (preamble and header are not CSV rows of this stream).</summary>
    private (StreamReader File, SepReader Reader) OpenRows()
    {
        var file = new StreamReader(_options.Path);
        try
        {
            for (var i = 0; i <= _headerLine; i++)
            {
                file.ReadLine();
            }

            var reader = RowOptions(_separator).From(file);
            return (file, reader);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static SepReaderOptions RowOptions(char separator) => new(new Sep(separator))
    {
        HasHeader = false,
        Unescape = true,
        Trim = SepTrim.All,
        // A short or long row is a malformed line of this stream, counted, not an error of the file.
        DisableColCountCheck = true,
    };

    /// <summary>Moves to the next non-empty row, starting the file again when looping; false at the end.</summary>
    private async ValueTask<bool> NextRowAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_reader is null)
            {
                (_file, _reader) = OpenRows();
            }

            if (await _reader.MoveNextAsync(cancellationToken).ConfigureAwait(false))
            {
                var row = _reader.Current;
                _lineNumber = _headerLine + 1 + row.LineNumberFrom;
                if (row.Span.Trim().IsEmpty)
                {
                    continue;
                }

                return true;
            }

            if (!_options.Loop || _sampleIndex == 0)
            {
                return false;
            }

            // Loop: time continues one sample period after the last sample.
            _loopOffsetSeconds = _lastSampleSeconds + (1.0 / SampleRateHz) - _fileFirstSeconds;
            _loopOffsetTicks = _lastRecordingTicks + (long)Math.Round(TimeSpan.TicksPerSecond / SampleRateHz) - _fileFirstTicks;
            _sampleIndexWithinPass = 0;
            CloseFile();
        }
    }

    /// <summary>The text of field <paramref name="index"/> (runs of spaces are one separator).</summary>
    private bool TryGetField(SepReader.Row row, int index, out ReadOnlySpan<char> text)
    {
        if (_separator != ' ')
        {
            text = index < row.ColCount ? row[index].Span : default;
            return index < row.ColCount;
        }

        var field = 0;
        for (var c = 0; c < row.ColCount; c++)
        {
            var span = row[c].Span;
            if (span.IsEmpty)
            {
                continue;
            }

            if (field++ == index)
            {
                text = span;
                return true;
            }
        }

        text = default;
        return false;
    }

    private bool TryParse(SepReader.Row row, Span<float> values, out double seconds)
    {
        seconds = 0;
        for (var c = 0; c < _columnIndexes.Length; c++)
        {
            if (!TryGetField(row, _columnIndexes[c], out var text) || !SampleLineParser.TryParseValue(text, out values[c]))
            {
                return false;
            }
        }

        if (_timestampIndex < 0)
        {
            seconds = _sampleIndexWithinPass / SampleRateHz;
            _sampleIndexWithinPass++;
            return true;
        }

        if (!TryGetField(row, _timestampIndex, out var time) || !SampleLineParser.TryParseTimestamp(time, out var ticks))
        {
            return false;
        }

        seconds = (double)ticks / TimeSpan.TicksPerSecond;
        _rowTicks = ticks;
        return true;
    }

    private double EstimateRate()
    {
        // Median spacing of the first timestamps.
        var (file, reader) = OpenRows();
        var times = new List<long>();
        try
        {
            while (times.Count < 200 && reader.MoveNext())
            {
                if (TryGetField(reader.Current, _timestampIndex, out var text) && SampleLineParser.TryParseTimestamp(text, out var ticks))
                {
                    // Ticks, not seconds: differences of seconds since 1970 as doubles are off in the last digits, and a rate of
                    // 99.9999999 Hz instead of 100 would make the stream resample for nothing.
                    times.Add(ticks);
                }
            }
        }
        finally
        {
            reader.Dispose();
            file.Dispose();
        }

        var gaps = times.Zip(times.Skip(1), (a, b) => b - a).Where(g => g > 0).Order().ToList();
        if (gaps.Count == 0)
        {
            throw new SensorSourceException($"CSV file '{_options.Path}': cannot estimate the sample rate from column '{_options.TimestampColumn}'; set it.");
        }

        return (double)TimeSpan.TicksPerSecond / gaps[gaps.Count / 2];
    }

    private static (int Line, string[] Header, char Separator) FindHeader(CsvSourceOptions options)
    {
        // The header is the last non-empty line before the first line with a number among its fields.
        using var reader = new StreamReader(options.Path);
        string? previous = null;
        var previousLine = -1;
        string? line;
        var number = -1;
        while ((line = reader.ReadLine()) is not null && number < 1000)
        {
            number++;
            if (line.AsSpan().Trim().IsEmpty)
            {
                continue;
            }

            var separator = Separator(line);
            var fields = Fields(line, separator);
            if (fields.Length > 0 && fields.Any(f => double.TryParse(f, NumberStyles.Float, CultureInfo.InvariantCulture, out _)) && previous is not null)
            {
                return (previousLine, Fields(previous, Separator(previous)), separator);
            }

            previous = line;
            previousLine = number;
        }

        throw new SensorSourceException($"CSV file '{options.Path}': no header line followed by numeric data found.");
    }

    /// <summary>The fields of one line as Sep reads them (quotes removed, trimmed; runs of spaces are one separator).</summary>
    private static string[] Fields(string line, char separator)
    {
        using var reader = RowOptions(separator).FromText(line);
        if (!reader.MoveNext())
        {
            return [];
        }

        var row = reader.Current;
        var fields = new List<string>(row.ColCount);
        for (var c = 0; c < row.ColCount; c++)
        {
            var text = row[c].ToString();
            if (text.Length > 0 || (separator != ' ' && c < row.ColCount - 1))
            {
                // An empty last field (a separator ending the line) is no column.
                fields.Add(text);
            }
        }

        return [.. fields];
    }

    // The first separator found outside quotes, in order of preference.
    private static char Separator(string line)
    {
        var unquoted = UnquotedSeparators(line);
        return unquoted.Contains('\t', StringComparison.Ordinal) ? '\t' : unquoted.Contains(',', StringComparison.Ordinal) ? ',' : unquoted.Contains(';', StringComparison.Ordinal) ? ';' : ' ';
    }

    private static string UnquotedSeparators(string line)
    {
        var inQuotes = false;
        var kept = new System.Text.StringBuilder();
        foreach (var ch in line)
        {
            if (ch == '"')
            {
                inQuotes = !inQuotes;
            }
            else if (!inQuotes && ch is '\t' or ',' or ';')
            {
                kept.Append(ch);
            }
        }

        return kept.ToString();
    }

    private static int ResolveColumn(CsvSourceOptions options, string[] header, string column)
    {
        if (int.TryParse(column, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            return index;
        }

        for (var i = 0; i < header.Length; i++)
        {
            if (string.Equals(header[i], column, StringComparison.OrdinalIgnoreCase)
                || header[i].StartsWith(column + " ", StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        throw new SensorSourceException($"CSV file '{options.Path}': no column '{column}' (columns: {string.Join(", ", header)}).");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "CSV {Path} line {Line}: cannot parse; skipped ({Count} so far)")]
    private static partial void LogMalformed(ILogger logger, string path, int line, long count);
}

/// <summary>A sensor source cannot be opened or read; the message names it and the reason.</summary>
public sealed class SensorSourceException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SensorSourceException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public SensorSourceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public SensorSourceException()
    {
    }
}
