using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary>Kind <c>Audio</c>: PCM audio, an audio file replayed or live ALSA capture (through ffmpeg or arecord).</summary>
internal sealed class AudioSourceKind : ISensorSourceKind
{
    public SensorSourceKind Kind => SensorSourceKind.Audio;

    public ISensorSource Create(SensorSourceOptions options, SensorSourceContext context)
    {
        if (!string.IsNullOrEmpty(options.Path))
        {
            // A file is there or not (checked at validation): nothing to wait for.
            return StreamSensorSources.Create(context.StreamId, options, context.ModelRateHz, context.TimeProvider, context.LoggerFactory);
        }

        // Live capture starts its program on the first read; a missing one is an installation error, not an absent device.
        var (program, package) = options.Backend == AudioCaptureBackend.Arecord ? ("arecord", "alsa-utils") : ("ffmpeg", "ffmpeg");
        if (!IsOnPath(program))
        {
            throw new StartupException($"Sensors:{context.StreamId}:Source:Backend: '{program}' is not installed (install the Debian package '{package}')", StartupException.ConfigError);
        }

        return context.Supervise(
            $"ALSA device {options.Device}",
            () => StreamSensorSources.Create(context.StreamId, options, context.ModelRateHz, context.TimeProvider, context.LoggerFactory),
            Math.Round(context.RateOr(options.SampleRateHz)));
    }

    public int? ConfiguredChannels(SensorSourceOptions options) => options.Channels;

    private static bool IsOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(directory => File.Exists(Path.Combine(directory, program)));
}
