using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Sensors.Sources;
using Microsoft.Extensions.Configuration;

namespace EdgeRunner.UnitTests;

/// <summary>Configuration of the Audio and Serial sensor sources: known keys, and errors that name the key.</summary>
public sealed class StreamSensorSourceConfigurationTests
{
    private static IReadOnlyList<string> Validate(SensorSourceOptions source)
    {
        var sensors = new SensorsOptions { ["mic"] = new SensorStreamOptions { Model = "m", Source = source } };
        var result = new SensorsOptionsValidator(Microsoft.Extensions.Options.Options.Create(new ModelsOptions())).Validate(null, sensors);
        // The model 'm' does not exist here: only the Source errors matter.
        return [.. (result.Failures ?? []).Where(f => f.StartsWith("Sensors:mic:Source", StringComparison.Ordinal))];
    }

    [Fact]
    public void The_new_keys_are_known_and_bind()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Sensors:mic:Source:Kind"] = "Audio",
            ["Sensors:mic:Source:Device"] = "plughw:1,0",
            ["Sensors:mic:Source:Backend"] = "arecord",
            ["Sensors:mic:Source:Channels"] = "2",
            ["Sensors:bench:Source:Kind"] = "Serial",
            ["Sensors:bench:Source:Port"] = "/dev/ttyUSB0",
            ["Sensors:bench:Source:BaudRate"] = "9600",
        }).Build();
        var errors = new List<string>();

        SensorSourceKeyChecker.CollectUnknownKeys(config.GetSection("Sensors"), errors);
        var sensors = config.GetSection("Sensors").Get<SensorsOptions>()!;
        new SensorSourceBinder(config).Configure(sensors);

        Assert.Empty(errors);
        Assert.Equal(SensorSourceKind.Audio, sensors["mic"].Source.Kind);
        Assert.Equal(AudioCaptureBackend.Arecord, Assert.IsType<AudioSensorOptions>(sensors["mic"].Source).Backend);
        Assert.Equal(2, ((AudioSensorOptions)sensors["mic"].Source).Channels);
        Assert.Equal(SensorSourceKind.Serial, sensors["bench"].Source.Kind);
        Assert.Equal(9600, Assert.IsType<SerialSensorOptions>(sensors["bench"].Source).BaudRate);
    }

    [Fact]
    public void Audio_needs_a_file_or_a_device_and_says_which_key()
    {
        Assert.Equal(
            ["Sensors:mic:Source:Path: Kind Audio needs either Path (an audio file) or Device (an ALSA device such as hw:1,0), not neither"],
            Validate(new AudioSensorOptions()));
        Assert.Contains(
            "Sensors:mic:Source:Path: Kind Audio needs either Path (an audio file) or Device (an ALSA device such as hw:1,0), not both",
            Validate(new AudioSensorOptions { Path = "/x.wav", Device = "hw:1,0" }));
        Assert.Equal(
            ["Sensors:mic:Source:Path: audio file '/nonexistent/x.wav' does not exist"],
            Validate(new AudioSensorOptions { Path = "/nonexistent/x.wav" }));
    }

    [Fact]
    public void Audio_values_out_of_range_name_their_keys()
    {
        var errors = Validate(new AudioSensorOptions
        {
            Device = "hw:1,0",
            Channels = 0,
            SampleRateHz = 16000.5,
            Speed = -1,
        });

        Assert.Contains("Sensors:mic:Source:Channels: must be between 1 and 64 (got 0)", errors);
        Assert.Contains(errors, e => e.StartsWith("Sensors:mic:Source:SampleRateHz: audio rates are whole hertz (got 16000.5)", StringComparison.Ordinal));
        Assert.Contains("Sensors:mic:Source:Speed: must be between 0 and 10000 (got -1)", errors);
        Assert.Empty(Validate(new AudioSensorOptions { Device = "hw:1,0", Backend = AudioCaptureBackend.Arecord }));
    }

    [Fact]
    public void Arecord_cannot_decode_a_file()
    {
        var wav = Path.GetTempFileName();
        try
        {
            Assert.Equal(
                ["Sensors:mic:Source:Backend: Arecord captures ALSA devices only; an audio file is decoded by ffmpeg"],
                Validate(new AudioSensorOptions { Path = wav, Backend = AudioCaptureBackend.Arecord }));
        }
        finally
        {
            File.Delete(wav);
        }
    }

    [Fact]
    public void Serial_errors_name_port_baud_rate_columns_and_rate()
    {
        Assert.Equal(
            [
                "Sensors:mic:Source:Port: is required for Kind Serial (e.g. /dev/ttyUSB0)",
                "Sensors:mic:Source:Columns: name the fields to read (indices, header names or JSON names), in the model's channel order (1 to 64)",
                "Sensors:mic:Source:SampleRateHz: give the device's sample rate (lines per second)",
            ],
            Validate(new SerialSensorOptions()));

        var errors = Validate(new SerialSensorOptions { Port = "/dev/ttyEDGERUNNER-missing", BaudRate = 0, Columns = ["0"], SampleRateHz = 100 });

        // A port missing now is waited for at run time (the stream reports itself unavailable), not a configuration error.
        Assert.Equal(["Sensors:mic:Source:BaudRate: must be between 50 and 4000000 (got 0)"], errors);
    }
}
