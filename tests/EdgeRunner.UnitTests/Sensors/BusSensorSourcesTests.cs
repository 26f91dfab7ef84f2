using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Sensors.Sources;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.UnitTests.Sensors;

/// <summary>The daemon's configuration of I2c and Gpio sensor sources: binding, validation, construction.</summary>
public sealed class BusSensorSourcesTests
{
    private static IConfigurationRoot Config(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    private static List<string> Validate(SensorsOptions sensors)
    {
        var models = new ModelsOptions { ["seq"] = new ModelOptions { Path = "seq.onnx", Manifest = "seq.json" } };
        var result = new SensorsOptionsValidator(Microsoft.Extensions.Options.Options.Create(models)).Validate(null, sensors);
        return result.Failed ? [.. result.Failures] : [];
    }

    [Fact]
    public void The_keys_bind_including_a_hex_address()
    {
        var config = Config(
            ("Sensors:vib:Model", "seq"),
            ("Sensors:vib:Source:Kind", "I2c"),
            ("Sensors:vib:Source:Chip", "Mpu6050"),
            ("Sensors:vib:Source:BusId", "3"),
            ("Sensors:vib:Source:Address", "0x69"),
            ("Sensors:vib:Source:RangeG", "8"),
            ("Sensors:door:Model", "seq"),
            ("Sensors:door:Source:Kind", "Gpio"),
            ("Sensors:door:Source:Pins:0", "17"),
            ("Sensors:door:Source:Pins:1", "27"),
            ("Sensors:door:Source:GpioChip", "0"),
            ("Sensors:door:Source:Edge", "Both"),
            ("Sensors:door:Source:Pull", "Up"),
            ("Sensors:door:Source:DebounceMs", "5"));
        var unknown = new List<string>();
        SensorSourceKeyChecker.CollectUnknownKeys(config.GetSection("Sensors"), unknown);
        var sensors = new SensorsOptions();

        config.GetSection("Sensors").Bind(sensors);
        new SensorSourceBinder(config).Configure(sensors);

        Assert.Empty(unknown);
        var vib = Assert.IsType<I2cSensorOptions>(sensors["vib"].Source);
        Assert.Equal((SensorSourceKind.I2c, I2cSensorChip.Mpu6050, 3, 0x69, 8), (vib.Kind, vib.Chip, vib.BusId, vib.Address, vib.RangeG));
        var door = Assert.IsType<GpioSensorOptions>(sensors["door"].Source);
        Assert.Equal(new[] { 17, 27 }, door.Pins);
        Assert.Equal((SensorSourceKind.Gpio, 0, GpioEdge.Both, GpioPull.Up, 5.0), (door.Kind, door.GpioChip, door.Edge, door.Pull, door.DebounceMs));
        Assert.Empty(Validate(sensors));
    }

    [Fact]
    public void Invalid_I2c_keys_are_reported_by_name()
    {
        var sensors = new SensorsOptions
        {
            ["env"] = new() { Model = "seq", Source = new I2cSensorOptions { Address = 0x80, BusId = -1, SampleRateHz = 5000 } },
            ["vib"] = new() { Model = "seq", Source = new I2cSensorOptions { Chip = I2cSensorChip.Adxl345, RangeG = 3 } },
        };

        var errors = Validate(sensors);

        Assert.Contains(errors, e => e.StartsWith("Sensors:env:Source:Chip:", StringComparison.Ordinal) && e.Contains("Adxl345", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Sensors:env:Source:Address:", StringComparison.Ordinal) && e.Contains("0x80", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Sensors:env:Source:BusId:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Sensors:env:Source:SampleRateHz:", StringComparison.Ordinal) && e.Contains("1000", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Sensors:vib:Source:RangeG:", StringComparison.Ordinal));
    }

    [Fact]
    public void Invalid_Gpio_keys_are_reported_by_name()
    {
        var sensors = new SensorsOptions
        {
            ["none"] = new() { Model = "seq", Source = new GpioSensorOptions() },
            ["bad"] = new() { Model = "seq", Source = new GpioSensorOptions { Pins = [4, 4, -1], GpioChip = -2, DebounceMs = -1 } },
        };

        var errors = Validate(sensors);

        Assert.Contains(errors, e => e.StartsWith("Sensors:none:Source:Pins:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Sensors:bad:Source:Pins:", StringComparison.Ordinal) && e.Contains("twice", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Sensors:bad:Source:Pins:", StringComparison.Ordinal) && e.Contains("negative", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Sensors:bad:Source:GpioChip:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Sensors:bad:Source:DebounceMs:", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(I2cSensorChip.Adxl345, 0x53)]
    [InlineData(I2cSensorChip.Mpu6050, 0x68)]
    [InlineData(I2cSensorChip.Bme280, 0x77)]
    public void Address_zero_means_the_chips_usual_address(I2cSensorChip chip, int expected)
    {
        Assert.Equal(expected, I2cSourceKind.AddressOf(new I2cSensorOptions { Chip = chip }));
        Assert.Equal(0x76, I2cSourceKind.AddressOf(new I2cSensorOptions { Chip = chip, Address = 0x76 }));
    }

    [Fact]
    public void Creating_an_I2c_source_on_a_missing_bus_names_the_bus_device()
    {
        var options = new I2cSensorOptions { Chip = I2cSensorChip.Bme280, BusId = 250, SampleRateHz = 1 };

        var error = Assert.Throws<SensorSourceException>(() => I2cSourceKind.Open(options, 100, TimeProvider.System, NullLogger.Instance));

        Assert.Contains("cannot open I2C bus 250 (/dev/i2c-250)", error.Message, StringComparison.Ordinal);
        Assert.Contains("0x77", error.Message, StringComparison.Ordinal);
    }
}
