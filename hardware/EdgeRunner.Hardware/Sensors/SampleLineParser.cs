using System.Globalization;
using System.Text;
using System.Text.Json;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>What <see cref="SampleLineParser.TryParseLine"/> made of a line.</summary>
public enum SampleLineKind
{
    /// <summary>One sample was read.</summary>
    Sample,

    /// <summary>A header line (names only) that placed every named column; no sample.</summary>
    Header,

    /// <summary>The line could not be parsed (the error says why).</summary>
    Malformed,
}

/// <summary>
/// The one parser of sensor sample text, shared by every source that receives samples as text (a serial
/// line, an MQTT ingest payload): numbers or a JSON object, timed by seconds or by an ISO 8601 date-time.
/// Reads into a caller-owned span without allocating on success (errors build their message).
/// </summary>
/// <remarks>
/// <para>
/// A line is either a JSON object whose fields are named by the columns (plus an optional timestamp
/// field; a JSON <c>null</c> value reads as NaN, left to the stream's invalid-sample policy), or
/// delimited numbers (comma, semicolon, tab or spaces). Delimited columns are zero-based field indices, or
/// names placed by a header line (a line of names only) the device prints. Every value goes through
/// <see cref="float.TryParse(ReadOnlySpan{byte}, NumberStyles, IFormatProvider?, out float)"/>, so the
/// same decimal text gives the same float whichever format carried it (C's "nan"/"inf" included).
/// </para>
/// <para>
/// A timestamp is returned as ticks (100 ns) since the Unix epoch: a number is seconds (since 1970, or
/// since the device's own zero; <see cref="ToTime"/> turns it into a date-time), a string an ISO 8601
/// date-time (UTC unless it says otherwise). Stateful only in the header it learned; not thread-safe.
/// </para>
/// </remarks>
public sealed class SampleLineParser
{
    // Seconds a DateTimeOffset can hold either side of 1970 (year 1 to about year 8300): beyond, a number is not a time.
    private const double EarliestSeconds = -62_135_596_800;
    private const double LatestSeconds = 2e11;
    private readonly string[] _columns;
    private readonly byte[][] _columnNames;
    private readonly string _timestampField;
    private readonly byte[]? _timestampName;
    private readonly int[] _fieldIndexes;
    private readonly bool _namedColumns;
    private int _timestampIndex;

