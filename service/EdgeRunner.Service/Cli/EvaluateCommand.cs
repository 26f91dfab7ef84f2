using System.CommandLine;
using System.Globalization;
using System.Text;
using EdgeRunner.Service.Catalog;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Cli;

/// <summary>
/// <c>edgerunner evaluate</c>: measures the configured demo models honestly against the simulators'
/// ground truth, through the daemon's own processing code, and prints mAP / accuracy / F1.
/// </summary>
internal static class EvaluateCommand
{
    public static Command Create(Option<FileInfo?> configOption)
    {
        var frames = new Option<int>("--frames") { Description = "Synthetic frames per detection camera.", DefaultValueFactory = _ => 500 };
        var seconds = new Option<double>("--seconds") { Description = "Simulated seconds per vibration stream.", DefaultValueFactory = _ => 600 };
        var seed = new Option<int>("--seed") { Description = "First scene / machine seed (held out from training).", DefaultValueFactory = _ => 900000 };
        var command = new Command("evaluate", "Run the configured models through the daemon's pipeline code on simulated data and print mAP@0.5 (cameras) and accuracy/F1/time-to-detect (sensor streams).")
        {
            frames, seconds, seed,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(parse => Run(parse.GetValue(configOption)?.FullName, parse.UnmatchedTokens, parse.GetValue(frames), parse.GetValue(seconds), parse.GetValue(seed)));
        return command;
    }

    private static int Run(string? configFile, IReadOnlyList<string> overrides, int frames, double seconds, int seed)
    {
        try
        {
            var configuration = EdgeRunnerHost.BuildConfiguration(
                configFile,
                // The spool belongs to the running daemon (it may hold it now, and this may run as another user):
                // checking never opens, creates or recovers it.
                [.. overrides, "--Logging:LogLevel:Default=Warning", "--Mqtt:Spool:Enabled=false"]);
            using var host = EdgeRunnerHost.Build(configuration);
            var errors = EdgeRunnerHost.FindConfigurationErrors(configuration, host.Services);
            if (errors.Count > 0)
            {
                foreach (var error in errors)
                {
                    Console.Error.WriteLine($"edgerunner: configuration error: {error}");
                }

                return StartupException.ConfigError;
            }

            var evaluator = new Evaluator(
                host.Services.GetRequiredService<IOptions<CamerasOptions>>().Value,
                host.Services.GetRequiredService<IOptions<SensorsOptions>>().Value,
                host.Services.GetRequiredService<ModelCatalog>(),
                host.Services.GetRequiredService<ILoggerFactory>());
            var any = false;
            foreach (var vision in evaluator.EvaluateVision(frames, seed))
            {
                Console.Write(Format(vision));
                any = true;
            }

            foreach (var sensor in evaluator.EvaluateSensors(seconds, seed))
            {
                Console.Write(Format(sensor));
                any = true;
            }

            if (!any)
            {
                Console.Error.WriteLine("edgerunner evaluate: nothing to evaluate (no enabled synthetic camera with a detection model, no simulated vibration stream)");
                return 1;
            }

            return 0;
        }
        catch (StartupException ex)
        {
            Console.Error.WriteLine($"edgerunner: {ex.Message}");
            return ex.ExitCode;
        }
    }

    internal static string Format(VisionEvaluation e)
    {
        var s = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        s.AppendLine(c, $"camera {e.Camera}: model {e.Model} (sha256 {e.Sha256[..12]}…, {e.Provider}), {e.Frames} frames from {e.Scenes} held-out scenes (seeds {e.FirstSeed}..{e.FirstSeed + e.Scenes - 1})");
        s.AppendLine(c, $"  {"class",-12} {"truth",6} {"predicted",10} {"AP@0.5",8}");
        foreach (var (label, ap) in e.PerClass)
        {
            s.AppendLine(c, $"  {label,-12} {ap.TruthCount,6} {ap.PredictionCount,10} {ap.AveragePrecision,8:0.000}");
        }

        s.AppendLine(c, $"  mAP@0.5 {e.MeanAveragePrecision:0.000}   mean inference {e.MeanInferenceMilliseconds:0.00} ms/frame");
        return s.ToString();
    }

    internal static string Format(SensorEvaluation e)
    {
        var s = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        s.AppendLine(c, $"sensors {string.Join(", ", e.Streams)}: model {e.Model} (sha256 {e.Sha256[..12]}…, {e.Provider}), {e.Seconds:0} s per stream on held-out machines (seeds {string.Join(", ", e.Seeds)}), {e.Steps} steps");
        s.AppendLine(c, $"  accuracy {e.Accuracy:0.000}   macro F1 {e.MacroF1:0.000}");
        s.AppendLine(c, $"  F1 per class: {string.Join(", ", e.PerClass.Select(p => $"{p.Label} {p.F1:0.000}"))}");
        s.AppendLine(c, $"  time to detect (s, prediction settled for 1 s): {string.Join(", ", e.TimeToDetect.Select(t => $"{t.Label} median {t.MedianSeconds:0.00} p90 {t.P90Seconds:0.00} (n={t.Count})"))}; missed faults {e.MissedFaults}");
        s.AppendLine(c, $"  confusion (rows truth, columns predicted: {string.Join(", ", e.Labels)}):");
        for (var t = 0; t < e.Labels.Count; t++)
        {
            s.Append(c, $"    {e.Labels[t],-14}");
            for (var p = 0; p < e.Labels.Count; p++)
            {
                s.Append(c, $" {e.Confusion[t, p],7}");
            }

            s.AppendLine();
        }

        return s.ToString();
    }
}
