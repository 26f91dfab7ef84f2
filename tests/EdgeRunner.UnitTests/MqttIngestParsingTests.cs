using System.Buffers;
using System.Text;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Sensors;

namespace EdgeRunner.UnitTests;

/// <summary>MQTT ingest payloads, topic filters and command topics.</summary>
public sealed class MqttIngestParsingTests
{
    private static readonly string[] Columns = ["ax", "ay", "az"];

    private static (bool Ok, float[] Values, DateTimeOffset? Time, string Error) Parse(string payload, MqttPayloadFormat format = MqttPayloadFormat.Auto, string timestampField = "ts", string[]? columns = null)
    {
        var parser = new MqttPayloadParser(3, format, columns ?? Columns, timestampField);
        var bytes = Encoding.UTF8.GetBytes(payload);
        var destination = new float[parser.MaxSamples(bytes.Length) * 3];
        var ok = parser.TryParse(bytes, destination, out var samples, out var time, out var error);
        return (ok, destination[..(samples * 3)], time, error);
    }

    [Theory]
    [InlineData("0.1,0.2,0.98")]
    [InlineData("0.1 0.2 0.98")]
    [InlineData(" 0.1; 0.2;\t0.98\r\n")]
    [InlineData("[0.1, 0.2, 0.98]")]
    [InlineData("{\"ax\": 0.1, \"ay\": 0.2, \"az\": 0.98}")]
    [InlineData("{\"az\": 0.98, \"other\": {\"x\": [1, 2]}, \"ay\": 0.2, \"ax\": 0.1}")]
    public void One_sample_in_any_format_gives_the_same_values(string payload)
    {
        var (ok, values, time, error) = Parse(payload);

        Assert.True(ok, error);
        Assert.Equal([0.1f, 0.2f, 0.98f], values);
        Assert.Null(time);
    }

    [Fact]
    public void Batches_of_objects_arrays_and_lines_keep_the_sample_order()
    {
        float[] expected = [1f, 2f, 3f, 4f, 5f, 6f];

        Assert.Equal(expected, Parse("[{\"ax\":1,\"ay\":2,\"az\":3},{\"ax\":4,\"ay\":5,\"az\":6}]").Values);
        Assert.Equal(expected, Parse("[[1,2,3],[4,5,6]]").Values);
        Assert.Equal(expected, Parse("1,2,3\n4,5,6\n").Values);
    }

    [Fact]
    public void Timestamps_are_read_as_unix_seconds_or_iso_8601_from_the_first_sample()
    {
        var seconds = Parse("[{\"ax\":1,\"ay\":2,\"az\":3,\"ts\":1764206400.25},{\"ax\":4,\"ay\":5,\"az\":6,\"ts\":1764206400.255}]");
        var iso = Parse("{\"ts\":\"2025-11-27T01:20:00.25+00:00\",\"ax\":1,\"ay\":2,\"az\":3}");

        Assert.True(seconds.Ok, seconds.Error);
        Assert.Equal(new DateTimeOffset(2025, 11, 27, 1, 20, 0, 250, TimeSpan.Zero), seconds.Time);
        Assert.True(iso.Ok, iso.Error);
        Assert.Equal(new DateTimeOffset(2025, 11, 27, 1, 20, 0, 250, TimeSpan.Zero), iso.Time);
    }

    [Fact]
    public void A_json_null_is_a_missing_reading_left_to_the_invalid_sample_policy()
    {
        var (ok, values, _, _) = Parse("{\"ax\":null,\"ay\":2,\"az\":3}");

        Assert.True(ok);
        Assert.True(float.IsNaN(values[0]));
        Assert.Equal([2f, 3f], values[1..]);
    }

