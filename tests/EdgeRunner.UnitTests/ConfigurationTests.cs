using EdgeRunner.Service;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Configuration;

namespace EdgeRunner.UnitTests;

public sealed class ConfigurationTests
{
    private static IConfigurationRoot Config(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    private static List<string> UnknownKeys(IConfiguration config)
    {
        var errors = new List<string>();
        ConfigurationKeyChecker.CollectUnknownKeys(config.GetSection("Cameras"), typeof(CamerasOptions), errors);
        ConfigurationKeyChecker.CollectUnknownKeys(config.GetSection("Models"), typeof(ModelsOptions), errors);
        ConfigurationKeyChecker.CollectUnknownKeys(config.GetSection("Mqtt"), typeof(MqttOptions), errors);
        return errors;
    }

    [Fact]
    public void Known_keys_pass()
    {
        var config = Config(
            ("Cameras:front:Fps", "5"),
            ("Cameras:front:Source:Kind", "Images"),
            ("Models:m:Preprocess:Mean:0", "0.5"),
            ("Models:m:ExecutionProviders:0", "cuda"),
            ("Mqtt:EmbeddedBroker:Port", "1884"));

        Assert.Empty(UnknownKeys(config));
    }

    [Fact]
    public void A_misspelt_nested_key_is_reported_with_its_full_path()
    {
        var config = Config(("Cameras:front:Sourse:Kind", "Images"), ("Mqtt:EmbeddedBroker:Prot", "1"));

        var errors = UnknownKeys(config);

        Assert.Contains(errors, e => e.StartsWith("Cameras:front:Sourse: unknown key", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Mqtt:EmbeddedBroker:Prot: unknown key", StringComparison.Ordinal));
    }

    [Fact]
    public void A_scalar_with_children_and_a_list_with_names_are_reported()
    {
        var config = Config(("Cameras:front:Fps:Max", "5"), ("Models:m:Preprocess:Mean:red", "0.5"));

        var errors = UnknownKeys(config);

        Assert.Contains(errors, e => e.StartsWith("Cameras:front:Fps: is a single value", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Models:m:Preprocess:Mean:red:", StringComparison.Ordinal));
    }

    [Fact]
    public void Validators_name_the_key_and_the_problem()
    {
        var cameras = new CamerasOptions { ["front"] = new CameraOptions { Model = "nope", Fps = -5 } };
        var models = new ModelsOptions();

        var result = new CamerasOptionsValidator(Microsoft.Extensions.Options.Options.Create(models)).Validate(null, cameras);

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith("Cameras:front:Fps: must be greater than 0 (got -5)", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("Cameras:front:Model: no model named 'nope'", StringComparison.Ordinal));
    }

    [Fact]
    public void Host_level_check_reports_unknown_sections_and_bad_values()
    {
        var config = Config(("Mqtt:Port", "70000"), ("Mqqt:Host", "x"), ("Device:Id", "a/b"));
        using var host = EdgeRunnerHost.Build(config);

        var errors = EdgeRunnerHost.FindConfigurationErrors(config, host.Services);

        Assert.Contains(errors, e => e.StartsWith("Mqqt: unknown section", StringComparison.Ordinal));

        var valueConfig = Config(("Mqtt:Port", "70000"), ("Device:Id", "a/b"), ("Cameras:x:Fps", "fast"));
        using var valueHost = EdgeRunnerHost.Build(valueConfig);
        var valueErrors = EdgeRunnerHost.FindConfigurationErrors(valueConfig, valueHost.Services);
        Assert.Contains(valueErrors, e => e.StartsWith("Mqtt:Port: must be between 1 and 65535 (got 70000)", StringComparison.Ordinal));
        Assert.Contains(valueErrors, e => e.StartsWith("Device:Id:", StringComparison.Ordinal));
        Assert.Contains(valueErrors, e => e.Contains("Cameras:x:Fps", StringComparison.Ordinal));
    }
}
