using System.Runtime.CompilerServices;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Hardware.Supervision;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Catalog;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// Opens a stream's source in place of its configured kind when it returns one (null: the configured kind).
/// Registered in the service collection only where a source must fail in a chosen way (tests of the
/// supervision); the daemon never registers one.
/// </summary>
internal delegate ISensorSource? SensorSourceOverride(string streamId, SensorStreamOptions options, int blockSamples, double modelRateHz);

/// <summary>
/// Runs every enabled sensor stream: source → one chunk → normalise → one step of the stream's
/// stateful model (state kept per stream) → MQTT. Streams of the same model share one loaded
/// session; each stream owns its state. Models load (and fail) in <see cref="UnitHostService{TUnit}.PrepareAsync"/>.
/// </summary>
internal sealed partial class SensorService : UnitHostService<StreamRunner>, ISensorStreamHost
{
    private readonly SensorsOptions _sensors;
    private readonly StateOptions _state;
    private readonly ModelCatalog _catalog;
    private readonly DeviceOptions _device;
    private readonly IResultPublisher _publisher;
    private readonly IMqttSubscriptions _subscriptions;
    private readonly MqttTopics _topics;
    private readonly TimeProvider _timeProvider;
    private readonly ILoggerFactory _loggerFactory;
    private readonly SensorSourceOverride? _sourceOverride;
    private readonly Diagnostics.EdgeRunnerMetrics? _metrics;

    // The jobs this service wires together, one class each.
    private readonly SequenceModelPool _models;
    private readonly StreamCheckpoints _checkpoints;
    private readonly SensorStreamEvents _events;
    private readonly StreamSupervisor _supervisor;
    private readonly MqttIngestStreams _ingest;

    public SensorService(
        IOptions<SensorsOptions> sensors,
        IOptions<StateOptions> state,
        ModelCatalog catalog,
        IOptions<DeviceOptions> device,
        IResultPublisher publisher,
        IMqttSubscriptions subscriptions,
        MqttTopics topics,
        PayloadOrigin origin,
        TimeProvider timeProvider,
        ILoggerFactory loggerFactory,
        SensorSourceOverride? sourceOverride = null,
        IHostApplicationLifetime? lifetime = null,
        Diagnostics.EdgeRunnerMetrics? metrics = null)
        : base(loggerFactory.CreateLogger<SensorService>(), lifetime)
    {
        _metrics = metrics;
        _sourceOverride = sourceOverride;
        _sensors = sensors.Value;
        _state = state.Value;
        _catalog = catalog;
        _device = device.Value;
        _publisher = publisher;
        _subscriptions = subscriptions;
        _topics = topics;
        _timeProvider = timeProvider;
        _loggerFactory = loggerFactory;
        _models = new SequenceModelPool(timeProvider, loggerFactory);
        _checkpoints = new StreamCheckpoints(_state, timeProvider, Logger);
        _events = new SensorStreamEvents(publisher, topics, origin, timeProvider);
        _supervisor = new StreamSupervisor(_events, timeProvider, Logger);
        _ingest = new MqttIngestStreams(_sensors, catalog, topics, subscriptions, _events, this, timeProvider, loggerFactory, Logger);
    }

    /// <summary>The streams (for tests and metrics).</summary>
    internal IReadOnlyList<StreamRunner> Streams => Units;

    /// <summary>One step batcher per loaded model (for tests and metrics).</summary>
    internal IEnumerable<StepBatcher> Batchers => _models.Batchers;

    /// <summary>The loaded sequence models, for a model reload to swap one.</summary>
    internal SequenceModelPool Models => _models;

    /// <summary>The streams' state and event messages, for a model reload to announce the new model.</summary>
    internal SensorStreamEvents Events => _events;

    /// <summary>The MQTT ingest routes (for tests and metrics).</summary>
    internal IReadOnlyList<MqttIngestRoute> IngestRoutes => _ingest.IngestRoutes;

    /// <summary>Reset commands refused (unknown stream, unreadable payload).</summary>
    internal long ResetsRejected => _ingest.Resets.Rejected;

    /// <summary>Reset commands accepted and handed to their stream.</summary>
    internal long ResetsAccepted => _ingest.Resets.Accepted;

    /// <summary>Asks stream <paramref name="streamId"/> to reset its state (the <c>reset</c> command of <c>Mqtt:Commands</c>), acknowledged on its event topic once applied; false: no such stream.</summary>
    internal bool RequestReset(string streamId, string reason) => _ingest.DeliverReset(streamId, reason);

    /// <summary>Messages dropped from full ingest queues of the active MQTT streams.</summary>
    internal long IngestMessagesDropped => _ingest.IngestMessagesDropped;

    /// <summary>Unexpected errors dispatching an ingest message or a command (each message dropped, the receive loop going on).</summary>
    internal long DispatchErrors => _ingest.DispatchErrors;

