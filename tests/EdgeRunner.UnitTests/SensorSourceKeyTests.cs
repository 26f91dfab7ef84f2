using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using EdgeRunner.Service;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Configuration;

namespace EdgeRunner.UnitTests;

/// <summary>
/// Keys under <c>Sensors:{id}:Source</c> that the stream's Kind does not read are configuration errors naming
/// the key and the kinds that take it (each Kind binds its own options type, and a key of another Kind says whose it is).
/// </summary>
public sealed partial class SensorSourceKeyTests
{
    private static readonly SensorSourceKind[] AllKinds = Enum.GetValues<SensorSourceKind>();

    /// <summary>Every Source key of every Kind, as docs/sensors.md's <c>Sensors:{id}</c> table documents it.</summary>
    public static TheoryData<SensorSourceKind, string> DocumentedKeys()
    {
        var data = new TheoryData<SensorSourceKind, string>();
        foreach (var (key, kinds) in ReadmeSourceKeys())
        {
            foreach (var kind in kinds)
            {
                data.Add(kind, key);
            }
        }

        return data;
    }

    /// <summary>Every Source key of the table that a Kind does not read.</summary>
    public static TheoryData<SensorSourceKind, string> ForeignKeys()
    {
        var data = new TheoryData<SensorSourceKind, string>();
        foreach (var kind in AllKinds)
        {
            foreach (var key in SourceProperties().Select(p => p.Name).Where(k => !Allowed(kind, k)))
            {
                data.Add(kind, key);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(DocumentedKeys))]
    public void Each_kind_accepts_every_key_the_readme_documents_for_it(SensorSourceKind kind, string key)
    {
        var config = key == nameof(SensorSourceOptions.Kind)
            ? Config(("Sensors:s:Source:Kind", kind.ToString()))
            : Config(("Sensors:s:Source:Kind", kind.ToString()), (SourceKey("s", key), "1"));

        Assert.Empty(KeyErrors(config));
    }

    [Fact]
    public void The_table_of_keys_per_kind_matches_the_readme_both_ways()
    {
        var documented = ReadmeSourceKeys();
        var expected = SourceProperties().Select(p => p.Name).Order(StringComparer.Ordinal).ToList();

        // Every option is documented, every documented key is an option.
        Assert.Equal(expected, documented.Keys.Order(StringComparer.Ordinal).ToList());
        foreach (var (key, kinds) in documented)
        {
            var inTable = AllKinds.Where(k => Allowed(k, key)).ToList();
            Assert.True(kinds.SetEquals(inTable), $"Source:{key}: docs/sensors.md says {string.Join(", ", kinds)}; the checker's table says {string.Join(", ", inTable)}");
        }
    }

    [Theory]
    [MemberData(nameof(ForeignKeys))]
    public void Every_key_of_another_kind_is_refused_naming_the_key_and_the_kind(SensorSourceKind kind, string key)
    {
        var config = Config(("Sensors:s:Source:Kind", kind.ToString()), (SourceKey("s", key), "1"));

        var error = Assert.Single(KeyErrors(config));
        Assert.StartsWith($"Sensors:s:Source:{key}: not used by Kind {kind} (it is for ", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SimulatedVibration", "Path", "Sensors:s:Source:Path: not used by Kind SimulatedVibration (it is for Csv and Audio)")]
    [InlineData("Csv", "TimestampField", "Sensors:s:Source:TimestampField: not used by Kind Csv (it is for Mqtt; Csv uses TimestampColumn)")]
    [InlineData("I2c", "Device", "Sensors:s:Source:Device: not used by Kind I2c (it is for Audio; I2c uses Chip)")]
    [InlineData("Gpio", "Chip", "Sensors:s:Source:Chip: not used by Kind Gpio (it is for I2c; Gpio uses GpioChip)")]
    [InlineData("Audio", "Chip", "Sensors:s:Source:Chip: not used by Kind Audio (it is for I2c; Audio uses Device)")]
    [InlineData("Serial", "Pins", "Sensors:s:Source:Pins: not used by Kind Serial (it is for Gpio; Serial uses Columns)")]
    [InlineData("Mqtt", "TimestampColumn", "Sensors:s:Source:TimestampColumn: not used by Kind Mqtt (it is for Csv and Serial; Mqtt uses TimestampField)")]
    [InlineData("Mqtt", "Path", "Sensors:s:Source:Path: not used by Kind Mqtt (it is for Csv and Audio)")]
    public void A_foreign_key_per_kind_gets_the_most_helpful_hint(string kind, string key, string expected)
    {
        var config = Config(("Sensors:s:Source:Kind", kind), (SourceKey("s", key), "1"));

        Assert.Equal([expected], KeyErrors(config));
    }

    [Fact]
    public void A_serial_source_with_the_mqtt_timestamp_field_pins_and_a_topic_names_all_three()
    {
        var config = Config(
            ("Sensors:bench:Model", "m"),
            ("Sensors:bench:Source:Kind", "Serial"),
            ("Sensors:bench:Source:Port", "/dev/ttyUSB0"),
            ("Sensors:bench:Source:SampleRateHz", "100"),
            ("Sensors:bench:Source:TimestampField", "t"),
            ("Sensors:bench:Source:Pins:0", "17"),
            ("Sensors:bench:Source:Topic", "plant/x"));

        Assert.Equal(
            [
                "Sensors:bench:Source:Pins: not used by Kind Serial (it is for Gpio; Serial uses Columns)",
                "Sensors:bench:Source:TimestampField: not used by Kind Serial (it is for Mqtt; Serial uses TimestampColumn)",
                "Sensors:bench:Source:Topic: not used by Kind Serial (it is for Mqtt)",
            ],
            KeyErrors(config).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Without_a_kind_key_the_default_kind_is_checked()
    {
        var config = Config(("Sensors:s:Source:Pins:0", "17"));

        Assert.Equal(["Sensors:s:Source:Pins: not used by Kind SimulatedVibration (it is for Gpio)"], KeyErrors(config));
    }

    [Fact]
    public void Keys_and_kind_are_matched_without_regard_to_case_and_the_message_names_the_key_as_written()
    {
        var config = Config(("Sensors:s:Source:kind", "serial"), ("Sensors:s:Source:timestampfield", "t"), ("Sensors:s:Source:PORT", "/dev/ttyUSB0"));

        Assert.Equal(["Sensors:s:Source:timestampfield: not used by Kind Serial (it is for Mqtt; Serial uses TimestampColumn)"], KeyErrors(config));
    }

    [Fact]
    public void Unknown_keys_and_unknown_kinds_are_left_to_the_other_checks()
    {
        var unknownKey = Config(("Sensors:s:Source:Kind", "Serial"), ("Sensors:s:Source:Baud", "9600"));
        var unknownKind = Config(("Sensors:s:Source:Kind", "Modbus"), ("Sensors:s:Source:Pins:0", "17"));

        // One message for the misspelt key: the unknown-key one, not also "not used by Kind".
        Assert.StartsWith("Sensors:s:Source:Baud: unknown key", Assert.Single(KeyErrors(unknownKey)), StringComparison.Ordinal);
        Assert.Empty(KeyErrors(unknownKind));
    }

    [Theory]
    [InlineData("MaxStreams", "50")]
    [InlineData("IdleTimeoutSeconds", "0")]
    public void Wildcard_only_keys_on_a_topic_without_a_wildcard_are_refused(string key, string value)
    {
        var single = Config(("Sensors:vib:Source:Kind", "Mqtt"), ("Sensors:vib:Source:Topic", "plant/m1/accel"), ($"Sensors:vib:Source:{key}", value));
        var plus = Config(("Sensors:vib:Source:Kind", "Mqtt"), ("Sensors:vib:Source:Topic", "plant/+/accel"), ($"Sensors:vib:Source:{key}", value));
        var hash = Config(("Sensors:vib:Source:Kind", "Mqtt"), ("Sensors:vib:Source:Topic", "plant/#"), ($"Sensors:vib:Source:{key}", value));

        Assert.Equal(
            [$"Sensors:vib:Source:{key}: only applies to a Topic with a wildcard ('+' or '#'), which makes one stream per matching topic; 'plant/m1/accel' is a single stream"],
            KeyErrors(single));
        Assert.Empty(KeyErrors(plus));
        Assert.Empty(KeyErrors(hash));
    }

    [Fact]
    public void Values_left_at_their_defaults_are_not_keys_present()
    {
        // The options types have a value for every key (Topic "", MaxStreams 100, ...): only keys written count.
        var config = Config(("Sensors:bench:Source:Kind", "Serial"), ("Sensors:bench:Source:Port", "/dev/ttyUSB0"), ("Sensors:bench:Source:SampleRateHz", "100"));

        Assert.Empty(KeyErrors(config));
    }

    [Fact]
    public void Environment_variable_and_command_line_forms_are_caught_the_same_way()
    {
        // Stream ids of their own, so no other configuration built in this process can meet the variable.
        var envStream = $"env{Guid.NewGuid():N}";
        var variable = $"{EdgeRunnerHost.EnvironmentPrefix}Sensors__{envStream}__Source__Pins__0";
        var file = Path.Combine(Path.GetTempPath(), $"edgerunner-keys-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, $$"""
            { "Sensors": {
                "{{envStream}}": { "Model": "m", "Source": { "Kind": "Serial", "Port": "/dev/ttyUSB0", "SampleRateHz": 100 } },
                "cli": { "Model": "m", "Source": { "Kind": "Csv", "Path": "x.csv", "Columns": [ "a" ] } } } }
            """);
        Environment.SetEnvironmentVariable(variable, "17");
        try
        {
            var config = EdgeRunnerHost.BuildConfiguration(file, ["--Sensors:cli:Source:TimestampField=t"]);

            Assert.Equal(
                [
                    "Sensors:cli:Source:TimestampField: not used by Kind Csv (it is for Mqtt; Csv uses TimestampColumn)",
                    $"Sensors:{envStream}:Source:Pins: not used by Kind Serial (it is for Gpio; Serial uses Columns)",
                ],
                KeyErrors(config).Order(StringComparer.Ordinal));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
            File.Delete(file);
        }
    }

    [Fact]
    public void The_host_level_check_reports_a_foreign_key_before_any_value_check()
    {
        var config = Config(("Sensors:bench:Model", "m"), ("Sensors:bench:Source:Kind", "Serial"), ("Sensors:bench:Source:TimestampField", "t"));
        using var host = EdgeRunnerHost.Build(config);

        var errors = EdgeRunnerHost.FindConfigurationErrors(config, host.Services);

        Assert.Equal(["Sensors:bench:Source:TimestampField: not used by Kind Serial (it is for Mqtt; Serial uses TimestampColumn)"], errors);
    }

    private static bool Allowed(SensorSourceKind kind, string key) =>
        SensorSourceKeyChecker.CommonKeys.Contains(key) || SensorSourceKeyChecker.KeysByKind[kind].Contains(key);

    /// <summary>Every key of every Kind: the properties of the kinds' options types, each name once.</summary>
    private static IEnumerable<PropertyInfo> SourceProperties() =>
        EdgeRunner.Service.Sensors.Sources.SensorSourceKinds.All.Values
            .SelectMany(k => k.OptionsType.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            .Where(p => p.CanWrite)
            .DistinctBy(p => p.Name);

    /// <summary>A list option is written as its first element (<c>Pins:0</c>), the way JSON arrays and variables give it.</summary>
    private static string SourceKey(string stream, string key) =>
        SourceProperties().Single(p => p.Name == key).PropertyType.IsArray ? $"Sensors:{stream}:Source:{key}:0" : $"Sensors:{stream}:Source:{key}";

    private static IConfigurationRoot Config(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    /// <summary>The key-level checks of the Sensors section, as EdgeRunnerHost.FindConfigurationErrors runs them.</summary>
    private static List<string> KeyErrors(IConfiguration config)
    {
        var errors = new List<string>();
        SensorSourceKeyChecker.CollectUnknownKeys(config.GetSection("Sensors"), errors);
        return errors;
    }

    /// <summary>
    /// The <c>Source:*</c> rows of docs/sensors.md's <c>Sensors:{id}</c> table, each with the kinds its default and
    /// meaning name in backticks (<c>Source:Kind</c> and <c>Source:SampleRateHz</c> name them all).
    /// </summary>
    private static Dictionary<string, HashSet<SensorSourceKind>> ReadmeSourceKeys()
    {
        var lines = File.ReadAllLines(Path.Combine(RepoRoot(), "docs", "sensors.md"));
        var start = Array.FindIndex(lines, l => l.StartsWith("## `Sensors:{id}`", StringComparison.Ordinal));
        Assert.True(start >= 0, "docs/sensors.md has no ## `Sensors:{id}` section");
        var rows = new Dictionary<string, HashSet<SensorSourceKind>>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(start + 1).SkipWhile(l => !l.StartsWith('|')).TakeWhile(l => l.StartsWith('|')))
        {
            var cells = line.Split('|');
            if (SourceRow().Match(cells[1]) is not { Success: true } row)
            {
                continue;
            }

            var kinds = Backticked().Matches(cells[2] + cells[3])
                .Select(m => m.Groups[1].Value)
                .Where(Enum.GetNames<SensorSourceKind>().Contains)
                .Select(Enum.Parse<SensorSourceKind>)
                .ToHashSet();
            rows.Add(row.Groups[1].Value, kinds);
        }

        return rows;
    }

    private static string RepoRoot([CallerFilePath] string path = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, "..", ".."));

    [GeneratedRegex(@"^\s*`Source:(\w+)`\s*$")]
    private static partial Regex SourceRow();

    [GeneratedRegex(@"`(\w+)`")]
    private static partial Regex Backticked();
}
