using System.Globalization;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary><c>Sensors:{id}:Source</c> of Kind <c>Audio</c>.</summary>
public sealed class AudioSensorOptions() : SensorSourceOptions(SensorSourceKind.Audio)
{
    /// <summary>An audio file (WAV or anything ffmpeg decodes) to replay; give either this or <see cref="Device"/>.</summary>
    public string Path { get; set; } = string.Empty;

    /// <summary>Files: replay speed (1 = as recorded, 0 = as fast as the model steps).</summary>
    public double Speed { get; set; } = 1;

    /// <summary>Files: start again at the end.</summary>
    public bool Loop { get; set; } = true;

    /// <summary>The ALSA capture device (<c>hw:1,0</c>, <c>plughw:1,0</c>, <c>default</c>) for live capture; give either this or <see cref="Path"/> (an audio file).</summary>
    public string Device { get; set; } = string.Empty;

    /// <summary>Program capturing the ALSA <see cref="Device"/>: <c>Ffmpeg</c> or <c>Arecord</c> (files are always decoded by ffmpeg).</summary>
    public AudioCaptureBackend Backend { get; set; } = AudioCaptureBackend.Ffmpeg;

    /// <summary>Channels delivered (a file is down- or upmixed to it; the device is asked for it).</summary>
    public int Channels { get; set; } = 1;

    /// <inheritdoc/>
    internal override void ResolvePaths(Func<string, string> resolve) => Path = resolve(Path);
}

/// <summary>
/// Kind <c>Audio</c>: PCM audio, an audio file replayed or live ALSA capture (through ffmpeg or arecord);
/// live capture is opened under supervision (a microphone unplugged is waited for).
/// </summary>
internal sealed class AudioSourceKind : SensorSourceKindBase<AudioSensorOptions>
{
    /// <summary>Creates the source without supervision. Throws <see cref="SensorSourceException"/> naming the file or device.</summary>
    public static AudioSensorSource Open(AudioSensorOptions options, SensorSourceContext context) => new(
        new AudioSourceOptions
        {
            Kind = string.IsNullOrEmpty(options.Path) ? AudioInputKind.Alsa : AudioInputKind.File,
            Input = string.IsNullOrEmpty(options.Path) ? options.Device : options.Path,
            Backend = options.Backend,
            // Decoding straight to the model's rate lets ffmpeg's resampler do it, not linear interpolation.
            SampleRateHz = (int)Math.Round(context.RateOr(options.SampleRateHz)),
            Channels = options.Channels,
            Speed = options.Speed,
            Loop = options.Loop,
        },
        context.TimeProvider,
        context.LoggerFactory.CreateLogger($"EdgeRunner.Sensor.{context.StreamId}"));

    protected override void Validate(string key, AudioSensorOptions options, ValidationErrors errors)
    {
        var hasFile = !string.IsNullOrWhiteSpace(options.Path);
        var hasDevice = !string.IsNullOrWhiteSpace(options.Device);
        if (hasFile == hasDevice)
        {
            errors.Add($"{key}:Path", $"Kind Audio needs either Path (an audio file) or Device (an ALSA device such as hw:1,0), not {(hasFile ? "both" : "neither")}");
        }
        else if (hasFile && !File.Exists(options.Path))
        {
            errors.Add($"{key}:Path", $"audio file '{options.Path}' does not exist");
        }

        if (hasFile && options.Backend != AudioCaptureBackend.Ffmpeg)
        {
            errors.Add($"{key}:Backend", $"{options.Backend} captures ALSA devices only; an audio file is decoded by ffmpeg");
        }

        if (!Enum.IsDefined(options.Backend))
        {
            errors.Add($"{key}:Backend", $"must be Ffmpeg or Arecord (got '{options.Backend}')");
        }

        errors.Range($"{key}:Channels", options.Channels, 1, 64);
        if (options.SampleRateHz != Math.Round(options.SampleRateHz))
        {
            errors.Add($"{key}:SampleRateHz", $"audio rates are whole hertz (got {options.SampleRateHz.ToString(CultureInfo.InvariantCulture)}); 0 = the model's rate");
        }

        errors.Range($"{key}:Speed", options.Speed, 0, 10_000);
    }

    protected override ISensorSource Create(AudioSensorOptions options, SensorSourceContext context)
    {
        if (!string.IsNullOrEmpty(options.Path))
        {
            // A file is there or not (checked at validation): nothing to wait for.
            return Open(options, context);
        }

        // Live capture starts its program on the first read; a missing one is an installation error, not an absent device.
        var (program, package) = options.Backend == AudioCaptureBackend.Arecord ? ("arecord", "alsa-utils") : ("ffmpeg", "ffmpeg");
        if (!IsOnPath(program))
        {
            throw new StartupException($"Sensors:{context.StreamId}:Source:Backend: '{program}' is not installed (install the Debian package '{package}')", StartupException.ConfigError);
        }

        return context.Supervise($"ALSA device {options.Device}", () => Open(options, context), Math.Round(context.RateOr(options.SampleRateHz)));
    }

    protected override int? ConfiguredChannels(AudioSensorOptions options) => options.Channels;

    private static bool IsOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(directory => File.Exists(System.IO.Path.Combine(directory, program)));
}
