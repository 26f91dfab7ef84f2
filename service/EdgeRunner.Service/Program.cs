using System.CommandLine;
using EdgeRunner.Service;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

var configOption = new Option<FileInfo?>("--config")
{
    Description = "JSON configuration file to use instead of the built-in demo configuration.",
    Recursive = true,
};

var root = new RootCommand(
    "EdgeRunner: runs INT8 CNNs on camera frames and stateful models on sensor streams, publishing results over MQTT.\n" +
    "Any --Section:Key=value argument overrides that configuration key (e.g. --Mqtt:Host=broker.local).")
{
    TreatUnmatchedTokensAsErrors = false,
};
root.Options.Add(configOption);
root.Subcommands.Add(EdgeRunner.Service.Cli.DumpCommands.Create());
root.Subcommands.Add(EdgeRunner.Service.Cli.EvaluateCommand.Create(configOption));
root.Subcommands.Add(EdgeRunner.Service.Cli.InspectCommand.Create());
root.SetAction((parseResult, cancellationToken) =>
    RunDaemonAsync(parseResult.GetValue(configOption)?.FullName, parseResult.UnmatchedTokens, cancellationToken));

return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });

static async Task<int> RunDaemonAsync(string? configFile, IReadOnlyList<string> overrides, CancellationToken cancellationToken)
{
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

    await using (host as IAsyncDisposable ?? throw new InvalidOperationException("Host is not async-disposable."))
    {
        try
        {
            // Models load (and fail) before anything listens or connects.
            host.Services.GetRequiredService<EdgeRunner.Service.Vision.VisionService>().Prepare();
            host.Services.GetRequiredService<EdgeRunner.Service.Sensors.SensorService>().Prepare();
            await host.StartAsync(cancellationToken);
        }
        catch (StartupException ex)
        {
            await Console.Error.WriteLineAsync($"edgerunner: {ex.Message}");
            await host.StopAsync(CancellationToken.None);
            return ex.ExitCode;
        }

        await host.WaitForShutdownAsync(cancellationToken);
        // 0 unless a service stopped the daemon over a failure it cannot recover from (e.g. the MQTT publishing loop), so that systemd restarts it.
        return Environment.ExitCode;
    }
}