    [Theory]
    [InlineData("", "empty payload")]
    [InlineData("   ", "empty payload")]
    [InlineData("0.1,0.2", "a line has 2 values, the stream has 3 channels")]
    [InlineData("0.1,0.2,0.3,0.4", "a line has more than 3 values")]
    [InlineData("0.1,abc,0.3", "'abc' is not a number")]
    [InlineData("[0.1,0.2]", "a sample array has 2 values, the stream has 3 channels")]
    [InlineData("[]", "empty array")]
    [InlineData("{\"ax\":1,\"ay\":2}", "field 'az' is missing")]
    [InlineData("{\"ax\":1,\"ay\":\"2\",\"az\":3}", "a channel value is String, not a number")]
    [InlineData("{\"ax\":1,\"ay\":2,\"az\":3", "not valid JSON")]
    [InlineData("{\"ax\":1,\"ay\":2,\"az\":3}{}", "not valid JSON")]
    [InlineData("{\"ax\":1,\"ay\":2,\"az\":3,\"ts\":\"yesterday\"}", "the timestamp is neither seconds since 1970 nor an ISO 8601 time")]
    [InlineData("\"0.1,0.2,0.3\"", "'\"0.1' is not a number")]
    [InlineData("[1,2,3]x", "not valid JSON")]
    public void Malformed_payloads_are_refused_with_a_reason(string payload, string reason)
    {
        var (ok, _, _, error) = Parse(payload);

        Assert.False(ok);
        Assert.StartsWith(reason, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_objects_need_columns_and_a_forced_number_format_refuses_json()
    {
        var noColumns = Parse("{\"ax\":1,\"ay\":2,\"az\":3}", columns: []);
        var numbersOnly = Parse("[1,2,3]", MqttPayloadFormat.Numbers);

        Assert.False(noColumns.Ok);
        Assert.Contains("Columns", noColumns.Error, StringComparison.Ordinal);
        Assert.False(numbersOnly.Ok);
        Assert.Equal("'[1' is not a number", numbersOnly.Error);
        var jsonOnly = Parse("\"0.1\"", MqttPayloadFormat.Json);
        Assert.False(jsonOnly.Ok);
        Assert.StartsWith("JSON String is not a sample", jsonOnly.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void The_capacity_bound_holds_for_the_densest_payloads()
    {
        // One digit per value and one separator: the densest text either format allows.
        var parser = new MqttPayloadParser(3, MqttPayloadFormat.Auto, Columns, string.Empty);
        var dense = Encoding.UTF8.GetBytes(string.Join('\n', Enumerable.Repeat("1,2,3", 1000)));
        var destination = new float[parser.MaxSamples(dense.Length) * 3];

        Assert.True(parser.TryParse(dense, destination, out var samples, out _, out var error), error);
        Assert.Equal(1000, samples);
    }

    [Theory]
    [InlineData("plant/+/vib", "plant/m1/vib", "m1")]
    [InlineData("plant/+/vib/#", "plant/m1/vib/x/y", "m1/x/y")]
    [InlineData("plant/#", "plant", "")]
    [InlineData("+/+", "a/b", "a/b")]
    public void Wildcards_yield_the_levels_they_matched(string filter, string topic, string levels)
    {
        Assert.True(MqttTopicFilter.TryMatch(filter, topic, out var matched));
        Assert.Equal(levels, matched);
    }

    [Theory]
    [InlineData("plant/+/vib", "plant/m1/other")]
    [InlineData("plant/+/vib", "plant/m1/vib/extra")]
    [InlineData("plant/+", "plant")]
    public void Topics_outside_the_filter_do_not_match(string filter, string topic)
    {
        Assert.False(MqttTopicFilter.TryMatch(filter, topic, out _));
    }

    [Theory]
    [InlineData("", "is required")]
    [InlineData("a/b#", "a wildcard must be a whole level")]
    [InlineData("a/#/b", "'#' must be the last level")]
    [InlineData("$SYS/#", "must not start with '$'")]
    public void Bad_filters_are_named(string filter, string problem)
    {
        Assert.StartsWith(problem, MqttTopicFilter.Problem(filter), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("edgerunner/dev/sensors/pump/reset", "pump")]
    [InlineData("edgerunner/dev/sensors/vib/m1/x/reset", "vib/m1/x")]
    [InlineData("edgerunner/dev/sensors/pump/result", null)]
    [InlineData("edgerunner/dev/sensors/reset", null)]
    [InlineData("edgerunner/other/sensors/pump/reset", null)]
    public void Reset_topics_name_their_stream(string topic, string? stream)
    {
        Assert.Equal(stream, new MqttTopics("edgerunner", "dev").StreamOfResetTopic(topic));
    }

    [Theory]
    [InlineData("", true, "command")]
    [InlineData("{}", true, "command")]
    [InlineData("{\"reason\":\"bearing replaced\"}", true, "bearing replaced")]
    [InlineData("{\"reason\":3}", false, "command")]
    [InlineData("reset please", false, "command")]
    [InlineData("[1]", false, "command")]
    public void Reset_payloads_are_empty_or_json_with_a_reason(string payload, bool accepted, string reason)
    {
        var ok = SensorResetCommands.TryReadResetReason(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(payload)), out var read);

        Assert.Equal(accepted, ok);
        if (ok)
        {
            Assert.Equal(reason, read);
        }
    }

    [Fact]
    public void Mqtt_source_keys_are_validated_by_name()
    {
        var sensors = new SensorsOptions
        {
            ["vib"] = new SensorStreamOptions
            {
                Model = "lstm",
                Source = new EdgeRunner.Service.Sensors.Sources.MqttSensorOptions
                {
                    Topic = "plant/#/accel",
                    QueueCapacity = 0,
                    MaxStreams = 0,
                    IdleTimeoutSeconds = -1,
                    Format = MqttPayloadFormat.Numbers,
                    Columns = ["ax", "ay", "az"],
                },
            },
        };
        var models = new ModelsOptions { ["lstm"] = new ModelOptions { Manifest = "model.json" } };

        var result = new SensorsOptionsValidator(Microsoft.Extensions.Options.Options.Create(models)).Validate(null, sensors);

        Assert.Equal(
            [
                "Sensors:vib:Source:Topic: '#' must be the last level (got 'plant/#/accel')",
                "Sensors:vib:Source:QueueCapacity: must be between 1 and 1000000 (got 0)",
                "Sensors:vib:Source:MaxStreams: must be between 1 and 100000 (got 0)",
                "Sensors:vib:Source:IdleTimeoutSeconds: must be between 0 and 10000000 (got -1)",
                "Sensors:vib:Source:Columns: names JSON fields; plain-number payloads are always in the model's channel order",
            ],
            result.Failures!);
    }

    [Theory]
    [InlineData("plant/x/+", "plant/x/tank", true, "plant/x/tank")]
    [InlineData("plant/x/tank", "plant/x/tank", true, "plant/x/tank")]
    [InlineData("plant/+/c", "plant/b/+", true, "plant/b/c")]
    [InlineData("plant/#", "plant", true, "plant")] // '#' matches the parent level too
    [InlineData("#", "a/+/b", true, "a/x/b")]
    [InlineData("a/+/#", "a/b/c/d", true, "a/b/c/d")]
    [InlineData("+/+", "a/b/c", false, "")]
    [InlineData("plant/+", "plant", false, "")] // '+' needs exactly one level
    [InlineData("plant/a/+", "plant/b/+", false, "")]
    [InlineData("plant/+/accel", "plant/+/temp", false, "")]
    [InlineData("a/b", "a/b/c", false, "")]
    [InlineData("a//b", "a/+/b", true, "a//b")] // an empty level is a level
    [InlineData("#", "$SYS/broker/load", false, "")] // a leading wildcard never matches a '$' topic
    [InlineData("+/broker/load", "$SYS/broker/load", false, "")]
    [InlineData("$SYS/#", "$SYS/broker/load", true, "$SYS/broker/load")]
    public void Topic_filters_overlap_when_some_topic_matches_both(string a, string b, bool overlap, string example)
    {
        Assert.Equal(overlap, MqttFilterOverlap.Overlaps(a, b, out var shown));
        Assert.Equal(overlap, MqttFilterOverlap.Overlaps(b, a, out _)); // symmetric
        Assert.Equal(example, overlap ? shown : string.Empty);
        if (overlap)
        {
            // The example really matches both (the daemon's own matcher).
            Assert.True(MqttTopicFilter.TryMatch(a, shown, out _));
            Assert.True(MqttTopicFilter.TryMatch(b, shown, out _));
        }
    }

    [Fact]
    public void Overlapping_or_duplicate_ingest_topics_across_entries_are_rejected_naming_both_keys()
    {
        static SensorStreamOptions Mqtt(string topic, bool enabled = true) => new()
        {
            Model = "lstm",
            Enabled = enabled,
            Source = new EdgeRunner.Service.Sensors.Sources.MqttSensorOptions { Topic = topic },
        };
        var sensors = new SensorsOptions
        {
            ["tank"] = Mqtt("plant/X/tank"),
            ["vib"] = Mqtt("plant/X/+"),
            ["tank2"] = Mqtt("plant/X/tank"),
            ["other"] = Mqtt("plant/Y/+"),
            ["off"] = Mqtt("plant/#", enabled: false), // disabled entries subscribe to nothing
        };
        var models = new ModelsOptions { ["lstm"] = new ModelOptions { Manifest = "model.json" } };

        var result = new SensorsOptionsValidator(Microsoft.Extensions.Options.Options.Create(models)).Validate(null, sensors);

        Assert.Equal(
            [
                "Sensors:vib:Source:Topic: overlaps Sensors:tank:Source:Topic ('plant/X/+' matches 'plant/X/tank'); a message must feed one stream only",
                "Sensors:tank2:Source:Topic: overlaps Sensors:tank:Source:Topic (both are 'plant/X/tank'); a message must feed one stream only",
                "Sensors:tank2:Source:Topic: overlaps Sensors:vib:Source:Topic ('plant/X/+' matches 'plant/X/tank'); a message must feed one stream only",
            ],
            result.Failures!);
    }

    [Fact]
    public void Checkpoint_files_of_streams_spanning_levels_stay_in_the_state_folder()
    {
        Assert.Equal(Path.Combine("/state", "vib%2Fm1%2F50%25.state"), StreamCheckpoint.PathFor("/state", "vib/m1/50%"));
        Assert.Equal(Path.Combine("/state", "pump.state"), StreamCheckpoint.PathFor("/state", "pump"));
    }
}
