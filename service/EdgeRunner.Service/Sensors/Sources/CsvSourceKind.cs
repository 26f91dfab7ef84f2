using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary><c>Sensors:{id}:Source</c> of Kind <c>Csv</c>.</summary>
public sealed class CsvSensorOptions() : SensorSourceOptions(SensorSourceKind.Csv)
{
    /// <summary>The file (relative paths: the working directory, then the daemon's folder).</summary>
    public string Path { get; set; } = string.Empty;

    /// <summary>Columns to read, by header name (a prefix before a space matches, "A_X" for "A_X [g]") or zero-based index, in the model's channel order.</summary>
    public string[]? Columns { get; set; }

    /// <summary>Column with each sample's time (seconds or ISO 8601); empty for a fixed <see cref="SensorSourceOptions.SampleRateHz"/>.</summary>
    public string TimestampColumn { get; set; } = string.Empty;

    /// <summary>Replay speed (1 = as recorded, 0 = as fast as the model steps).</summary>
    public double Speed { get; set; } = 1;

    /// <summary>Start again at the end.</summary>
    public bool Loop { get; set; } = true;

    /// <summary>With a <see cref="TimestampColumn"/>: results carry the recording's own time (true) or the replay's clock (false).</summary>
    public bool RecordingTime { get; set; } = true;

    /// <inheritdoc/>
    internal override void ResolvePaths(Func<string, string> resolve) => Path = resolve(Path);
}

/// <summary>Kind <c>Csv</c>: a recorded stream replayed from a CSV/TSV file.</summary>
internal sealed class CsvSourceKind : SensorSourceKindBase<CsvSensorOptions>
{
    protected override void Validate(string key, CsvSensorOptions options, ValidationErrors errors)
    {
        if (string.IsNullOrWhiteSpace(options.Path) || !File.Exists(options.Path))
        {
            errors.Add($"{key}:Path", $"CSV file '{options.Path}' does not exist");
        }

        if (options.Columns is not { Length: > 0 })
        {
            errors.Add($"{key}:Columns", "name the columns to read, in the model's channel order");
        }

        if (string.IsNullOrEmpty(options.TimestampColumn) && !(options.SampleRateHz > 0))
        {
            errors.Add($"{key}:SampleRateHz", "give the recording's rate (or a TimestampColumn)");
        }

        errors.Range($"{key}:Speed", options.Speed, 0, 10_000);
    }

    protected override ISensorSource Create(CsvSensorOptions options, SensorSourceContext context) => new CsvSensorSource(
        new CsvSourceOptions
        {
            Path = options.Path,
            Columns = options.Columns ?? [],
            TimestampColumn = options.TimestampColumn,
            SampleRateHz = options.SampleRateHz,
            Speed = options.Speed,
            Loop = options.Loop,
            RecordingTime = options.RecordingTime,
        },
        context.TimeProvider,
        context.Logger);
}
