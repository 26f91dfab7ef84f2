using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Sensors.Sources;
using Microsoft.Extensions.Configuration;

namespace EdgeRunner.UnitTests.Sensors;

/// <summary>
/// <c>Sensors:{id}:Source</c> is bound to the options type of its Kind (one file per kind under
/// Sensors/Sources), and the registry holds every kind once.
/// </summary>
public sealed class SensorSourceKindsTests
{
    private static IConfigurationRoot Config(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [Fact]
    public void Every_kind_is_registered_once_with_an_options_type_of_that_kind()
    {
        Assert.Equal(Enum.GetValues<SensorSourceKind>().Order(), SensorSourceKinds.All.Keys.Order());
        foreach (var (kind, sourceKind) in SensorSourceKinds.All)
        {
            var options = (SensorSourceOptions)Activator.CreateInstance(sourceKind.OptionsType)!;
            Assert.Equal(kind, options.Kind);
        }
    }

    [Fact]
    public void Each_source_binds_to_its_kinds_options_type_and_no_source_is_the_simulated_machine()
    {
        var config = Config(
            ("Sensors:bench:Model", "m"),
            ("Sensors:bench:Source:Kind", "serial"),
            ("Sensors:bench:Source:Port", "/dev/ttyUSB1"),
            ("Sensors:bench:Source:Columns:0", "ax"),
            ("Sensors:bench:Source:SampleRateHz", "50"),
            ("Sensors:sim:Model", "m"));
        var sensors = config.GetSection("Sensors").Get<SensorsOptions>()!;

        new SensorSourceBinder(config).Configure(sensors);

        var serial = Assert.IsType<SerialSensorOptions>(sensors["bench"].Source);
        Assert.Equal((SensorSourceKind.Serial, "/dev/ttyUSB1", 50.0, 115200), (serial.Kind, serial.Port, serial.SampleRateHz, serial.BaudRate));
        Assert.Equal(["ax"], Assert.IsType<string[]>(serial.Columns));
        var simulated = Assert.IsType<SimulatedVibrationSensorOptions>(sensors["sim"].Source);
        Assert.Equal(1, simulated.Seed);
    }

    [Theory]
    [InlineData("Loudspeaker")]
    [InlineData("42")]
    public void A_kind_that_is_none_fails_binding_naming_the_key(string kind)
    {
        var config = Config(("Sensors:x:Source:Kind", kind));

        var error = Assert.Throws<InvalidOperationException>(() => SensorSourceKinds.Bind(config.GetSection("Sensors:x:Source")));

        Assert.Contains("'Sensors:x:Source:Kind'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_no_kind_reads_is_an_unknown_key_of_the_streams_kind()
    {
        var config = Config(("Sensors:rec:Source:Kind", "Csv"), ("Sensors:rec:Source:Delimiter", ";"));
        var errors = new List<string>();

        SensorSourceKeyChecker.CollectUnknownKeys(config.GetSection("Sensors"), errors);

        Assert.Equal(["Sensors:rec:Source:Delimiter: unknown key (known keys of Kind Csv: Path, Columns, TimestampColumn, Speed, Loop, RecordingTime, Kind, SampleRateHz)"], errors);
    }
}
