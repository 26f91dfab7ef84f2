using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Publishing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Mqtt;

/// <summary>Registration of the daemon's MQTT side.</summary>
public static class MqttServiceCollectionExtensions
{
    /// <summary>
    /// Registers the MQTT side: the topics, the embedded broker (when <c>Mqtt:Host</c> is empty) and its endpoint,
    /// the connection, the subscriptions (<see cref="IMqttSubscriptions"/>) and the publisher as a result output.
    /// Hosted services start in registration order and stop in reverse: call this before the pipelines are
    /// registered, so the broker is first up and last down, and the pipelines stop before the publisher drains
    /// its queue and says "offline".
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The daemon's configuration (whether <c>Mqtt:Host</c> is set decides the embedded broker).</param>
    public static IServiceCollection AddEdgeRunnerMqtt(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddSingleton(sp =>
        {
            var mqtt = sp.GetRequiredService<IOptions<MqttOptions>>().Value;
            var device = sp.GetRequiredService<IOptions<DeviceOptions>>().Value;
            return new MqttTopics(mqtt.TopicPrefix, DeviceIdentity.Resolve(device));
        });

        if (string.IsNullOrWhiteSpace(configuration[$"{MqttOptions.SectionName}:Host"]))
        {
            services.AddSingleton<EmbeddedMqttBroker>();
            services.AddHostedService(sp => sp.GetRequiredService<EmbeddedMqttBroker>());
        }

        services.AddSingleton<EmbeddedBrokerEndpoint>();
        // The status detail carries the run's boot id: the one the pipelines' payloads carry.
        services.TryAddPayloadOrigin();
        services.AddSingleton<MqttConnection>();
        services.AddSingleton<MqttSubscriptionDispatcher>();
        services.AddSingleton<IMqttSubscriptions>(sp => sp.GetRequiredService<MqttSubscriptionDispatcher>());
        services.AddSingleton<IMqttOutbox>(MqttOutboxes.Create);
        services.AddSingleton(sp => new MqttPublisher(
            sp.GetRequiredService<IOptions<MqttOptions>>(),
            sp.GetRequiredService<MqttConnection>(),
            sp.GetRequiredService<MqttSubscriptionDispatcher>(),
            sp.GetRequiredService<MqttTopics>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<IHostApplicationLifetime>(),
            sp.GetRequiredService<ILogger<MqttPublisher>>(),
            sp.GetRequiredService<IMqttOutbox>(),
            sp.GetService<Diagnostics.EdgeRunnerMetrics>()));
        services.AddResultOutput<MqttPublisher>();
        services.AddHostedService(sp => sp.GetRequiredService<MqttPublisher>());
        return services;
    }
}
