using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary>Kind <c>Csv</c>: a recorded stream replayed from a CSV/TSV file.</summary>
internal sealed class CsvSourceKind : ISensorSourceKind
{
    public SensorSourceKind Kind => SensorSourceKind.Csv;

    public ISensorSource Create(SensorSourceOptions options, SensorSourceContext context) => new CsvSensorSource(
        new CsvSourceOptions
        {
            Path = options.Path,
            Columns = options.Columns ?? [],
            TimestampColumn = options.TimestampColumn,
            SampleRateHz = options.SampleRateHz,
            Speed = options.Speed,
            Loop = options.Loop,
        },
        context.TimeProvider,
        context.Logger);

    public int? ConfiguredChannels(SensorSourceOptions options) => null;
}
