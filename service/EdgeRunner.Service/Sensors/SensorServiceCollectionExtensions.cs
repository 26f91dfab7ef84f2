using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.Service.Sensors;

/// <summary>Registration of the sensor streams in the host.</summary>
internal static class SensorServiceCollectionExtensions
{
    /// <summary>
    /// Adds the sensor streams (<see cref="SensorService"/>) as a hosted service. Its options sections
    /// (<c>Sensors</c>, <c>State</c>) are bound and validated with the host's other sections.
    /// </summary>
    public static IServiceCollection AddEdgeRunnerSensors(this IServiceCollection services)
    {
        services.TryAddPayloadOrigin();
        services.AddSingleton<SensorService>();
        services.AddHostedService(sp => sp.GetRequiredService<SensorService>());
        return services;
    }
}
