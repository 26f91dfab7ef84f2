using System.Buffers;
using System.Text.Json;
using EdgeRunner.Service.Catalog;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.HomeAssistant;

/// <summary>
/// Home Assistant MQTT discovery (<c>Mqtt:HomeAssistant</c>, docs/home-assistant.md): at start, queues a retained
/// config for each camera and stream (<see cref="HomeAssistantEntities"/>) on the publisher, so they go out at the
/// first connect and again after every reconnect; queues them again whenever Home Assistant's birth message
/// (<c>{DiscoveryPrefix}/status</c> <c>online</c>) arrives; and removes (empty retained payload) the configs of
/// entities no longer configured. What was published is remembered in <c>{State:Directory}/home-assistant-discovery.json</c>
/// (without a state folder nothing is remembered, so nothing can be removed): the broker's retained configs cannot
/// be read back instead, since the daemon's subscriptions are no-local and mosquitto does not hand a client the
/// retained messages its own client id published.
/// </summary>
internal sealed partial class HomeAssistantDiscovery : IHostedService
{
    /// <summary>The file in <c>State:Directory</c> that lists the discovery topics published.</summary>
    public const string RecordFileName = "home-assistant-discovery.json";

    private readonly HomeAssistantOptions _options;
    private readonly string _stateDirectory;
    private readonly MqttTopics _topics;
    private readonly MqttPublisher _publisher;
    private readonly IMqttSubscriptions _subscriptions;
    private readonly ILogger<HomeAssistantDiscovery> _logger;
    private readonly Func<IReadOnlyList<DiscoveryConfig>> _build;
    private IReadOnlyList<DiscoveryConfig> _configs = [];
    private long _birthsSeen;

    /// <summary>Creates the discovery publisher (it publishes when started).</summary>
    public HomeAssistantDiscovery(
        IOptions<MqttOptions> mqtt,
        IOptions<StateOptions> state,
        IOptions<DeviceOptions> device,
        IOptions<CamerasOptions> cameras,
        IOptions<SensorsOptions> sensors,
        ModelCatalog models,
        MqttTopics topics,
        MqttPublisher publisher,
        IMqttSubscriptions subscriptions,
        ILogger<HomeAssistantDiscovery> logger)
    {
        ArgumentNullException.ThrowIfNull(mqtt);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(cameras);
        ArgumentNullException.ThrowIfNull(sensors);
        ArgumentNullException.ThrowIfNull(models);
        _options = mqtt.Value.HomeAssistant;
        _stateDirectory = state.Value.Directory;
        _topics = topics;
        _publisher = publisher;
        _subscriptions = subscriptions;
        _logger = logger;
        var deviceId = DeviceIdentity.Resolve(device.Value);
        _build = () => HomeAssistantEntities.Build(_options, topics, deviceId, cameras.Value, sensors.Value, m => models.Get(m).Task);
    }

    /// <summary>The configs published (empty while discovery is off).</summary>
    public IReadOnlyList<DiscoveryConfig> Configs => _configs;

    /// <summary>Birth messages of Home Assistant received (each one republishes every config).</summary>
    public long BirthsSeen => Interlocked.Read(ref _birthsSeen);

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var record = string.IsNullOrEmpty(_stateDirectory) ? null : Path.Combine(_stateDirectory, RecordFileName);
        var previous = ReadRecord(record);
        _configs = _options.Enabled ? _build() : [];
        var current = _configs.Select(c => c.Topic).ToHashSet(StringComparer.Ordinal);

        // Entities gone from the configuration (or discovery switched off): an empty retained config removes them from Home Assistant.
        foreach (var gone in previous.Where(t => !current.Contains(t)))
        {
            _publisher.TryPublish(gone, [], retain: true);
            LogRemoved(_logger, gone);
        }

        if (_options.Enabled)
        {
            PublishAll();
            LogPublished(_logger, _configs.Count, _options.DiscoveryPrefix, record ?? "nowhere (no State:Directory: entities removed from the configuration stay in Home Assistant)");
            var birth = $"{_options.DiscoveryPrefix.TrimEnd('/')}/status";
            _subscriptions.Subscribe(birth, OnBirthMessage);
        }

        if (record is not null && (previous.Count > 0 || current.Count > 0))
        {
            WriteRecord(record, [.. current.Order(StringComparer.Ordinal)]);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void PublishAll()
    {
        foreach (var config in _configs)
        {
            _publisher.TryPublish(config.Topic, config.Payload, retain: true);
        }
    }

    // On the client's receive loop: queueing copies the payloads and never blocks.
    private void OnBirthMessage(string topic, ReadOnlySequence<byte> payload)
    {
        if (payload.Length != 6 || !payload.ToArray().AsSpan().SequenceEqual("online"u8))
        {
            return; // "offline" (its will), or anything else: nothing to do.
        }

        Interlocked.Increment(ref _birthsSeen);
        PublishAll();
        LogRepublished(_logger, _configs.Count, topic);
    }

    private List<string> ReadRecord(string? record)
    {
        if (record is null || !File.Exists(record))
        {
            return [];
        }

        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(record));
            return [.. document.RootElement.GetProperty("topics").EnumerateArray().Select(t => t.GetString()).OfType<string>()];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            // A damaged record loses only the removal of entities that left the configuration; it is written again below.
            LogRecordUnreadable(_logger, record, ex.Message);
            return [];
        }
    }

    private void WriteRecord(string record, IReadOnlyList<string> topics)
    {
        try
        {
            PrivateDirectory.Ensure(_stateDirectory);
            var buffer = new ArrayBufferWriter<byte>(256);
            using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                writer.WriteStartObject();
                writer.WriteStartArray("topics");
                foreach (var topic in topics)
                {
                    writer.WriteStringValue(topic);
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            // Replaced atomically: a crash while writing leaves the previous record, never half of one.
            var temporary = record + ".tmp";
            using (var file = new FileStream(temporary, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
            {
                file.Write(buffer.WrittenSpan);
                file.Flush(flushToDisk: true);
            }

            File.Move(temporary, record, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogRecordNotWritten(_logger, record, ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Home Assistant discovery: {Count} entity configs queued under {DiscoveryPrefix}; published topics remembered in {Record}")]
    private static partial void LogPublished(ILogger logger, int count, string discoveryPrefix, string record);

    [LoggerMessage(Level = LogLevel.Information, Message = "Home Assistant discovery: {Topic} removed (its entity is no longer configured)")]
    private static partial void LogRemoved(ILogger logger, string topic);

    [LoggerMessage(Level = LogLevel.Information, Message = "Home Assistant came online ({Topic}): {Count} entity configs published again")]
    private static partial void LogRepublished(ILogger logger, int count, string topic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Home Assistant discovery record {Record} cannot be read ({Reason}): entities removed from the configuration since it was written stay in Home Assistant until deleted there")]
    private static partial void LogRecordUnreadable(ILogger logger, string record, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Home Assistant discovery record {Record} cannot be written ({Reason}): entities removed from the configuration later will stay in Home Assistant")]
    private static partial void LogRecordNotWritten(ILogger logger, string record, string reason);
}
