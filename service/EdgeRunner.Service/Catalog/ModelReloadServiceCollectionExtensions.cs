using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.Service.Catalog;

/// <summary>Registration of hot model swap in the host.</summary>
internal static class ModelReloadServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="IModelReloader"/> (used by the <c>reload</c> command) and the watcher of the model files with
    /// <c>ReloadOnChange</c>. Call it after the cameras and sensors: the watcher starts after their models are loaded.
    /// </summary>
    public static IServiceCollection AddEdgeRunnerModelReload(this IServiceCollection services)
    {
        services.AddSingleton<ModelReloader>();
        services.AddSingleton<IModelReloader>(sp => sp.GetRequiredService<ModelReloader>());
        services.AddSingleton<ModelFileWatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<ModelFileWatcher>());
        return services;
    }
}
