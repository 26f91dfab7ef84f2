using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.Service.HomeAssistant;

/// <summary>Registration of Home Assistant discovery.</summary>
public static class HomeAssistantServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="HomeAssistantDiscovery"/> as a hosted service (it does nothing but remove what it published
    /// before while <c>Mqtt:HomeAssistant:Enabled</c> is false). Call after <c>AddEdgeRunnerMqtt</c>: it queues on the publisher.
    /// </summary>
    public static IServiceCollection AddEdgeRunnerHomeAssistant(this IServiceCollection services)
    {
        services.AddSingleton<HomeAssistantDiscovery>();
        services.AddHostedService(sp => sp.GetRequiredService<HomeAssistantDiscovery>());
        return services;
    }
}