    IReadOnlyList<StreamRunner> ISensorStreamHost.Streams => Units;

    protected override IAsyncEnumerable<StreamRunner> CreateUnitsAsync(CancellationToken cancellationToken)
    {
        // Streams of wildcard MQTT routes appear at run time (MqttIngestStreams).
        _checkpoints.PruneDynamic();
        _ingest.RegisterWildcardIngests();
        return _ingest.WithLifecycle(CreateRunnersAsync(_sensors.Where(s => !MqttIngestStreams.IsWildcardIngest(s.Value)), cancellationToken), cancellationToken);
    }

    // Subscribed only now that every configured stream runs: a message never finds a stream that is not there yet.
    protected override void OnStarted() => _ingest.Subscribe();

    async Task<StreamRunner?> ISensorStreamHost.CreateStreamAsync(string streamId, SensorStreamOptions options, CancellationToken cancellationToken) =>
        await CreateRunnersAsync([new KeyValuePair<string, SensorStreamOptions>(streamId, options)], cancellationToken).SingleOrDefaultAsync(cancellationToken);

    Task? ISensorStreamHost.TryRun(StreamRunner runner) => TryRunUnit(runner);

    bool ISensorStreamHost.TryRemove(StreamRunner runner) => TryRemoveUnit(runner);

    bool ISensorStreamHost.TryGetModel(ResolvedModel resolved, string streamId, out SharedSequenceModel loaded) => TryGetModel(resolved, streamId, out loaded);

