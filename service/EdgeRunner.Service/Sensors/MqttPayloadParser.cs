using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// Reads the samples of one MQTT ingest message into a caller-owned buffer, channel-interleaved in the
/// model's channel order, without allocating (errors excepted). Accepted payloads:
/// <list type="bullet">
/// <item>plain numbers: one sample per line, values separated by commas, semicolons or white space;</item>
/// <item>JSON object: one sample, fields named by <c>Columns</c> (plus an optional timestamp field);</item>
/// <item>JSON array of numbers: one sample in channel order;</item>
/// <item>JSON array of objects, or of arrays of numbers: a batch of consecutive samples.</item>
/// </list>
/// Every value goes through <see cref="float.TryParse(ReadOnlySpan{byte}, NumberStyles, IFormatProvider?, out float)"/>,
/// so the same decimal text gives the same float whichever format carried it.
/// </summary>
internal sealed class MqttPayloadParser
{
    /// <summary>How the reason of a payload refused for its size begins (the route counts those apart).</summary>
    public const string TooLargePrefix = "payload too large: ";

    private const int MaxChannels = 64;
    private readonly int _channels;
    private readonly int _maxPayloadBytes;
    private readonly MqttPayloadFormat _format;
    private readonly byte[][] _columns;
    private readonly byte[]? _timestampField;

    /// <param name="channels">Values per sample (the model's channels).</param>
    /// <param name="format">Payload format.</param>
    /// <param name="columns">JSON field names in channel order (empty: JSON objects are refused).</param>
    /// <param name="timestampField">JSON field with the sample time, empty for none.</param>
    /// <param name="maxPayloadBytes">Largest payload read; a larger one is refused before it is looked at.</param>
    public MqttPayloadParser(int channels, MqttPayloadFormat format, IReadOnlyList<string> columns, string timestampField, int maxPayloadBytes = int.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPayloadBytes, 1);
        _maxPayloadBytes = maxPayloadBytes;
        ArgumentOutOfRangeException.ThrowIfGreaterThan(channels, MaxChannels);
        ArgumentNullException.ThrowIfNull(columns);
        if (columns.Count != 0 && columns.Count != channels)
        {
            throw new ArgumentException($"{columns.Count} columns for {channels} channels", nameof(columns));
        }