    /// <param name="columns">
    /// The values to read, in channel order: JSON field names, and for delimited lines zero-based field indices
    /// ("0", "1", …) or names placed by a header line. Empty: JSON objects are refused.
    /// </param>
    /// <param name="timestampField">The field holding each sample's time (a name, or an index for delimited lines); empty for none.</param>
    public SampleLineParser(IReadOnlyList<string> columns, string timestampField)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(columns.Count, MaxChannels, nameof(columns));
        _columns = [.. columns];
        _columnNames = [.. columns.Select(Encoding.UTF8.GetBytes)];
        _timestampField = timestampField ?? string.Empty;
        _timestampName = _timestampField.Length == 0 ? null : Encoding.UTF8.GetBytes(_timestampField);
        _namedColumns = columns.Any(c => !IsIndex(c, out _)) || (_timestampField.Length > 0 && !IsIndex(_timestampField, out _));
        _fieldIndexes = [.. columns.Select(c => IsIndex(c, out var i) ? i : -1)];
        _timestampIndex = _timestampField.Length == 0 ? -1 : IsIndex(_timestampField, out var t) ? t : -1;
    }

    /// <summary>Most channels a sample can have.</summary>
    public const int MaxChannels = 64;

    /// <summary>Whether samples carry their own time (a timestamp field is configured).</summary>
    public bool HasTimestampField => _timestampName is not null;

    /// <summary>
    /// Parses one line (a JSON object, a header, or delimited numbers) into one sample of
    /// <see cref="Columns"/>.Count values. A configured timestamp field must be present.
    /// </summary>
    /// <param name="line">The line, without its line end.</param>
    /// <param name="sample">The sample's values, in column order.</param>
    /// <param name="unixTicks">The sample's time in ticks since 1970 (or since the device's zero); 0 without a timestamp field.</param>
    /// <param name="error">Why the line was refused (empty otherwise).</param>
    public SampleLineKind TryParseLine(ReadOnlySpan<byte> line, Span<float> sample, out long unixTicks, out string error)
    {
        unixTicks = 0;
        var trimmed = line.Trim(" \t\r"u8);
        if (trimmed.IsEmpty)
        {
            error = "empty line";
            return SampleLineKind.Malformed;
        }

        if (trimmed[0] == (byte)'{')
        {
            try
            {
                var reader = new Utf8JsonReader(trimmed, new JsonReaderOptions { MaxDepth = 8 });
                reader.Read();
                if (!TryReadObject(ref reader, sample, out var time, out error))
                {
                    return SampleLineKind.Malformed;
                }

                if (reader.Read())
                {
                    error = "content after the JSON value";
                    return SampleLineKind.Malformed;
                }

                if (_timestampName is not null && time is null)
                {
                    error = $"field '{_timestampField}' (the timestamp) is missing";
                    return SampleLineKind.Malformed;
                }

                unixTicks = time ?? 0;
                return SampleLineKind.Sample;
            }
            catch (JsonException ex)
            {
                error = $"not valid JSON: {ex.Message}";
                return SampleLineKind.Malformed;
            }
        }

        return TryParseDelimited(trimmed, sample, out unixTicks, out error);
    }

    /// <summary>The columns, in channel order.</summary>
    public IReadOnlyList<string> Columns => _columns;

    /// <summary>
    /// Reads one JSON object (the reader is on its start) into one sample, by field name; other fields are
    /// skipped. The reader ends on the object's end.
    /// </summary>
    /// <param name="reader">The reader, on a <see cref="JsonTokenType.StartObject"/>.</param>
    /// <param name="sample">The sample's values, in column order.</param>
    /// <param name="unixTicks">The timestamp field's time in ticks since 1970, when the object has one.</param>
    /// <param name="error">Why the object was refused (empty otherwise).</param>
    public bool TryReadObject(ref Utf8JsonReader reader, Span<float> sample, out long? unixTicks, out string error)
    {
        unixTicks = null;
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            error = $"JSON {reader.TokenType} is not an object";
            return false;
        }

        if (_columnNames.Length == 0)
        {
            error = "JSON objects need Source:Columns (the field of each channel)";
            return false;
        }

        var seen = 0UL;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var channel = -1;
            for (var c = 0; c < _columnNames.Length; c++)
            {
                if (reader.ValueTextEquals(_columnNames[c]))
                {
                    channel = c;
                    break;
                }
            }

            var isTime = channel < 0 && _timestampName is not null && reader.ValueTextEquals(_timestampName);
            if (!reader.Read())
            {
                error = "truncated JSON";
                return false;
            }

            if (channel >= 0)
            {
                if (!TryReadValue(ref reader, out sample[channel], out error))
                {
                    return false;
                }

                seen |= 1UL << channel;
            }
            else if (isTime)
            {
                if (!TryReadTimestamp(ref reader, out var ticks, out error))
                {
                    return false;
                }

                unixTicks = ticks;
            }
            else
            {
                reader.Skip();
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject)
        {
            error = "truncated JSON";
            return false;
        }

        if (seen != (_columnNames.Length == 64 ? ulong.MaxValue : (1UL << _columnNames.Length) - 1))
        {
            var missing = System.Numerics.BitOperations.TrailingZeroCount(~seen);
            error = $"field '{_columns[missing]}' is missing";
            return false;
        }

        error = string.Empty;
        return true;
    }

    /// <summary>
    /// Reads the numbers of one line in channel order (separated by commas, semicolons or white space, runs
    /// counting as one): exactly <paramref name="sample"/>.Length of them, or none (an empty line).
    /// </summary>
    /// <param name="line">The line.</param>
    /// <param name="sample">The sample's values.</param>
    /// <param name="count">Values read: 0 for an empty line, else the sample's length.</param>
    /// <param name="error">Why the line was refused (empty otherwise).</param>
    public static bool TryParseNumbers(ReadOnlySpan<byte> line, Span<float> sample, out int count, out string error)
    {
        count = 0;
        while (true)
        {
            var begin = line.IndexOfAnyExcept(" \t\r,;"u8);
            if (begin < 0)
            {
                break;
            }

            line = line[begin..];
            var end = line.IndexOfAny(" \t\r,;"u8);
            var token = end < 0 ? line : line[..end];
            line = end < 0 ? [] : line[end..];
            if (count >= sample.Length)
            {
                error = $"a line has more than {sample.Length} values (one sample per line, in the model's channel order)";
                return false;
            }

            if (!TryParseValue(token, out sample[count]))
            {
                error = $"'{Printable(token)}' is not a number";
                return false;
            }

            count++;
        }

        if (count != 0 && count != sample.Length)
        {
            error = $"a line has {count} values, the stream has {sample.Length} channels";
            return false;
        }

        error = string.Empty;
        return true;
    }

    /// <summary>
    /// Reads a JSON array of numbers in channel order (the reader is on its first element), exactly
    /// <paramref name="sample"/>.Length of them; the reader ends on the array's end.
    /// </summary>
    public static bool TryReadNumbers(ref Utf8JsonReader reader, Span<float> sample, out string error)
    {
        var count = 0;
        while (reader.TokenType != JsonTokenType.EndArray)
        {
            if (count >= sample.Length)
            {
                error = $"a sample array has more than {sample.Length} values";
                return false;
            }

            if (!TryReadValue(ref reader, out sample[count], out error))
            {
                return false;
            }

            count++;
            if (!reader.Read())
            {
                error = "truncated JSON";
                return false;
            }
        }

        if (count != sample.Length)
        {
            error = $"a sample array has {count} values, the stream has {sample.Length} channels";
            return false;
        }

        error = string.Empty;
        return true;
    }

    /// <summary>A JSON number, or null (a missing reading: NaN, left to the stream's invalid-sample policy).</summary>
    public static bool TryReadValue(ref Utf8JsonReader reader, out float value, out string error)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            value = float.NaN;
            error = string.Empty;
            return true;
        }

        // JSON numbers are never escaped: ValueSpan is the literal text, parsed as delimited text is.
        if (reader.TokenType != JsonTokenType.Number || reader.HasValueSequence || !TryParseValue(reader.ValueSpan, out value))
        {
            value = 0;
            error = $"a channel value is {reader.TokenType}, not a number";
            return false;
        }

        error = string.Empty;
        return true;
    }

    /// <summary>A JSON timestamp: a number of seconds, or an ISO 8601 string; as ticks since 1970.</summary>
    public static bool TryReadTimestamp(ref Utf8JsonReader reader, out long unixTicks, out string error)
    {
        error = string.Empty;
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out var seconds) && TrySecondsToTicks(seconds, out unixTicks))
        {
            return true;
        }

        if (reader.TokenType == JsonTokenType.String && reader.TryGetDateTimeOffset(out var time))
        {
            unixTicks = time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
            return true;
        }

        unixTicks = 0;
        error = TimestampError;
        return false;
    }

    /// <summary>A number as text (invariant culture; "nan" and "inf" too).</summary>
    public static bool TryParseValue(ReadOnlySpan<byte> text, out float value) =>
        float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);

    /// <summary>A timestamp as text: seconds, or an ISO 8601 date-time (UTC unless it says otherwise); as ticks since 1970.</summary>
    public static bool TryParseTimestamp(ReadOnlySpan<byte> text, out long unixTicks)
    {
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
        {
            return TrySecondsToTicks(seconds, out unixTicks);
        }

        Span<char> chars = stackalloc char[64];
        if (text.Length <= chars.Length && Encoding.UTF8.TryGetChars(text, chars, out var count))
        {
            return TryParseTimestamp(chars[..count], out unixTicks);
        }

        unixTicks = 0;
        return false;
    }

    /// <summary>A number as text (invariant culture; "nan" and "inf" too).</summary>
    public static bool TryParseValue(ReadOnlySpan<char> text, out float value) =>
        float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);

    /// <summary>A timestamp as text: seconds, or an ISO 8601 date-time (UTC unless it says otherwise); as ticks since 1970.</summary>
    public static bool TryParseTimestamp(ReadOnlySpan<char> text, out long unixTicks)
    {
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
        {
            return TrySecondsToTicks(seconds, out unixTicks);
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            unixTicks = time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
            return true;
        }

        unixTicks = 0;
        return false;
    }

    /// <summary>A timestamp of this parser as a date-time.</summary>
    public static DateTimeOffset ToTime(long unixTicks) => DateTimeOffset.UnixEpoch.AddTicks(unixTicks);

    /// <summary>How a refused timestamp is told.</summary>
    public const string TimestampError = "the timestamp is neither seconds since 1970 nor an ISO 8601 time";

    private static bool TrySecondsToTicks(double seconds, out long unixTicks)
    {
        if (double.IsFinite(seconds) && seconds > EarliestSeconds && seconds < LatestSeconds)
        {
            unixTicks = (long)Math.Round(seconds * TimeSpan.TicksPerSecond);
            return true;
        }

        unixTicks = 0;
        return false;
    }

    private SampleLineKind TryParseDelimited(ReadOnlySpan<byte> line, Span<float> sample, out long unixTicks, out string error)
    {
        unixTicks = 0;
        var separator = line.IndexOf((byte)'\t') >= 0 ? (byte)'\t' : line.IndexOf((byte)',') >= 0 ? (byte)',' : line.IndexOf((byte)';') >= 0 ? (byte)';' : (byte)' ';
        if (_namedColumns && TryLearnHeader(line, separator))
        {
            error = string.Empty;
            return SampleLineKind.Header;
        }

        if (_fieldIndexes.AsSpan().Contains(-1) || (_timestampField.Length > 0 && _timestampIndex < 0))
        {
            error = "named columns, and no header line naming them yet";
            return SampleLineKind.Malformed;
        }

        var found = 0;
        var haveTime = _timestampIndex < 0;
        var field = 0;
        var rest = line;
        while (true)
        {
            var cut = rest.IndexOf(separator);
            var text = (cut < 0 ? rest : rest[..cut]).Trim(" \t"u8);
            if (!(text.IsEmpty && separator == (byte)' '))
            {
                // Runs of spaces are one separator; an empty field between commas still counts.
                for (var c = 0; c < _fieldIndexes.Length; c++)
                {
                    if (_fieldIndexes[c] == field)
                    {
                        if (!TryParseValue(text, out sample[c]))
                        {
                            error = $"'{Printable(text)}' is not a number";
                            return SampleLineKind.Malformed;
                        }

                        found++;
                    }
                }

                if (field == _timestampIndex)
                {
                    if (!TryParseTimestamp(text, out unixTicks))
                    {
                        error = TimestampError;
                        return SampleLineKind.Malformed;
                    }

                    haveTime = true;
                }

                field++;
            }

            if (cut < 0)
            {
                break;
            }

            rest = rest[(cut + 1)..];
        }

        if (!haveTime || found != _fieldIndexes.Length)
        {
            error = $"the line has {field} fields, too few for the columns";
            return SampleLineKind.Malformed;
        }

        error = string.Empty;
        return SampleLineKind.Sample;
    }

    /// <summary>A line of names only that holds every named column: remember where each is.</summary>
    private bool TryLearnHeader(ReadOnlySpan<byte> line, byte separator)
    {
        if (line.IndexOfAnyInRange((byte)'0', (byte)'9') == 0 || line[0] == (byte)'-')
        {
            return false;
        }

        var text = Encoding.UTF8.GetString(line);
        var names = text.Split((char)separator, StringSplitOptions.TrimEntries | (separator == (byte)' ' ? StringSplitOptions.RemoveEmptyEntries : StringSplitOptions.None));
        if (names.Any(n => double.TryParse(n, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
        {
            return false;
        }

        int Find(string column) => IsIndex(column, out var index) ? index : Array.FindIndex(names, n => string.Equals(n, column, StringComparison.OrdinalIgnoreCase));
        var indexes = _columns.Select(Find).ToArray();
        var timestamp = _timestampField.Length == 0 ? -1 : Find(_timestampField);
        if (indexes.Contains(-1) || (_timestampField.Length > 0 && timestamp < 0))
        {
            return false;
        }

        indexes.CopyTo(_fieldIndexes, 0);
        _timestampIndex = timestamp;
        return true;
    }

    private static bool IsIndex(string column, out int index) =>
        int.TryParse(column, NumberStyles.None, CultureInfo.InvariantCulture, out index);

    private static string Printable(ReadOnlySpan<byte> token)
    {
        var text = Encoding.UTF8.GetString(token[..Math.Min(token.Length, 20)]);
        return token.Length > 20 ? text + "…" : text;
    }
}