    private async IAsyncEnumerable<StreamRunner> CreateRunnersAsync(IEnumerable<KeyValuePair<string, SensorStreamOptions>> streams, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var (streamId, options) in streams)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!options.Enabled)
            {
                continue;
            }

            var resolved = _catalog.Get(options.Model);
            if (!TryGetModel(resolved, streamId, out var loaded))
            {
                continue;
            }

            var (model, modelLock, batcher) = loaded;
            _events.SetModel(streamId, Catalog.RunningModelStatus.Of(model));
            var manifest = resolved.Manifest!;
            var processor = SequenceProcessorFactory.CreateProcessor(streamId, resolved, model, modelLock, batcher);
            var publishOutput = manifest.Postprocess?.PublishOutput ?? false;
            if (publishOutput && model.ResultLength > SensorResultWriter.MaxPublishedOutputValues)
            {
                throw new StartupException(
                    $"Models:{resolved.Id}:Manifest: postprocess.publish_output: output '{model.ResultOutput}' has {model.ResultLength} values per step; at most {SensorResultWriter.MaxPublishedOutputValues} can be published",
                    StartupException.ConfigError);
            }

            var modelRate = manifest.Stream!.SampleRateHz;
            ISensorSource source;
            try
            {
                source = _sourceOverride?.Invoke(streamId, options, processor.ChunkSamples, modelRate)
                    ?? Sources.SensorSourceKinds.Create(options.Source, new Sources.SensorSourceContext
                    {
                        StreamId = streamId,
                        BlockSamples = processor.ChunkSamples,
                        ModelRateHz = modelRate,
                        Channels = manifest.Stream.Channels,
                        TimeProvider = _timeProvider,
                        LoggerFactory = _loggerFactory,
                        Logger = SensorLogger(streamId),
                        Watch = device => Watch(streamId, device),
                        OpenMqttIngest = () => _ingest.MqttSourceFor(streamId, options, manifest.Stream.Channels, modelRate),
                    });
            }
            catch (SensorSourceException ex)
            {
                throw new StartupException($"Sensors:{streamId}:Source: {ex.Message}", StartupException.ConfigError, ex);
            }

            if (ResampleRatioCheck.Problem(streamId, source.SampleRateHz, modelRate, processor.ChunkSamples, processor.Channels) is { } resampleProblem)
            {
                await source.DisposeAsync();
                throw new StartupException(resampleProblem, StartupException.ConfigError);
            }

            var streamLogger = SensorLogger(streamId);
            var layout = StreamLayouts.Describe(processor.Layout, processor.LayoutGuessed);
            LogStreamInput(streamLogger, streamId, resolved.Id, model.StreamInput, layout);
            var resampleRatio = ResampleRatioCheck.Ratio(source.SampleRateHz, modelRate);
            if (resampleRatio > ResampleRatioCheck.WarnRatio)
            {
                LogResampleRatio(streamLogger, streamId, source.SampleRateHz, modelRate, resampleRatio, ResampleRatioCheck.WarnRatio);
            }

            var configuredChannels = Sources.SensorSourceKinds.ConfiguredChannels(options.Source, streamId) ?? source.Channels.Count;
            if (source.Channels.Count != processor.Channels || configuredChannels != processor.Channels)
            {
                // Checked from the configuration too: a device absent at start must not pass a check it would fail present.
                await source.DisposeAsync();
                throw new StartupException(
                    $"Sensors:{streamId}: source has {configuredChannels} channels but model '{resolved.Id}' takes {processor.Channels}",
                    StartupException.ConfigError);
            }

            if (source is not ReopeningSensorSource && !IsDynamic(streamId))
            {
                // Replaces whatever an earlier run left retained (e.g. "failed" before the model was fixed).
                PublishState(streamId, "streaming", "started");
            }

            yield return new StreamRunner(
                streamId,
                source,
                processor,
                modelRate,
                new SensorResultWriter(_events.Origin, streamId, resolved.Id, model.Sha256, processor.Labels, processor.Task, model.ExecutionProvider, publishOutput, source is IRecordedTimeSource { StampsRecordingTime: true }),
                _publisher,
                _topics.SensorResult(streamId),
                _topics.SensorEvent(streamId),
                TimeSpan.FromSeconds(_device.ResultLogIntervalSeconds),
                _timeProvider,
                SensorLogger(streamId),
                _checkpoints.Restore(streamId, processor, model.Sha256, manifest.StateCompatibleWith),
                new SampleValidation(
                    options.InvalidSamples,
                    (float)Math.Max(options.MinValue, float.MinValue),
                    (float)Math.Min(options.MaxValue, float.MaxValue),
                    options.GapResetSeconds),
                _metrics);
        }

    }

    /// <summary>Publishes the state of a device-backed source (opened under supervision by its kind) retained on <c>.../sensors/{stream}/state</c>.</summary>
    private void Watch(string streamId, ReopeningSensorSource source)
    {
        void Publish(SourceHealth state, string reason) => PublishState(streamId, SourceHealthWords.ForSensor(state), reason);
        source.StateChanged += (_, e) => Publish(e.State, e.Reason);
        Publish(source.State, source.Reason);
    }

    /// <summary>
    /// The logger of a stream, by its <c>Sensors</c> entry: a dynamic stream (<c>vib/m17</c>) logs under
    /// its entry's category (<c>EdgeRunner.Sensor.vib</c>) with its own id in every message, because
    /// the logger factory keeps every category it has made for good, and MQTT topics come and go.
    /// </summary>
    private ILogger SensorLogger(string streamId)
    {
        var slash = streamId.IndexOf('/', StringComparison.Ordinal);
        return _loggerFactory.CreateLogger($"EdgeRunner.Sensor.{(slash < 0 ? streamId : streamId[..slash])}");
    }

    /// <summary>Runs one stream under supervision (<see cref="StreamSupervisor"/>).</summary>
    protected override Task RunUnitAsync(StreamRunner unit, CancellationToken cancellationToken) => _supervisor.RunAsync(unit, cancellationToken);

    /// <summary>Unexpected errors of the streams' loops, each followed by a restart (for tests and metrics).</summary>
    internal long UnexpectedErrors => _supervisor.UnexpectedErrors;

    /// <summary>Streams failed for good by their source's own error (for tests and metrics).</summary>
    internal long StreamsFailed => _supervisor.StreamsFailed;

    private static bool IsDynamic(string streamId) => SensorStreamEvents.IsDynamic(streamId);

    private void PublishState(string streamId, string state, string reason) => _events.PublishState(streamId, state, reason);

    protected override string Describe(StreamRunner unit) => $"Sensor stream {unit.StreamId}";

    protected override async ValueTask DisposeSharedAsync()
    {
        await _ingest.DrainAsync();
        await _models.DisposeAsync();
    }

    /// <summary>
    /// The stream's model, or false when it cannot be loaded (a bad file, a state input without its
    /// output, a changed SHA-256): the stream is marked failed — logged with the model's file and the
    /// reason, published retained on its state topic — and the other streams go on.
    /// </summary>
    private bool TryGetModel(ResolvedModel resolved, string streamId, out SharedSequenceModel loaded)
    {
        if (_models.TryGet(resolved, streamId, out loaded, out var failure))
        {
            return true;
        }

        LogStreamFailed(Logger, streamId, failure);
        PublishState(streamId, "failed", failure);
        return false;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: model {ModelId} input '{Input}' is fed as {Layout}")]
    private static partial void LogStreamInput(ILogger logger, string streamId, string modelId, string input, string layout);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor {StreamId}: the source's {SourceRateHz} Hz is resampled to the model's {ModelRateHz} Hz, a ratio of {Ratio:0.#} (above {WarnRatio}): linear interpolation makes most of what the model sees, and an upsampled block costs that many more steps; a model trained at the source's rate fits better")]
    private static partial void LogResampleRatio(ILogger logger, string streamId, double sourceRateHz, double modelRateHz, double ratio, double warnRatio);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sensor {StreamId} failed: {Reason}; the other streams go on")]
    private static partial void LogStreamFailed(ILogger logger, string streamId, string reason);
}