        _channels = channels;
        _format = format;
        _columns = [.. columns.Select(Encoding.UTF8.GetBytes)];
        _timestampField = string.IsNullOrEmpty(timestampField) ? null : Encoding.UTF8.GetBytes(timestampField);
    }

    /// <summary>Values per sample.</summary>
    public int Channels => _channels;

    /// <summary>
    /// Most samples a payload of <paramref name="payloadBytes"/> bytes can hold: every value takes at least one byte and one
    /// separator. Capped at the largest payload read, so the buffer rented for an oversized payload stays small.
    /// </summary>
    public int MaxSamples(int payloadBytes) => (((Math.Min(payloadBytes, _maxPayloadBytes) / 2) + 1) / _channels) + 1;

    /// <summary>Largest payload read, in bytes.</summary>
    public int MaxPayloadBytes => _maxPayloadBytes;

    /// <summary>
    /// Parses <paramref name="payload"/> into <paramref name="destination"/> (at least
    /// <see cref="MaxSamples"/> × channels long). Returns false with a short reason for a malformed payload.
    /// </summary>
    /// <param name="payload">The message payload.</param>
    /// <param name="destination">Samples, channel-interleaved in the model's channel order.</param>
    /// <param name="samples">Samples written.</param>
    /// <param name="firstSampleTime">The first sample's timestamp when the payload carries one.</param>
    /// <param name="error">Why the payload was refused (empty on success).</param>
    public bool TryParse(ReadOnlySpan<byte> payload, Span<float> destination, out int samples, out DateTimeOffset? firstSampleTime, out string error)
    {
        samples = 0;
        firstSampleTime = null;
        if (payload.Length > _maxPayloadBytes)
        {
            error = $"{TooLargePrefix}{payload.Length} bytes, more than MaxPayloadBytes ({_maxPayloadBytes})";
            return false;
        }

        var start = payload.IndexOfAnyExcept(" \t\r\n"u8);
        if (start < 0)
        {
            error = "empty payload";
            return false;
        }

        var json = _format switch
        {
            MqttPayloadFormat.Json => true,
            MqttPayloadFormat.Numbers => false,
            _ => payload[start] is (byte)'{' or (byte)'[',
        };
        return json
            ? TryParseJson(payload, destination, out samples, out firstSampleTime, out error)
            : TryParseNumbers(payload, destination, out samples, out error);
    }

    private bool TryParseNumbers(ReadOnlySpan<byte> payload, Span<float> destination, out int samples, out string error)
    {
        samples = 0;
        var written = 0;
        foreach (var lineRange in payload.Split((byte)'\n'))
        {
            var line = payload[lineRange];
            var inLine = 0;
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
                if (inLine >= _channels)
                {
                    error = $"a line has more than {_channels} values (one sample per line, in the model's channel order)";
                    return false;
                }

                if (written >= destination.Length)
                {
                    error = "too many values";
                    return false;
                }

                if (!float.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                {
                    error = $"'{Printable(token)}' is not a number";
                    return false;
                }

                destination[written++] = value;
                inLine++;
            }

            if (inLine == 0)
            {
                continue;
            }

            if (inLine != _channels)
            {
                error = $"a line has {inLine} values, the stream has {_channels} channels";
                return false;
            }

            samples++;
        }

        if (samples == 0)
        {
            error = "no values";
            return false;
        }

        error = string.Empty;
        return true;
    }

    private bool TryParseJson(ReadOnlySpan<byte> payload, Span<float> destination, out int samples, out DateTimeOffset? firstSampleTime, out string error)
    {
        samples = 0;
        firstSampleTime = null;
        var reader = new Utf8JsonReader(payload, new JsonReaderOptions { MaxDepth = 8 });
        try
        {
            if (!reader.Read())
            {
                error = "empty payload";
                return false;
            }

            if (reader.TokenType == JsonTokenType.StartObject)
            {
                if (!TryReadObject(ref reader, destination, out firstSampleTime, out error))
                {
                    return false;
                }

                samples = 1;
            }
            else if (reader.TokenType == JsonTokenType.StartArray)
            {
                if (!reader.Read())
                {
                    error = "truncated JSON";
                    return false;
                }

                if (reader.TokenType == JsonTokenType.Number)
                {
                    // [ax, ay, az]: one sample in channel order.
                    if (!TryReadNumbers(ref reader, destination, out error))
                    {
                        return false;
                    }

                    samples = 1;
                }
                else
                {
                    while (reader.TokenType != JsonTokenType.EndArray)
                    {
                        if ((samples + 1) * _channels > destination.Length)
                        {
                            error = "too many samples";
                            return false;
                        }

                        var sample = destination.Slice(samples * _channels, _channels);
                        if (reader.TokenType == JsonTokenType.StartObject)
                        {
                            if (!TryReadObject(ref reader, sample, out var time, out error))
                            {
                                return false;
                            }

                            firstSampleTime = samples == 0 ? time : firstSampleTime;
                        }
                        else if (reader.TokenType == JsonTokenType.StartArray)
                        {
                            if (!reader.Read())
                            {
                                error = "truncated JSON";
                                return false;
                            }

                            if (!TryReadNumbers(ref reader, sample, out error))
                            {
                                return false;
                            }
                        }
                        else
                        {
                            error = $"a batch holds objects or arrays of numbers, not {reader.TokenType}";
                            return false;
                        }

                        samples++;
                        if (!reader.Read())
                        {
                            error = "truncated JSON";
                            return false;
                        }
                    }

                    if (samples == 0)
                    {
                        error = "empty array";
                        return false;
                    }
                }
            }
            else
            {
                error = $"JSON {reader.TokenType} is not a sample (an object, an array of numbers, or an array of those)";
                return false;
            }

            if (reader.Read())
            {
                error = "content after the JSON value";
                return false;
            }
        }
        catch (JsonException ex)
        {
            error = $"not valid JSON: {ex.Message}";
            samples = 0;
            return false;
        }

        error = string.Empty;
        return true;
    }

    /// <summary>Reads numbers up to the array's end (the reader is on the first element); exactly one sample.</summary>
    private bool TryReadNumbers(ref Utf8JsonReader reader, Span<float> sample, out string error)
    {
        var count = 0;
        while (reader.TokenType != JsonTokenType.EndArray)
        {
            if (count >= _channels)
            {
                error = $"a sample array has more than {_channels} values";
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

        if (count != _channels)
        {
            error = $"a sample array has {count} values, the stream has {_channels} channels";
            return false;
        }

        error = string.Empty;
        return true;
    }

    /// <summary>Reads one object (the reader is on its start) into one sample, by field name.</summary>
    private bool TryReadObject(ref Utf8JsonReader reader, Span<float> sample, out DateTimeOffset? time, out string error)
    {
        time = null;
        if (_columns.Length == 0)
        {
            error = "JSON objects need Source:Columns (the field of each channel)";
            return false;
        }

        var seen = 0UL;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var channel = -1;
            for (var c = 0; c < _columns.Length; c++)
            {
                if (reader.ValueTextEquals(_columns[c]))
                {
                    channel = c;
                    break;
                }
            }

            var isTime = channel < 0 && _timestampField is not null && reader.ValueTextEquals(_timestampField);
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
                if (!TryReadTime(ref reader, out var t, out error))
                {
                    return false;
                }

                time = t;
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

        if (seen != (_channels == 64 ? ulong.MaxValue : (1UL << _channels) - 1))
        {
            var missing = System.Numerics.BitOperations.TrailingZeroCount(~seen);
            error = $"field '{Encoding.UTF8.GetString(_columns[missing])}' is missing";
            return false;
        }

        error = string.Empty;
        return true;
    }

    /// <summary>A number, or null (a missing reading: NaN, left to the stream's invalid-sample policy).</summary>
    private static bool TryReadValue(ref Utf8JsonReader reader, out float value, out string error)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            value = float.NaN;
            error = string.Empty;
            return true;
        }

        // JSON numbers are never escaped: ValueSpan is the literal text.
        if (reader.TokenType != JsonTokenType.Number || reader.HasValueSequence
            || !float.TryParse(reader.ValueSpan, NumberStyles.Float, CultureInfo.InvariantCulture, out value))
        {
            value = 0;
            error = $"a channel value is {reader.TokenType}, not a number";
            return false;
        }

        error = string.Empty;
        return true;
    }

    private static bool TryReadTime(ref Utf8JsonReader reader, out DateTimeOffset time, out string error)
    {
        error = string.Empty;
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out var seconds)
            && double.IsFinite(seconds) && Math.Abs(seconds) < 2e11)
        {
            time = DateTimeOffset.UnixEpoch.AddTicks((long)Math.Round(seconds * TimeSpan.TicksPerSecond));
            return true;
        }

        if (reader.TokenType == JsonTokenType.String && reader.TryGetDateTimeOffset(out time))
        {
            return true;
        }

        time = default;
        error = "the timestamp is neither seconds since 1970 nor an ISO 8601 time";
        return false;
    }

    private static string Printable(ReadOnlySpan<byte> token)
    {
        var text = Encoding.UTF8.GetString(token[..Math.Min(token.Length, 20)]);
        return token.Length > 20 ? text + "…" : text;
    }
}
