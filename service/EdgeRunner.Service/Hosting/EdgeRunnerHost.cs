using System.Text.Json;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Diagnostics;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service;

/// <summary>
/// Builds the daemon's configuration and host. Configuration layers, later wins:
/// the built-in <c>appsettings.json</c> next to the binary, or the file given with <c>--config</c>
/// (which replaces it, so its cameras are the only cameras); then <c>EDGERUNNER__Section__Key</c>
/// environment variables; then <c>--Section:Key=value</c> command-line overrides.
/// </summary>
public static class EdgeRunnerHost
{
    /// <summary>Environment variable prefix (double underscore separates levels).</summary>
    public const string EnvironmentPrefix = "EDGERUNNER__";

    /// <summary>The section of the logging configuration: known, but bound by the logging builder, not by an options class.</summary>
    private const string LoggingSectionName = "Logging";

    /// <summary>
    /// The daemon's configuration sections, one row each: registration, the unknown-key check and the
    /// resolution shared by <c>check-config</c> and start all read this table, in this order.
    /// </summary>
    private static readonly OptionsSection[] OptionsSections =
    [
        OptionsSection.Of<DeviceOptions, DeviceOptionsValidator>(DeviceOptions.SectionName),
        OptionsSection.Of<MqttOptions, MqttOptionsValidator>(MqttOptions.SectionName),
        OptionsSection.Of<OnnxRuntimeOptions, OnnxRuntimeOptionsValidator>(OnnxRuntimeOptions.SectionName, resolveFirst: true),
        OptionsSection.Of<ModelsOptions, ModelsOptionsValidator>(ModelsOptions.SectionName, PathResolver.ResolveModels),
        OptionsSection.Of<CamerasOptions, CamerasOptionsValidator>(CamerasOptions.SectionName, PathResolver.ResolveCameras, Vision.Sources.CameraSourceKinds.CollectKeyErrors),
        OptionsSection.Of<SensorsOptions, SensorsOptionsValidator>(SensorsOptions.SectionName, PathResolver.ResolveSensors, SensorSourceKeyChecker.CollectUnknownKeys, keyCheckReplacesTypeCheck: true),
        OptionsSection.Of<StateOptions, StateOptionsValidator>(StateOptions.SectionName, o => o.Directory = string.IsNullOrEmpty(o.Directory) ? o.Directory : Path.GetFullPath(o.Directory)),
        OptionsSection.Of<MetricsOptions, MetricsOptionsValidator>(MetricsOptions.SectionName),
    ];

    private static readonly string[] SectionNames = [.. OptionsSections.Select(s => s.Name), LoggingSectionName];

    /// <summary>Builds the layered configuration. Throws <see cref="StartupException"/> for an unreadable or malformed file.</summary>
    public static IConfigurationRoot BuildConfiguration(string? configFile, IEnumerable<string> overrides)
    {
        var file = configFile ?? Path.Combine(AppContext.BaseDirectory, "appsettings.json");
        if (!File.Exists(file))
        {
            throw new StartupException($"configuration file '{file}' does not exist", StartupException.ConfigError);
        }

        try
        {
            return new ConfigurationBuilder()
                .AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false)
                .AddEnvironmentVariables(EnvironmentPrefix)
                .AddCommandLine([.. overrides])
                .Build();
        }
        catch (Exception ex) when (ex is InvalidDataException or JsonException or FormatException or IOException)
        {
            throw new StartupException($"configuration file '{file}' cannot be read: {ex.Message}", StartupException.ConfigError, ex);
        }
    }

    /// <summary>Every problem in <paramref name="configuration"/>, as "key: problem" lines; empty when it is valid.</summary>
    public static IReadOnlyList<string> FindConfigurationErrors(IConfiguration configuration, IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(services);
        var errors = new List<string>();
        foreach (var section in configuration.GetChildren())
        {
            if (!SectionNames.Contains(section.Key, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add($"{section.Path}: unknown section (known: {string.Join(", ", SectionNames)})");
            }
        }

        foreach (var section in OptionsSections)
        {
            section.CollectUnknownKeys(configuration, errors);
        }

        if (errors.Count > 0)
        {
            return errors;
        }

        // Same path as ValidateOnStart, so what passes here passes at start. The ONNX Runtime library first:
        // checking models loads ONNX Runtime, and after that the process has its library for good.
        foreach (var section in OptionsSections.Where(s => s.ResolveFirst))
        {
            Resolve(section, services, errors);
        }

        if (errors.Count > 0)
        {
            return errors;
        }

        foreach (var section in OptionsSections.Where(s => !s.ResolveFirst))
        {
            Resolve(section, services, errors);
        }

        return errors;
    }

    /// <summary>Creates the host over <paramref name="configuration"/> (not started).</summary>
    public static IHost Build(IConfiguration configuration, Action<IServiceCollection>? configureServices = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings
        {
            ContentRootPath = Environment.CurrentDirectory,
            ApplicationName = "edgerunner",
        });
        builder.Configuration.AddConfiguration(configuration);

        builder.Logging.AddConfiguration(configuration.GetSection("Logging"));
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.ColorBehavior = LoggerColorBehavior.Disabled;
        });

        var services = builder.Services;
        services.AddSystemd();
        services.AddSingleton(TimeProvider.System);
        foreach (var section in OptionsSections)
        {
            section.Register(services, configuration);
        }

        // Each stream's Source is bound to its Kind's options type: after the table's Bind, before PostConfigure.
        services.AddSingleton<IConfigureOptions<SensorsOptions>>(new Sensors.Sources.SensorSourceBinder(configuration));

        services.AddSingleton<Catalog.ModelCatalog>();

        // Each model's expected runs per second, for Models:{name}:Spinning Auto.
        services.AddSingleton<Catalog.ModelRunRates>();

        // Hosted services start in this order and stop in reverse: broker first up, last down;
        // pipelines stop before the publisher drains its queue and says "offline".
        services.AddEdgeRunnerMqtt(configuration);
        HomeAssistant.HomeAssistantServiceCollectionExtensions.AddEdgeRunnerHomeAssistant(services);
        services.AddEdgeRunnerVision();
        services.AddEdgeRunnerSensors();
        Catalog.ModelReloadServiceCollectionExtensions.AddEdgeRunnerModelReload(services);
        services.AddEdgeRunnerMetrics();
        Commands.CommandServiceCollectionExtensions.AddEdgeRunnerCommands(services);
        configureServices?.Invoke(services);
        var host = builder.Build();

        // ONNX Runtime's own log (coloured, repetitive, straight to stderr by default) goes through this host's logging.
        EdgeRunner.Models.Inference.OnnxRuntimeLog.Attach(host.Services.GetRequiredService<ILoggerFactory>(), host.Services.GetRequiredService<TimeProvider>());
        return host;
    }

    private static void Resolve(OptionsSection section, IServiceProvider services, List<string> errors)
    {
        try
        {
            section.Resolve(services);
        }
        catch (OptionsValidationException ex)
        {
            errors.AddRange(ex.Failures);
        }
        catch (InvalidOperationException ex)
        {
            // The binder wraps the useful errors: one level names the key ("Failed to convert configuration
            // value at 'Cameras:x:Fps' to type 'System.Double'"), the innermost says why.
            var chain = new List<string>();
            for (Exception? e = ex; e is not null; e = e.InnerException)
            {
                chain.Add(e.Message);
            }

            var withKey = chain.LastOrDefault(m => m.Contains(" at '", StringComparison.Ordinal)) ?? chain[0];
            errors.Add(withKey == chain[^1] ? withKey : $"{withKey} ({chain[^1]})");
        }
    }
}
