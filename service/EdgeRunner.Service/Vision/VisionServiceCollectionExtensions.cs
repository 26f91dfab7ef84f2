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
    /// Adds <see cref="CamerasOptions"/> (bound from the host's configuration, each camera's <c>Source</c> bound to its
    /// kind's type, validated on start, relative paths resolved) and the vision service as a hosted service. Hosted
    /// services start in registration order: call it after the MQTT publisher, which the cameras publish through.
    /// </summary>
    public static IServiceCollection AddEdgeRunnerVision(this IServiceCollection services)
    {
        services.AddOptions<CamerasOptions>()
            .BindConfiguration(CamerasOptions.SectionName, o => o.ErrorOnUnknownConfiguration = true)
            .Configure<IConfiguration>((cameras, configuration) => CameraSourceKinds.BindSources(configuration.GetSection(CamerasOptions.SectionName), cameras))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<CamerasOptions>, CamerasOptionsValidator>();
        services.PostConfigure<CamerasOptions>(PathResolver.ResolveCameras);
        services.AddSingleton<VisionService>();
        services.AddHostedService(sp => sp.GetRequiredService<VisionService>());
        return services;
    }
}
