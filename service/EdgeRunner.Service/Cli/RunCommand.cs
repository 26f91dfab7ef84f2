using System.CommandLine;
using System.Diagnostics;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Cli;

/// <summary>
/// <c>edgerunner run</c> (and a bare <c>edgerunner</c>): the daemon. Validates the configuration, takes
/// the instance lock, loads and warms up every model, starts, logs one "ready" line, tells systemd
/// READY=1 and keeps its STATUS and watchdog current until SIGTERM.
/// </summary>
internal static partial class RunCommand
{
    public static Command Create(Option<FileInfo?> configOption)
    {
        var command = new Command("run", "Run the daemon (what a bare 'edgerunner' does). Any --Section:Key=value argument overrides that configuration key.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(configOption)?.FullName, parse.UnmatchedTokens, cancellationToken));
        return command;
    }

    public static async Task<int> RunAsync(string? configFile, IReadOnlyList<string> overrides, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var notifier = SystemdNotifier.FromEnvironment();
        IHost host;
        try
        {
            var configuration = EdgeRunnerHost.BuildConfiguration(configFile, overrides);
            host = EdgeRunnerHost.Build(configuration);
            var errors = EdgeRunnerHost.FindConfigurationErrors(configuration, host.Services);
            if (errors.Count > 0)
            {
                foreach (var error in errors)
                {
                    await Console.Error.WriteLineAsync($"edgerunner: configuration error: {error}");
                }

                host.Dispose();
                return StartupException.ConfigError;
            }
        }
        catch (StartupException ex)
        {
            await Console.Error.WriteLineAsync($"edgerunner: configuration error: {ex.Message}");
            return ex.ExitCode;
        }

        InstanceLock instanceLock;
        try
        {
            // Before anything loads, listens or connects: a second daemon must never reach the broker.
            instanceLock = AcquireLock(host.Services);
        }
        catch (StartupException ex)
        {
            await Console.Error.WriteLineAsync($"edgerunner: {ex.Message}");
            host.Dispose();
            return ex.ExitCode;
        }

        using (instanceLock)
        await using (host as IAsyncDisposable ?? throw new InvalidOperationException("Host is not async-disposable."))
        {
            var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("EdgeRunner");
            var vision = host.Services.GetRequiredService<VisionService>();
            var sensors = host.Services.GetRequiredService<SensorService>();
            var publisher = host.Services.GetRequiredService<MqttPublisher>();
            try
            {
                // Models load, and warm up, before anything listens or connects.
                notifier.Notify(SystemdNotifier.Status("loading and warming up models"));
                await vision.PrepareAsync(cancellationToken);
                await sensors.PrepareAsync(cancellationToken);
                await host.StartAsync(cancellationToken);
            }
            catch (StartupException ex)
            {
                await Console.Error.WriteLineAsync($"edgerunner: {ex.Message}");
                await host.StopAsync(CancellationToken.None);
                return ex.ExitCode;
            }

            // Started: every model is loaded and warmed up, pipelines run, and the publisher is connected or
            // queueing (it never blocks start on the broker), so results are possible from here on.
            var readyMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            // Computed ahead (not in the call): a ready line is logged once, its cost is irrelevant.
            var models = DescribeModels(vision, sensors);
            var onnxRuntime = AppVersion.OnnxRuntimeLibrary;
            LogReady(logger, AppVersion.Informational, onnxRuntime, models, vision.Pipelines.Count, sensors.Streams.Count, readyMs);

            var monitor = new HealthMonitor(vision, sensors, publisher, notifier, host.Services.GetRequiredService<TimeProvider>(), logger);
            var (_, status) = monitor.Check();
            notifier.Notify($"READY=1\n{SystemdNotifier.Status(status)}");

            var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
            using var stopping = lifetime.ApplicationStopping.Register(() => notifier.Notify("STOPPING=1\n" + SystemdNotifier.Status("stopping: draining the MQTT queue and writing checkpoints")));
            using var monitorStop = CancellationTokenSource.CreateLinkedTokenSource(lifetime.ApplicationStopping);
            var monitoring = monitor.RunAsync(HealthMonitor.IntervalFor(notifier.WatchdogInterval), monitorStop.Token);
            await host.WaitForShutdownAsync(cancellationToken);
            await monitorStop.CancelAsync();
            await monitoring;
            // 0 unless a service stopped the daemon over a failure it cannot recover from (the MQTT publishing
            // loop, a unit beyond its own supervision: exit code 70), so that systemd restarts it.
            return Environment.ExitCode;
        }
    }

    /// <summary>"shapes-detector on CPUExecutionProvider, vibration-lstm on CPUExecutionProvider".</summary>
    internal static string DescribeModels(VisionService vision, SensorService sensors)
    {
        var models = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var pipeline in vision.Pipelines)
        {
            models[pipeline.Model.Id] = pipeline.Model.ExecutionProvider;
        }

        foreach (var stream in sensors.Streams)
        {
            models[stream.Processor.Model.Id] = stream.Processor.Model.ExecutionProvider;
        }

        return models.Count == 0 ? "none" : string.Join(", ", models.Select(m => $"{m.Key} on {m.Value}"));
    }

    private static InstanceLock AcquireLock(IServiceProvider services)
    {
        var mqtt = services.GetRequiredService<IOptions<MqttOptions>>().Value;
        var device = services.GetRequiredService<IOptions<DeviceOptions>>().Value;
        var embedded = string.IsNullOrWhiteSpace(mqtt.Host);
        var clientId = string.IsNullOrWhiteSpace(mqtt.ClientId) ? $"edgerunner-{DeviceIdentity.Resolve(device)}" : mqtt.ClientId;
        var host = embedded ? mqtt.EmbeddedBroker.BindAddress : mqtt.Host;
        var port = embedded ? mqtt.EmbeddedBroker.Port : mqtt.Port;
        return InstanceLock.Acquire(InstanceLock.ResolveDirectory(), InstanceLock.FileNameFor(clientId, host, port));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "EdgeRunner {Version} ready in {ReadyMilliseconds:0} ms: ONNX Runtime {OnnxRuntimeVersion}; models {Models}; {Cameras} cameras, {Streams} sensor streams")]
    private static partial void LogReady(ILogger logger, string version, string onnxRuntimeVersion, string models, int cameras, int streams, double readyMilliseconds);
}
