using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.Service.Diagnostics;

/// <summary>Registration of the daemon's metrics (<see cref="EdgeRunnerMetrics"/>).</summary>
public static class MetricsServiceCollectionExtensions
{
    /// <summary>
    /// Adds the meter factory (if the host has none yet), the daemon's <see cref="EdgeRunnerMetrics"/> (the histograms the
    /// pipelines record into) and the observable instruments over the cameras', streams' and publisher's counters. Call it
    /// after the MQTT, vision and sensor registrations, whose services the instruments read.
    /// </summary>
    public static IServiceCollection AddEdgeRunnerMetrics(this IServiceCollection services)
    {
        services.AddMetrics();
        services.AddSingleton<EdgeRunnerMetrics>();
        services.AddSingleton<PipelineMetrics>();
        services.AddHostedService(sp => sp.GetRequiredService<PipelineMetrics>());
        // Created on first use only (the endpoint, the health message, bench-pipeline): until then the histograms have no listener.
        services.AddSingleton<MetricsCollector>();
        services.AddSingleton<PrometheusEndpoint>();
        services.AddHostedService(sp => sp.GetRequiredService<PrometheusEndpoint>());
        services.AddSingleton<HealthPublisher>();
        services.AddHostedService(sp => sp.GetRequiredService<HealthPublisher>());
        return services;
    }
}
