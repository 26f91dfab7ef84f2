using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service;
using EdgeRunner.Service.Catalog;
using EdgeRunner.Service.Cli;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The demo models measured through the daemon's own processing code on held-out simulator seeds
/// (what <c>edgerunner evaluate</c> prints), against floors set below the measured figures
/// (docs/performance.md) with headroom.
/// </summary>
public sealed class DemoEvaluationTests
{
    private static Evaluator DefaultConfigurationEvaluator(out IDisposable host)
    {
        // The built-in configuration, as the README's run command uses it.
        var configuration = EdgeRunnerHost.BuildConfiguration(null, ["--Logging:LogLevel:Default=Warning"]);
        var built = EdgeRunnerHost.Build(configuration);
        host = built;
        Assert.Empty(EdgeRunnerHost.FindConfigurationErrors(configuration, built.Services));
        return new Evaluator(
            built.Services.GetRequiredService<IOptions<CamerasOptions>>().Value,
            built.Services.GetRequiredService<IOptions<SensorsOptions>>().Value,
            built.Services.GetRequiredService<ModelCatalog>(),
            built.Services.GetRequiredService<ILoggerFactory>());
    }

    [Fact]
    public void Bundled_detector_on_the_synthetic_camera_reaches_its_map_floor()
    {
        var evaluator = DefaultConfigurationEvaluator(out var host);
        using (host)
        {
            var result = Assert.Single(evaluator.EvaluateVision(frames: 200, seed: 900000));

            Assert.Equal("shapes-detector", result.Model);
            Assert.Equal(200, result.Frames);
            Assert.True(result.MeanAveragePrecision >= 0.85, EvaluateCommand.Format(result));
            Assert.All(result.PerClass, c => Assert.True(c.Ap.AveragePrecision >= 0.75, EvaluateCommand.Format(result)));
        }
    }

    [Fact]
    public void Bundled_lstm_on_simulated_machines_reaches_its_accuracy_floor_and_detects_every_fault()
    {
        var evaluator = DefaultConfigurationEvaluator(out var host);
        using (host)
        {
            var result = Assert.Single(evaluator.EvaluateSensors(seconds: 300, seed: 900000));

            Assert.Equal(2, result.Streams.Count);
            Assert.True(result.Accuracy >= 0.93, EvaluateCommand.Format(result));
            Assert.True(result.MacroF1 >= 0.90, EvaluateCommand.Format(result));
            Assert.Equal(0, result.MissedFaults);
            Assert.All(result.TimeToDetect.Where(t => t.Count > 0), t => Assert.True(t.MedianSeconds <= 3, EvaluateCommand.Format(result)));
        }
    }
}
