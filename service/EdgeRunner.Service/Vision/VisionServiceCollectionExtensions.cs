using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Vision.Sources;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Vision;

/// <summary>Registers the cameras: their options (section <c>Cameras</c>) and the service that runs them.</summary>
public static class VisionServiceCollectionExtensions
{
    /// <summary>
    /// Adds the per-kind binding of each camera's <c>Source</c> (the <c>Cameras</c> section itself is bound, validated
    /// and path-resolved by the host's table of sections, registered before this) and the vision service as a hosted
    /// service. Hosted services start in registration order: call it after the MQTT publisher, which the cameras
    /// publish through.
    /// </summary>
    public static IServiceCollection AddEdgeRunnerVision(this IServiceCollection services)
    {
        // Runs after the table's Bind (both are Configure steps, in registration order) and before PostConfigure.
        services.AddOptions<CamerasOptions>()
            .Configure<IConfiguration>((cameras, configuration) => CameraSourceKinds.BindSources(configuration.GetSection(CamerasOptions.SectionName), cameras));
        services.TryAddPayloadOrigin();
        services.AddSingleton<VisionService>();
        services.AddHostedService(sp => sp.GetRequiredService<VisionService>());
        return services;
    }
}
