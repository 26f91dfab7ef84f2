using System.Text;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Sensors;

namespace EdgeRunner.UnitTests.Sensors;

/// <summary>The one sample-line parser serial lines and MQTT ingest payloads go through.</summary>
public sealed class SampleLineParserTests
{
    private static (SampleLineKind Kind, float[] Values, long Ticks, string Error) Parse(SampleLineParser parser, string line)
    {
        var values = new float[parser.Columns.Count];
        var kind = parser.TryParseLine(Encoding.UTF8.GetBytes(line), values, out var ticks, out var error);
        return (kind, values, ticks, error);
    }

    [Theory]
    [InlineData("0.1,0.2,0.98")]
    [InlineData("0.1;0.2;0.98")]
    [InlineData("0.1\t0.2\t0.98\r")]
    [InlineData("  0.1   0.2   0.98")]
    [InlineData("{\"ax\": 0.1, \"ay\": 0.2, \"az\": 0.98}")]
    public void A_serial_line_and_an_mqtt_payload_of_the_same_text_give_the_same_sample(string text)
    {
        var columns = text.StartsWith('{') ? new[] { "ax", "ay", "az" } : ["0", "1", "2"];
        var serial = Parse(new SampleLineParser(columns, string.Empty), text);
        var mqtt = new MqttPayloadParser(3, MqttPayloadFormat.Auto, ["ax", "ay", "az"], string.Empty);
        var destination = new float[mqtt.MaxSamples(text.Length) * 3];

        Assert.True(mqtt.TryParse(Encoding.UTF8.GetBytes(text), destination, out var samples, out _, out var error), error);
        Assert.Equal(SampleLineKind.Sample, serial.Kind);
        Assert.Equal(1, samples);
        Assert.Equal(destination[..3], serial.Values);
        Assert.Equal([0.1f, 0.2f, 0.98f], serial.Values);
    }

    [Fact]
    public void Named_columns_are_placed_by_a_header_line_then_read_in_channel_order()
    {
        var parser = new SampleLineParser(["az", "ax"], "t");

        var before = Parse(parser, "1.5,0.1,0.2,0.98");
        var header = Parse(parser, "t, AX, ay, az");
        var sample = Parse(parser, "1.5,0.1,0.2,0.98");

        Assert.Equal(SampleLineKind.Malformed, before.Kind);
        Assert.Equal(SampleLineKind.Header, header.Kind);
        Assert.Equal(SampleLineKind.Sample, sample.Kind);
        Assert.Equal([0.98f, 0.1f], sample.Values);
        Assert.Equal(15_000_000, sample.Ticks);
    }

    [Theory]
    [InlineData("1764206400.25,1")]
    [InlineData("2025-11-27T01:20:00.25Z,1")]
    [InlineData("2025-11-27T02:20:00.25+01:00,1")]
    [InlineData("{\"t\": 1764206400.25, \"v\": 1}")]
    [InlineData("{\"t\": \"2025-11-27T01:20:00.25Z\", \"v\": 1}")]
    public void Timestamps_are_seconds_or_iso_8601_in_text_and_in_json(string line)
    {
        var parser = new SampleLineParser(line.StartsWith('{') ? ["v"] : ["1"], line.StartsWith('{') ? "t" : "0");

        var (kind, values, ticks, error) = Parse(parser, line);

        Assert.Equal(SampleLineKind.Sample, kind);
        Assert.Equal(string.Empty, error);
        Assert.Equal([1f], values);
        Assert.Equal(new DateTimeOffset(2025, 11, 27, 1, 20, 0, 250, TimeSpan.Zero), SampleLineParser.ToTime(ticks));
    }

    [Theory]
    [InlineData("{\"ax\": 1}", "field 'ay' is missing")]
    [InlineData("{\"ax\": 1, \"ay\": 2}", "field 't' (the timestamp) is missing")]
    [InlineData("{\"ax\": 1, \"ay\": \"2\", \"t\": 0}", "a channel value is String, not a number")]
    [InlineData("{\"ax\": 1, \"ay\": 2, \"t\": \"yesterday\"}", SampleLineParser.TimestampError)]
    [InlineData("{\"ax\": 1, \"ay\": 2, \"t\": 1e300}", SampleLineParser.TimestampError)]
    [InlineData("{\"ax\": 1, \"ay\": 2", "not valid JSON")]
    public void Malformed_json_lines_are_refused_with_a_reason(string line, string reason)
    {
        var (kind, _, _, error) = Parse(new SampleLineParser(["ax", "ay"], "t"), line);

        Assert.Equal(SampleLineKind.Malformed, kind);
        Assert.StartsWith(reason, error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_json_null_reads_as_nan_and_an_empty_field_between_commas_still_counts()
    {
        var json = Parse(new SampleLineParser(["a", "b"], string.Empty), "{\"a\": null, \"b\": 2}");
        var delimited = Parse(new SampleLineParser(["0", "2"], string.Empty), "1,,3");
        var emptySelected = Parse(new SampleLineParser(["1"], string.Empty), "1,,3");

        Assert.Equal(SampleLineKind.Sample, json.Kind);
        Assert.True(float.IsNaN(json.Values[0]));
        Assert.Equal([1f, 3f], delimited.Values);
        Assert.Equal(SampleLineKind.Malformed, emptySelected.Kind);
    }
}
