using System.Text.Json;
using EdgeRunner.Service.Configuration;
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

    private static readonly string[] Sections =
        [DeviceOptions.SectionName, MqttOptions.SectionName, OnnxRuntimeOptions.SectionName, ModelsOptions.SectionName, CamerasOptions.SectionName, SensorsOptions.SectionName, StateOptions.SectionName, "Logging"];

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
            if (!Sections.Contains(section.Key, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add($"{section.Path}: unknown section (known: {string.Join(", ", Sections)})");
            }
        }

        ConfigurationKeyChecker.CollectUnknownKeys(configuration.GetSection(DeviceOptions.SectionName), typeof(DeviceOptions), errors);
        ConfigurationKeyChecker.CollectUnknownKeys(configuration.GetSection(MqttOptions.SectionName), typeof(MqttOptions), errors);
        ConfigurationKeyChecker.CollectUnknownKeys(configuration.GetSection(OnnxRuntimeOptions.SectionName), typeof(OnnxRuntimeOptions), errors);
        ConfigurationKeyChecker.CollectUnknownKeys(configuration.GetSection(ModelsOptions.SectionName), typeof(ModelsOptions), errors);
        ConfigurationKeyChecker.CollectUnknownKeys(configuration.GetSection(CamerasOptions.SectionName), typeof(CamerasOptions), errors);
        SensorSourceKeyChecker.CollectUnknownKeys(configuration.GetSection(SensorsOptions.SectionName), errors);
        ConfigurationKeyChecker.CollectUnknownKeys(configuration.GetSection(StateOptions.SectionName), typeof(StateOptions), errors);
        if (errors.Count > 0)
        {
            return errors;
        }

        // Same path as ValidateOnStart, so what passes here passes at start. The ONNX Runtime library first:
        // checking models loads ONNX Runtime, and after that the process has its library for good.
        Resolve<OnnxRuntimeOptions>(services, errors);
        if (errors.Count > 0)
        {
            return errors;
        }

        Resolve<DeviceOptions>(services, errors);
        Resolve<MqttOptions>(services, errors);
        Resolve<ModelsOptions>(services, errors);
        Resolve<CamerasOptions>(services, errors);
        Resolve<SensorsOptions>(services, errors);
        Resolve<StateOptions>(services, errors);
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
        AddOptions<DeviceOptions, DeviceOptionsValidator>(services, configuration, DeviceOptions.SectionName);
        AddOptions<MqttOptions, MqttOptionsValidator>(services, configuration, MqttOptions.SectionName);
        AddOptions<OnnxRuntimeOptions, OnnxRuntimeOptionsValidator>(services, configuration, OnnxRuntimeOptions.SectionName);
        AddOptions<ModelsOptions, ModelsOptionsValidator>(services, configuration, ModelsOptions.SectionName);
        AddOptions<CamerasOptions, CamerasOptionsValidator>(services, configuration, CamerasOptions.SectionName);
        AddOptions<SensorsOptions, SensorsOptionsValidator>(services, configuration, SensorsOptions.SectionName);
        services.AddSingleton<IConfigureOptions<SensorsOptions>>(new Sensors.Sources.SensorSourceBinder(configuration));
        AddOptions<StateOptions, StateOptionsValidator>(services, configuration, StateOptions.SectionName);
        services.PostConfigure<StateOptions>(o => o.Directory = string.IsNullOrEmpty(o.Directory) ? o.Directory : Path.GetFullPath(o.Directory));
        services.PostConfigure<ModelsOptions>(PathResolver.ResolveModels);
        services.PostConfigure<CamerasOptions>(PathResolver.ResolveCameras);
        services.PostConfigure<SensorsOptions>(PathResolver.ResolveSensors);
        services.AddSingleton<Catalog.ModelCatalog>();

        services.AddSingleton(sp =>
        {
            var mqtt = sp.GetRequiredService<IOptions<MqttOptions>>().Value;
            var device = sp.GetRequiredService<IOptions<DeviceOptions>>().Value;
            return new MqttTopics(mqtt.TopicPrefix, DeviceIdentity.Resolve(device));
        });

        // Hosted services start in this order and stop in reverse: broker first up, last down;
        // pipelines stop before the publisher drains its queue and says "offline".
        if (string.IsNullOrWhiteSpace(configuration[$"{MqttOptions.SectionName}:Host"]))
        {
            services.AddSingleton<EmbeddedMqttBroker>();
            services.AddHostedService(sp => sp.GetRequiredService<EmbeddedMqttBroker>());
        }

        services.AddSingleton<EmbeddedBrokerEndpoint>();

        services.AddSingleton<MqttPublisher>();
        services.AddSingleton<IResultPublisher>(sp => sp.GetRequiredService<MqttPublisher>());
        services.AddSingleton<IMqttSubscriptions>(sp => sp.GetRequiredService<MqttPublisher>());
        services.AddHostedService(sp => sp.GetRequiredService<MqttPublisher>());
        services.AddSingleton<VisionService>();
        services.AddHostedService(sp => sp.GetRequiredService<VisionService>());
        services.AddEdgeRunnerSensors();
        configureServices?.Invoke(services);
        return builder.Build();
    }

    private static void AddOptions<TOptions, TValidator>(IServiceCollection services, IConfiguration configuration, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddOptions<TOptions>()
            .Bind(configuration.GetSection(section), o => o.ErrorOnUnknownConfiguration = true)
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
    }

    private static void Resolve<TOptions>(IServiceProvider services, List<string> errors)
        where TOptions : class
    {
        try
        {
            _ = services.GetRequiredService<IOptions<TOptions>>().Value;
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
