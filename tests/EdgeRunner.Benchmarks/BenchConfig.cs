using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using Perfolizer.Horology;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// Short, in-process job: the machine is small and shared, and an in-process run neither rebuilds the
/// solution in the source tree (other engineers build it concurrently) nor separates the benchmarks of
/// one class into different processes (the ORT-vs-EdgeRunner comparison must share one process).
/// 1 launch, 3 warm-up and 10 measured iterations of ~250 ms each.
/// </summary>
public sealed class BenchConfig : ManualConfig
{
    public BenchConfig()
    {
        AddJob(Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(10)
            .WithIterationTime(TimeInterval.FromMilliseconds(250))
            .WithId("Short-InProcess"));
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(StatisticColumn.Median, StatisticColumn.OperationsPerSecond, new SamplesPerSecondColumn());
        AddColumnProvider(DefaultColumnProviders.Instance);
        AddLogger(DefaultConfig.Instance.GetLoggers().ToArray());
        AddExporter(DefaultConfig.Instance.GetExporters().ToArray());
        AddAnalyser(DefaultConfig.Instance.GetAnalysers().ToArray());
        AddValidator(DefaultConfig.Instance.GetValidators().ToArray());
        WithOptions(ConfigOptions.JoinSummary);
        WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(30));
        WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared));
    }
}

/// <summary>
/// Sensor samples per second for the sequence benchmarks: streams × samples per step ÷ mean step time.
/// Empty for benchmarks without a <c>Streams</c> parameter.
/// </summary>
internal sealed class SamplesPerSecondColumn : IColumn
{
    public string Id => nameof(SamplesPerSecondColumn);

    public string ColumnName => "Samples/s";

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => "Sensor samples (per channel) consumed per second: Streams x new samples per step (the benchmark's SamplesPerChunk: 50 for the vibration LSTM, 512 for silero-vad) / mean time";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var streams = benchmarkCase.Parameters.Items.FirstOrDefault(p => p.Name == "Streams")?.Value;
        var report = summary[benchmarkCase];
        if (streams is not int n || report?.ResultStatistics is not { } stats)
        {
            return "-";
        }

        var samplesPerStep = benchmarkCase.Descriptor.Type.GetField("SamplesPerChunk")?.GetValue(null) is int perStep ? perStep : SequenceBenchmarks.SamplesPerChunk;
        var perSecond = n * samplesPerStep / (stats.Mean * 1e-9);
        return perSecond.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
    }

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
