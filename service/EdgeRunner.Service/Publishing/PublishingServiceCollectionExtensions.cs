using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Publishing;

/// <summary>Registration of result outputs.</summary>
public static class PublishingServiceCollectionExtensions
{
    /// <summary>
    /// Registers <typeparamref name="TOutput"/> as a singleton and as one of the <see cref="IResultOutput"/>s
    /// that <see cref="CompositeResultPublisher"/> (the <see cref="IResultPublisher"/>, registered once) hands results to.
    /// </summary>
    public static IServiceCollection AddResultOutput<TOutput>(this IServiceCollection services)
        where TOutput : class, IResultOutput
    {
        services.TryAddSingleton<TOutput>();
        services.AddSingleton<IResultOutput>(sp => sp.GetRequiredService<TOutput>());
        services.TryAddSingleton<IResultPublisher, CompositeResultPublisher>();
        return services;
    }

    /// <summary>
    /// Registers this run's <see cref="PayloadOrigin"/> (device id and a random boot id), once per host:
    /// every producer of JSON payloads calls it, and all of them share the one made first.
    /// </summary>
    internal static IServiceCollection TryAddPayloadOrigin(this IServiceCollection services)
    {
        services.TryAddSingleton(sp => PayloadOrigin.NewBoot(DeviceIdentity.Resolve(sp.GetRequiredService<IOptions<DeviceOptions>>().Value)));
        return services;
    }
}
