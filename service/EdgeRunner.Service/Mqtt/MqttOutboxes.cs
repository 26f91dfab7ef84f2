using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Publishing.Spool;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Mqtt;

/// <summary>Chooses the publisher's outbox: the disk spool when there is a state folder (and it is not switched off), else memory.</summary>
internal static partial class MqttOutboxes
{
    /// <summary>The folder of the spool inside <c>State:Directory</c>.</summary>
    public const string SpoolFolderName = "spool";

    /// <summary>
    /// The outbox for the daemon: a <see cref="SpoolOutbox"/> in <c>{State:Directory}/spool</c>, or the in-memory one
    /// without a state folder or with <c>Mqtt:Spool:Enabled</c> false. A spool that cannot be opened (a folder that
    /// cannot be created or read) does not stop the daemon: results wait in memory and the status says why.
    /// </summary>
    public static IMqttOutbox Create(IServiceProvider services)
    {
        var mqtt = services.GetRequiredService<IOptions<MqttOptions>>().Value;
        var state = services.GetRequiredService<IOptions<StateOptions>>().Value;
        var timeProvider = services.GetRequiredService<TimeProvider>();
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger<MqttPublisher>();
        if (string.IsNullOrEmpty(state.Directory) || !mqtt.Spool.Enabled)
        {
            return new MemoryOutbox(mqtt.QueueCapacity, mqtt.QueueMaxBytes, timeProvider, logger);
        }

        var settings = SettingsFor(mqtt.Spool, Path.Combine(state.Directory, SpoolFolderName));
        try
        {
            var spool = DiskSpool.Open(settings, timeProvider);
            LogSpool(logger, settings.Directory, mqtt.Spool.MaxMegabytes, mqtt.Spool.WhenFull, mqtt.Spool.FlushIntervalSeconds);
            return new SpoolOutbox(spool, mqtt.QueueCapacity, mqtt.QueueMaxBytes, settings.FlushInterval, timeProvider, logger);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var problem = $"the spool in {settings.Directory} cannot be opened ({ex.Message}); results wait in memory";
            LogSpoolUnusable(logger, settings.Directory, ex.Message);
            return new MemoryOutbox(mqtt.QueueCapacity, mqtt.QueueMaxBytes, timeProvider, logger, problem);
        }
    }

    /// <summary>The spool's settings from <c>Mqtt:Spool</c>.</summary>
    public static DiskSpoolSettings SettingsFor(SpoolOptions options, string directory) => new()
    {
        Directory = directory,
        MaxBytes = (long)(options.MaxMegabytes * 1024 * 1024),
        MaxAge = TimeSpan.FromHours(options.MaxAgeHours),
        FullPolicy = options.WhenFull,
        FlushInterval = TimeSpan.FromSeconds(options.FlushIntervalSeconds),
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT results are spooled in {Directory} (at most {MaxMegabytes} MiB, when full: {WhenFull}, fsync every {FlushSeconds} s)")]
    private static partial void LogSpool(ILogger logger, string directory, double maxMegabytes, SpoolFullPolicy whenFull, double flushSeconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "MQTT spool {Directory} cannot be opened ({Reason}): results wait in memory (bounded, lost on exit); the status says degraded")]
    private static partial void LogSpoolUnusable(ILogger logger, string directory, string reason);
}
