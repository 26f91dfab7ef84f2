using System.Text.Json;
using EdgeRunner.Hardware.Sensors;
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
/// A line of numbers, a JSON object, a value and a timestamp are read by the <see cref="SampleLineParser"/> that
/// serial lines go through too, so the same text gives the same sample whichever source carried it; this class
/// adds what belongs to a message: several lines, arrays and batches, the format setting and the size limit.
/// </summary>
internal sealed class MqttPayloadParser
{
    /// <summary>How the reason of a payload refused for its size begins (the route counts those apart).</summary>
    public const string TooLargePrefix = "payload too large: ";

    private readonly int _channels;
    private readonly int _maxPayloadBytes;
    private readonly MqttPayloadFormat _format;
    private readonly SampleLineParser _objects;

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
        ArgumentOutOfRangeException.ThrowIfGreaterThan(channels, SampleLineParser.MaxChannels);
        ArgumentNullException.ThrowIfNull(columns);
        if (columns.Count != 0 && columns.Count != channels)
        {
            throw new ArgumentException($"{columns.Count} columns for {channels} channels", nameof(columns));
        }

        _channels = channels;
        _format = format;
        _objects = new SampleLineParser(columns, timestampField ?? string.Empty);
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
        foreach (var lineRange in payload.Split((byte)'\n'))
        {
            if ((samples + 1) * _channels > destination.Length)
            {
                if (payload[lineRange].IndexOfAnyExcept(" \t\r,;"u8) < 0)
                {
                    continue;
                }

                error = "too many values";
                return false;
            }

            if (!SampleLineParser.TryParseNumbers(payload[lineRange], destination.Slice(samples * _channels, _channels), out var count, out error))
            {
                return false;
            }

            if (count > 0)
            {
                samples++;
            }
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
                if (!_objects.TryReadObject(ref reader, destination, out var ticks, out error))
                {
                    return false;
                }

                firstSampleTime = ToTime(ticks);

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
                    if (!SampleLineParser.TryReadNumbers(ref reader, destination[.._channels], out error))
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
                            if (!_objects.TryReadObject(ref reader, sample, out var ticks, out error))
                            {
                                return false;
                            }

                            firstSampleTime = samples == 0 ? ToTime(ticks) : firstSampleTime;
                        }
                        else if (reader.TokenType == JsonTokenType.StartArray)
                        {
                            if (!reader.Read())
                            {
                                error = "truncated JSON";
                                return false;
                            }

                            if (!SampleLineParser.TryReadNumbers(ref reader, sample, out error))
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

    private static DateTimeOffset? ToTime(long? unixTicks) => unixTicks is { } ticks ? SampleLineParser.ToTime(ticks) : null;
}
