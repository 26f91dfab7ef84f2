using System.Globalization;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary>
/// Builds and validates the <c>Audio</c> and <c>Serial</c> sensor sources from <c>Sensors:{id}:Source</c>.
/// Kept out of <see cref="SensorService"/> and <see cref="SensorsOptionsValidator"/> (one line each
/// there) so that source kinds added side by side do not touch the same lines.
/// </summary>
internal static class StreamSensorSources
{
    /// <summary>Creates the source for an <c>Audio</c> or <c>Serial</c> stream. Throws <see cref="SensorSourceException"/> naming the file, device or port.</summary>
    /// <param name="streamId">The stream id (for its logger).</param>
    /// <param name="source">The stream's <c>Source</c> section.</param>
    /// <param name="modelRateHz">The model's sample rate: audio is decoded to it unless <c>SampleRateHz</c> says otherwise.</param>
    /// <param name="timeProvider">Clock for pacing and timestamps.</param>
    /// <param name="loggerFactory">Loggers.</param>
    public static ISensorSource Create(string streamId, SensorSourceOptions source, double modelRateHz, TimeProvider timeProvider, ILoggerFactory loggerFactory)
    {
        var logger = loggerFactory.CreateLogger($"EdgeRunner.Sensor.{streamId}");
        return source.Kind switch
        {
            SensorSourceKind.Audio => new AudioSensorSource(
                new AudioSourceOptions
                {
                    Kind = string.IsNullOrEmpty(source.Path) ? AudioInputKind.Alsa : AudioInputKind.File,
                    Input = string.IsNullOrEmpty(source.Path) ? source.Device : source.Path,
                    Backend = source.Backend,
                    // Decoding straight to the model's rate lets ffmpeg's resampler do it, not linear interpolation.
                    SampleRateHz = (int)Math.Round(source.SampleRateHz > 0 ? source.SampleRateHz : modelRateHz),
                    Channels = source.Channels,
                    Speed = source.Speed,
                    Loop = source.Loop,
                },
                timeProvider,
                logger),
            SensorSourceKind.Serial => new SerialSensorSource(
                new SerialSourceOptions
                {
                    Port = source.Port,
                    BaudRate = source.BaudRate,
                    Columns = source.Columns ?? [],
                    TimestampField = source.TimestampColumn,
                    SampleRateHz = source.SampleRateHz,
                },
                timeProvider,
                logger),
            _ => throw new ArgumentOutOfRangeException(nameof(source), source.Kind, "Not an Audio or Serial source."),
        };
    }

    /// <summary>Adds one error per bad key of an <c>Audio</c> or <c>Serial</c> source under <paramref name="key"/> (<c>Sensors:{id}</c>); other kinds are left alone.</summary>
    public static void Validate(string key, SensorSourceOptions source, ValidationErrors e)
    {
        if (source.Kind == SensorSourceKind.Audio)
        {
            var hasFile = !string.IsNullOrWhiteSpace(source.Path);
            var hasDevice = !string.IsNullOrWhiteSpace(source.Device);
            if (hasFile == hasDevice)
            {
                e.Add($"{key}:Source:Path", $"Kind Audio needs either Path (an audio file) or Device (an ALSA device such as hw:1,0), not {(hasFile ? "both" : "neither")}");
            }
            else if (hasFile && !File.Exists(source.Path))
            {
                e.Add($"{key}:Source:Path", $"audio file '{source.Path}' does not exist");
            }

            if (hasFile && source.Backend != AudioCaptureBackend.Ffmpeg)
            {
                e.Add($"{key}:Source:Backend", $"{source.Backend} captures ALSA devices only; an audio file is decoded by ffmpeg");
            }

            if (!Enum.IsDefined(source.Backend))
            {
                e.Add($"{key}:Source:Backend", $"must be Ffmpeg or Arecord (got '{source.Backend}')");
            }

            e.Range($"{key}:Source:Channels", source.Channels, 1, 64);
            if (source.SampleRateHz != Math.Round(source.SampleRateHz))
            {
                e.Add($"{key}:Source:SampleRateHz", $"audio rates are whole hertz (got {source.SampleRateHz.ToString(CultureInfo.InvariantCulture)}); 0 = the model's rate");
            }

            e.Range($"{key}:Source:Speed", source.Speed, 0, 10_000);
        }
        else if (source.Kind == SensorSourceKind.Serial)
        {
            if (string.IsNullOrWhiteSpace(source.Port))
            {
                e.Add($"{key}:Source:Port", "is required for Kind Serial (e.g. /dev/ttyUSB0)");
            }
            // A port that does not exist yet is not a configuration error: the stream waits for the
            // device (a USB adapter plugged in after boot) and says so on its state topic.

            e.Range($"{key}:Source:BaudRate", source.BaudRate, 50, 4_000_000);
            if (source.Columns is not { Length: > 0 and <= 64 })
            {
                e.Add($"{key}:Source:Columns", "name the fields to read (indices, header names or JSON names), in the model's channel order (1 to 64)");
            }

            if (!(source.SampleRateHz > 0))
            {
                e.Add($"{key}:Source:SampleRateHz", "give the device's sample rate (lines per second)");
            }
        }
    }
}
