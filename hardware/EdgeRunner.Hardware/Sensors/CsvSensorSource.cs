using System.Globalization;
using Microsoft.Extensions.Logging;

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
}

/// <summary>
/// Replays a recorded sensor stream from a CSV or TSV file (comma, semicolon, tab or spaces; a
/// preamble before the header is skipped), at its recorded pace or faster. A line that cannot be
/// parsed is skipped, counted and logged (rate-limited), and the replay goes on. Values that parse
/// as NaN are passed through for the stream's own NaN policy to handle.
/// </summary>
public sealed partial class CsvSensorSource : IResumableSensorSource
{
    private readonly CsvSourceOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly string[] _channels;
    private readonly int[] _columnIndexes;
    private readonly int _timestampIndex;
    private readonly char[] _separators;
    private readonly int _headerLine;
    private StreamReader? _reader;
    private int _lineNumber;
    private long _sampleIndex;
    private long _sampleIndexWithinPass;
    private double _firstSampleSeconds = double.NaN;
    private double _fileFirstSeconds = double.NaN;
    private long _replayStartTimestamp;
    private double _loopOffsetSeconds;
    private double _lastSampleSeconds;
    private DateTimeOffset _startTime;

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

        (_headerLine, var header, _separators) = FindHeader(options);
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
        var (written, firstSeconds) = await ReadSamplesAsync(destination, cancellationToken).ConfigureAwait(false);
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

        return new SensorBlock(written, _startTime + TimeSpan.FromSeconds(firstSeconds - (double.IsNaN(_firstSampleSeconds) ? 0 : _firstSampleSeconds)), firstIndex);
    }

    private async ValueTask<(int Written, double FirstSeconds)> ReadSamplesAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        var channels = _channels.Length;
        var capacity = destination.Length / channels;
        var written = 0;
        double firstSeconds = 0;
        while (written < capacity)
        {
            var line = await NextLineAsync(cancellationToken).ConfigureAwait(false);
            if (line is null)
            {
                break;
            }

            if (!TryParse(line, destination.Span.Slice(written * channels, channels), out var seconds))
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
            }

            seconds += _loopOffsetSeconds;
            if (double.IsNaN(_firstSampleSeconds))
            {
                // First sample since the replay clock (re)started: pacing and block times count from it.
                _firstSampleSeconds = seconds;
            }

            _lastSampleSeconds = seconds;
            if (written == 0)
            {
                firstSeconds = seconds;
            }

            written++;
            _sampleIndex++;
        }

        return (written, firstSeconds);
    }

    /// <inheritdoc />
    public async ValueTask SeekAsync(long sampleIndex, CancellationToken cancellationToken)
    {
        // Read and drop samples until the position is reached; the replay clock restarts at the next read.
        var scratch = new float[_channels.Length * 256];
        while (_sampleIndex < sampleIndex)
        {
            var want = (int)Math.Min(256, sampleIndex - _sampleIndex);
            var (read, _) = await ReadSamplesAsync(scratch.AsMemory(0, want * _channels.Length), cancellationToken).ConfigureAwait(false);
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
        _reader?.Dispose();
        _reader = null;
        return ValueTask.CompletedTask;
    }

    private async ValueTask<string?> NextLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_reader is null)
            {
                _reader = new StreamReader(_options.Path);
                _lineNumber = 0;
                for (var i = 0; i <= _headerLine; i++)
                {
                    await _reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                    _lineNumber++;
                }
            }

            var line = await _reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            if (line is not null)
            {
                _lineNumber++;
                if (line.AsSpan().Trim().IsEmpty)
                {
                    continue;
                }

                return line;
            }

            if (!_options.Loop || _sampleIndex == 0)
            {
                return null;
            }

            // Loop: time continues one sample period after the last sample.
            _loopOffsetSeconds = _lastSampleSeconds + (1.0 / SampleRateHz) - _fileFirstSeconds;
            _sampleIndexWithinPass = 0;
            _reader.Dispose();
            _reader = null;
        }
    }

    private bool TryParse(string line, Span<float> values, out double seconds)
    {
        seconds = 0;
        var fields = line.Split(_separators, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        for (var c = 0; c < _columnIndexes.Length; c++)
        {
            var index = _columnIndexes[c];
            if (index >= fields.Length || !float.TryParse(fields[index], NumberStyles.Float, CultureInfo.InvariantCulture, out values[c]))
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

        if (_timestampIndex >= fields.Length)
        {
            return false;
        }

        var text = fields[_timestampIndex];
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out seconds))
        {
            return true;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            seconds = time.ToUnixTimeMilliseconds() / 1000.0;
            return true;
        }

        return false;
    }

    private double EstimateRate()
    {
        // Median spacing of the first timestamps.
        using var reader = new StreamReader(_options.Path);
        for (var i = 0; i <= _headerLine; i++)
        {
            reader.ReadLine();
        }

        var times = new List<double>();
        string? line;
        while (times.Count < 200 && (line = reader.ReadLine()) is not null)
        {
            var fields = line.Split(_separators, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (_timestampIndex < fields.Length)
            {
                var text = fields[_timestampIndex];
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var s))
                {
                    times.Add(s);
                }
                else if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
                {
                    times.Add(t.ToUnixTimeMilliseconds() / 1000.0);
                }
            }
        }

        var gaps = times.Zip(times.Skip(1), (a, b) => b - a).Where(g => g > 0).Order().ToList();
        if (gaps.Count == 0)
        {
            throw new SensorSourceException($"CSV file '{_options.Path}': cannot estimate the sample rate from column '{_options.TimestampColumn}'; set it.");
        }

        return 1.0 / gaps[gaps.Count / 2];
    }

    private static (int Line, string[] Header, char[] Separators) FindHeader(CsvSourceOptions options)
    {
        // The header is the last non-empty line before the first line whose selected fields are all numbers.
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

            var separators = Separators(line);
            var fields = line.Split(separators, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (fields.Length > 0 && fields.Any(f => double.TryParse(f, NumberStyles.Float, CultureInfo.InvariantCulture, out _)) && previous is not null)
            {
                var headerSeparators = Separators(previous);
                return (previousLine, previous.Split(headerSeparators, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), separators);
            }

            previous = line;
            previousLine = number;
        }

        throw new SensorSourceException($"CSV file '{options.Path}': no header line followed by numeric data found.");
    }

    private static char[] Separators(string line) =>
        line.Contains('\t', StringComparison.Ordinal) ? ['\t'] : line.Contains(',', StringComparison.Ordinal) ? [','] : line.Contains(';', StringComparison.Ordinal) ? [';'] : [' '];

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
