using BenchmarkDotNet.Running;
using EdgeRunner.Benchmarks;

// BenchmarkDotNet entry point (see docs/performance.md):
//   dotnet run -c Release --project tests/EdgeRunner.Benchmarks --artifacts-path /tmp/bench-art -- --filter '*'
// Extra mode, not BenchmarkDotNet: interleaved A/B measurement of ModelSession.Run vs InferenceSession.Run,
// robust to load drifting between two sequential BenchmarkDotNet runs on a shared machine:
//   dotnet run -c Release --project tests/EdgeRunner.Benchmarks --artifacts-path /tmp/bench-art -- ratio [rounds] [framesPerRound]
// and an exact per-call managed allocation check of every hot path (calling thread only):
//   dotnet run -c Release --project tests/EdgeRunner.Benchmarks --artifacts-path /tmp/bench-art -- allocs [calls]
if (args.Length > 0 && args[0] == "ratio")
{
    var rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 15;
    var frames = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 300;
    InterleavedRatio.Run(rounds, frames, Console.Out);
    return 0;
}

// and the publisher's QoS 1 throughput through the disk spool against a local mosquitto (docs/performance.md §10):
//   dotnet run -c Release --project tests/EdgeRunner.Benchmarks --artifacts-path /tmp/bench-art -- spool-throughput [messages]
if (args.Length > 0 && args[0] == "spool-throughput")
{
    SpoolThroughput.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 50_000, Console.Out);
    return 0;
}

// and the daemon's start to ready (sd_notify READY=1) on the demo configuration, N daemons one after the other
// (docs/performance.md §13); DAEMON = edgerunner.dll or a published app host, default the checkout's Release build:
//   dotnet run -c Release --project tests/EdgeRunner.Benchmarks --artifacts-path /tmp/bench-art -- startup [runs] [DAEMON]
if (args.Length > 0 && args[0] == "startup")
{
    return StartupTime.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 5, args.Length > 2 ? args[2] : null, Console.Out);
}

if (args.Length > 0 && args[0] == "allocs")
{
    AllocationCheck.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 2000, Console.Out);
    return 0;
}

var summaries = BenchmarkSwitcher.FromAssembly(typeof(BenchConfig).Assembly).Run(args, new BenchConfig());
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
