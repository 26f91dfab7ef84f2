using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.Service.Commands;

/// <summary>Registration of the MQTT commands (<c>Mqtt:Commands</c>).</summary>
internal static class CommandServiceCollectionExtensions
{
    /// <summary>
    /// Adds the command handlers and <see cref="CommandService"/> as a hosted service. Call it after the MQTT side
    /// and the pipelines: hosted services start in registration order, so commands are taken only once the cameras
    /// and streams they act on run, and they stop being taken first.
    /// </summary>
    public static IServiceCollection AddEdgeRunnerCommands(this IServiceCollection services)
    {
        services.AddSingleton<ICommandHandler, ResetCommand>();
        services.AddSingleton<ICommandHandler, SnapshotCommand>();
        services.AddSingleton<ICommandHandler, RestartCameraCommand>();
        services.AddSingleton<ICommandHandler, SetThresholdCommand>();
        // The model reloader is optional (resolved if registered): without one the command says it is not available.
        services.AddSingleton<ICommandHandler>(sp => new ReloadCommand(sp.GetService<Catalog.IModelReloader>()));
        services.AddSingleton<CommandService>();
        services.AddHostedService(sp => sp.GetRequiredService<CommandService>());
        return services;
    }
}
