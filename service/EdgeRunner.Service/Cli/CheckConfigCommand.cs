using System.CommandLine;
using System.Globalization;
using System.Text;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Cli;

/// <summary>
/// <c>edgerunner check-config</c>: everything the daemon validates at start (keys, values, files, each
/// model loaded and warmed up on its provider, each camera and stream built), without starting it, taking
/// its lock or touching the broker; then a short summary. Exit 0, or 78 with one line per problem.
/// </summary>
internal static class CheckConfigCommand
{
    public static Command Create(Option<FileInfo?> configOption)
    {
        var command = new Command("check-config", "Validate the configuration as the daemon's start does (including loading each model on its provider) without running it; print a summary of models, providers, cameras, streams and topics. Exit 0 when valid, 78 when not.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (code, text) = await RunAsync(parse.GetValue(configOption)?.FullName, parse.UnmatchedTokens, cancellationToken);
            await (code == 0 ? Console.Out : Console.Error).WriteAsync(text.AsMemory(), cancellationToken);
            return code;
        });
        return command;
    }

    /// <summary>The exit code and what to print (the summary on stdout, or the errors on stderr).</summary>
    internal static async Task<(int ExitCode, string Text)> RunAsync(string? configFile, IReadOnlyList<string> overrides, CancellationToken cancellationToken)
    {
        var file = configFile ?? Path.Combine(AppContext.BaseDirectory, "appsettings.json");
        var errorsText = new StringBuilder();
        try
        {
            var configuration = EdgeRunnerHost.BuildConfiguration(
                configFile,
                // The spool belongs to the running daemon (it may hold it now, and this may run as another user):
                // checking never opens, creates or recovers it.
                [.. overrides, "--Logging:LogLevel:Default=Warning", "--Mqtt:Spool:Enabled=false"]);
            var host = EdgeRunnerHost.Build(configuration);
            await using (host as IAsyncDisposable ?? throw new InvalidOperationException("Host is not async-disposable."))
            {
                var errors = EdgeRunnerHost.FindConfigurationErrors(configuration, host.Services);
                if (errors.Count > 0)
                {
                    foreach (var error in errors)
                    {
                        errorsText.AppendLine(CultureInfo.InvariantCulture, $"edgerunner: configuration error: {error}");
                    }

                    return (StartupException.ConfigError, errorsText.ToString());
                }

                // What start does before it listens or connects: load and warm up every model, build every unit.
                var vision = host.Services.GetRequiredService<VisionService>();
                var sensors = host.Services.GetRequiredService<SensorService>();
                await vision.PrepareAsync(cancellationToken);
                await sensors.PrepareAsync(cancellationToken);
                return (0, Summarize(Path.GetFullPath(file), host.Services, vision, sensors));
            }
        }
        catch (StartupException ex)
        {
            errorsText.AppendLine(CultureInfo.InvariantCulture, $"edgerunner: configuration error: {ex.Message}");
            return (ex.ExitCode, errorsText.ToString());
        }
    }

    private static string Summarize(string file, IServiceProvider services, VisionService vision, SensorService sensors)
    {
        var c = CultureInfo.InvariantCulture;
        var mqtt = services.GetRequiredService<IOptions<MqttOptions>>().Value;
        var device = services.GetRequiredService<IOptions<DeviceOptions>>().Value;
        var models = services.GetRequiredService<IOptions<ModelsOptions>>().Value;
        var cameras = services.GetRequiredService<IOptions<CamerasOptions>>().Value;
        var streams = services.GetRequiredService<IOptions<SensorsOptions>>().Value;
        var topics = services.GetRequiredService<MqttTopics>();

        var loaded = new Dictionary<string, (string Provider, string Path)>(StringComparer.OrdinalIgnoreCase);
        foreach (var pipeline in vision.Pipelines)
        {
            loaded[pipeline.Model.Id] = (pipeline.Model.ExecutionProvider, pipeline.Model.Path);
        }

        foreach (var stream in sensors.Streams)
        {
            loaded[stream.Processor.Model.Id] = (stream.Processor.Model.ExecutionProvider, stream.Processor.Model.Path);
        }

        var s = new StringBuilder();
        s.AppendLine(c, $"configuration {file}: valid");
        s.AppendLine(c, $"onnx runtime: {AppVersion.OnnxRuntimeLibrary}");
        s.AppendLine(c, $"models ({models.Count}):");
        foreach (var (name, _) in models.OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            var line = loaded.TryGetValue(name, out var m)
                ? string.Create(c, $"  {name,-24} {m.Provider,-28} {m.Path}")
                : string.Create(c, $"  {name,-24} (not used, not loaded)");
            s.AppendLine(line);
        }

        s.AppendLine(c, $"cameras ({cameras.Count(x => x.Value.Enabled)} enabled of {cameras.Count}):");
        foreach (var (id, camera) in cameras.OrderBy(x => x.Key, StringComparer.Ordinal))
        {
            s.AppendLine(c, $"  {id,-24} {camera.Source.Kind,-18} model {camera.Model}{(camera.Enabled ? string.Empty : " (disabled)")}");
        }

        s.AppendLine(c, $"sensor streams ({streams.Count(x => x.Value.Enabled)} enabled of {streams.Count}):");
        foreach (var (id, stream) in streams.OrderBy(x => x.Key, StringComparer.Ordinal))
        {
            s.AppendLine(c, $"  {id,-24} {stream.Source.Kind,-18} model {stream.Model}{(stream.Enabled ? string.Empty : " (disabled)")}");
        }

        var clientId = string.IsNullOrWhiteSpace(mqtt.ClientId) ? $"edgerunner-{DeviceIdentity.Resolve(device)}" : mqtt.ClientId;
        s.AppendLine(string.IsNullOrWhiteSpace(mqtt.Host)
            ? string.Create(c, $"mqtt: embedded broker on {mqtt.EmbeddedBroker.BindAddress}:{mqtt.EmbeddedBroker.Port}, client id {clientId}")
            : string.Create(c, $"mqtt: broker {mqtt.Host}:{mqtt.Port}, client id {clientId}"));
        s.AppendLine(c, $"topics: {topics.Status} (status), {topics.Base}/vision/{{camera}}/result|state|snapshot, {topics.Base}/sensors/{{stream}}/result|event|state");
        return s.ToString();
    }
}
