using EdgeRunner.Service;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace EdgeRunner.UnitTests;

/// <summary>
/// The host's one table of configuration sections: every row refuses its unknown keys naming them, the
/// Sensors row runs its extra key check, and a row's post-configure reaches the bound options.
/// </summary>
public sealed class ConfigurationSectionTableTests
{
    private static IConfigurationRoot Config(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    private static async Task<IReadOnlyList<string>> ErrorsAsync(IConfigurationRoot config)
    {
        var host = EdgeRunnerHost.Build(config);
        await using ((IAsyncDisposable)host)
        {
            return EdgeRunnerHost.FindConfigurationErrors(config, host.Services);
        }
    }

    [Theory]
    [InlineData("Device")]
    [InlineData("Mqtt")]
    [InlineData("OnnxRuntime")]
    [InlineData("Models")]
    [InlineData("Cameras")]
    [InlineData("Sensors")]
    [InlineData("State")]
    [InlineData("Metrics")]
    public async Task Every_section_of_the_table_refuses_an_unknown_key_naming_it(string section)
    {
        // Models, Cameras and Sensors are dictionaries: the unknown key sits one level down, in an entry.
        var key = section is "Models" or "Cameras" or "Sensors" ? $"{section}:x:Bogus" : $"{section}:Bogus";

        var errors = await ErrorsAsync(Config((key, "1")));

        Assert.Contains(errors, e => e.StartsWith(key, StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_sensors_row_runs_its_extra_key_check()
    {
        // A key of another source kind is known to the flat options type; only the row's extra check refuses it.
        var errors = await ErrorsAsync(Config(("Sensors:vib:Model", "lstm"), ("Sensors:vib:Source:Kind", "Mqtt"), ("Sensors:vib:Source:Topic", "a/b"), ("Sensors:vib:Source:BusId", "1")));

        Assert.Contains(errors, e => e.StartsWith("Sensors:vib:Source:BusId", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Logging_is_a_known_section_and_anything_else_is_refused_with_the_list()
    {
        var errors = await ErrorsAsync(Config(("Logging:LogLevel:Default", "Debug"), ("Telemetry:Port", "9100")));

        Assert.DoesNotContain(errors, e => e.StartsWith("Logging", StringComparison.Ordinal));
        Assert.Contains("Telemetry: unknown section (known: Device, Mqtt, OnnxRuntime, Models, Cameras, Sensors, State, Metrics, Logging)", errors);
    }

    [Fact]
    public async Task A_rows_post_configure_reaches_the_bound_options()
    {
        var host = EdgeRunnerHost.Build(Config(("State:Directory", "relative/state")));
        await using ((IAsyncDisposable)host)
        {
            var state = host.Services.GetRequiredService<IOptions<StateOptions>>().Value;
            Assert.Equal(Path.GetFullPath("relative/state"), state.Directory);
        }
    }
}
