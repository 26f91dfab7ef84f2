using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Service;
using EdgeRunner.Service.Catalog;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace EdgeRunner.UnitTests;

public sealed class SpinningPolicyTests
{
    [Theory]
    [InlineData(5.0, 13.5, false)] // The demo camera: 5 frames/s of a short run, idle 93 % of the time.
    [InlineData(30.0, 9.0, false)] // A 30 fps camera on mobilenet: duty 0.27.
    [InlineData(60.0, 9.0, true)] // Duty 0.54: the next frame comes while the workers still spin.
    [InlineData(100.0, 5.0, true)] // Exactly the threshold.
    public void Auto_spins_only_from_a_duty_cycle_of_one_half(double runsPerSecond, double runMilliseconds, bool spins)
    {
        var decision = SpinningPolicy.Decide(ModelSpinning.Auto, runsPerSecond, runMilliseconds);

        Assert.Equal(spins, decision.AllowSpinning);
        Assert.Equal(runsPerSecond * runMilliseconds / 1000, decision.DutyCycle!.Value, 9);
    }

    [Fact]
    public void Auto_names_the_duty_cycle_and_its_factors()
    {
        var decision = SpinningPolicy.Decide(ModelSpinning.Auto, 5, 13.5);

        Assert.Equal("duty cycle 0.07: 5 runs/s × 13.5 ms", decision.Reason);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(0.0)]
    public void Auto_with_an_unknown_rate_keeps_ONNX_Runtime_spinning(double? runsPerSecond)
    {
        var decision = SpinningPolicy.Decide(ModelSpinning.Auto, runsPerSecond, 1);

        Assert.True(decision.AllowSpinning);
        Assert.Null(decision.DutyCycle);
        Assert.Equal("rate unknown", decision.Reason);
    }

    [Theory]
    [InlineData(ModelSpinning.On, true)]
    [InlineData(ModelSpinning.Off, false)]
    public void On_and_Off_override_the_duty_cycle(ModelSpinning mode, bool spins)
    {
        Assert.Equal(spins, SpinningPolicy.Decide(mode, 1, 1).AllowSpinning);
        Assert.Equal(spins, SpinningPolicy.Decide(mode, 1000, 1000).AllowSpinning);
    }

    [Fact]
    public void Auto_loads_once_when_spinning_stays_off_and_again_when_it_turns_on()
    {
        var loads = new List<bool?>();
        using var idle = SpinningPolicy.Load("m", ModelSpinning.Auto, 1, spin => Loaded(loads, spin), _ => { }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        Assert.Equal([false], loads);

        loads.Clear();
        using var busy = SpinningPolicy.Load("m", ModelSpinning.Auto, 1000, spin => Loaded(loads, spin), _ => Thread.Sleep(2), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        Assert.Equal([false, true], loads);
        Assert.Equal(true, busy.AllowSpinning);
        Assert.False(busy.Disposed);
    }

    [Fact]
    public void Rates_come_from_the_cameras_and_streams_that_use_each_model()
    {
        var cameras = new CamerasOptions
        {
            ["a"] = new CameraOptions { Model = "det", Fps = 30, DetectFps = 4 },
            ["b"] = new CameraOptions { Model = "DET" },
            ["c"] = new CameraOptions { Model = "det", Fps = 50, Enabled = false },
        };
        var sensors = new SensorsOptions
        {
            ["s1"] = new SensorStreamOptions { Model = "lstm" },
            ["s2"] = new SensorStreamOptions { Model = "lstm" },
            ["s3"] = new SensorStreamOptions { Model = "lstm", Enabled = false },
        };
        var rates = new ModelRunRates(Options.Create(cameras), Options.Create(sensors));

        // b runs at the default 5 fps (model names are case-insensitive), a at its DetectFps 4; c is disabled.
        Assert.Equal(5, rates.CameraFramesPerSecond("det"));
        Assert.Equal(0, rates.SensorStreams("det"));
        Assert.Equal(0, rates.CameraFramesPerSecond("lstm"));
        Assert.Equal(2, rates.SensorStreams("lstm"));
        Assert.Equal(0, rates.CameraFramesPerSecond("unused"));

        // An unpaced video file runs its model back to back: rate unknown (0), unless DetectFps caps it.
        cameras["d"] = new CameraOptions { Model = "bench", Fps = 30, Source = new EdgeRunner.Service.Vision.Sources.FileSourceOptions { Path = "clip.mkv", RealTime = false } };
        cameras["e"] = new CameraOptions { Model = "capped", Fps = 30, DetectFps = 2, Source = new EdgeRunner.Service.Vision.Sources.FileSourceOptions { Path = "clip.mkv", RealTime = false } };
        cameras["f"] = new CameraOptions { Model = "paced", Fps = 30, Source = new EdgeRunner.Service.Vision.Sources.FileSourceOptions { Path = "clip.mkv" } };
        Assert.Equal(0, rates.CameraFramesPerSecond("bench"));
        Assert.Equal(2, rates.CameraFramesPerSecond("capped"));
        Assert.Equal(30, rates.CameraFramesPerSecond("paced"));

        // The catalog hands them to whoever loads the model; the options stay as configured.
        var models = new ModelsOptions { ["det"] = new ModelOptions { Path = "det.onnx" }, ["lstm"] = new ModelOptions { Path = "lstm.onnx", Task = ModelTask.SequenceScore } };
        var catalog = new ModelCatalog(Options.Create(models), rates);
        Assert.Equal(5, catalog.Get("det").CameraFramesPerSecond);
        Assert.Equal(2, catalog.Get("lstm").SensorStreams);
        Assert.Equal(2, catalog.WithRunRates(ModelCatalog.Resolve("lstm", models["lstm"])).SensorStreams);
    }

    [Fact]
    public void A_spinning_value_out_of_range_is_refused_naming_the_key()
    {
        var models = new ModelsOptions { ["m"] = new ModelOptions { Path = "missing.onnx", Spinning = (ModelSpinning)7 } };

        var result = new ModelsOptionsValidator().Validate(null, models);

        Assert.Contains(result.Failures!, f => f.StartsWith("Models:m:Spinning: '7' is not one of Auto, On, Off", StringComparison.Ordinal));
    }

    [Fact]
    public void A_spinning_word_that_is_no_choice_stops_the_host_check_naming_the_key()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Models:m:Path"] = "x.onnx", ["Models:m:Spinning"] = "Sometimes" }).Build();
        using var host = EdgeRunnerHost.Build(config);

        var errors = EdgeRunnerHost.FindConfigurationErrors(config, host.Services);

        Assert.Contains(errors, e => e.Contains("Models:m:Spinning", StringComparison.Ordinal));
    }

    private static FakeModel Loaded(List<bool?> loads, bool? spin)
    {
        loads.Add(spin);
        return new FakeModel(spin);
    }

    private sealed class FakeModel(bool? allowSpinning) : IDisposable
    {
        public bool? AllowSpinning { get; } = allowSpinning;

        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }
}
