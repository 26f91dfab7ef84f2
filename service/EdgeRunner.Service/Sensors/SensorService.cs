using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Hardware.Supervision;
using EdgeRunner.Models.Inference;
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
/// session; each stream owns its state. Models load (and fail) in <see cref="UnitHostService{TUnit}.Prepare"/>.
/// </summary>
internal sealed partial class SensorService : UnitHostService<StreamRunner>
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
    private readonly Dictionary<string, (SequenceModel Model, object Lock, StepBatcher Batcher)> _models = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, string> _failedModels = new(StringComparer.OrdinalIgnoreCase);
    private readonly SensorSourceOverride? _sourceOverride;
    private long _unexpectedErrors;
    private long _streamsFailed;

    /// <summary>First wait before a stream that failed unexpectedly runs again; doubled per failure in a row.</summary>
    internal static readonly TimeSpan RestartMinDelay = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between restarts of a stream that keeps failing.</summary>
    internal static readonly TimeSpan RestartMaxDelay = TimeSpan.FromSeconds(60);

    public SensorService(
        IOptions<SensorsOptions> sensors,
        IOptions<StateOptions> state,
        ModelCatalog catalog,
        IOptions<DeviceOptions> device,
        IResultPublisher publisher,
        IMqttSubscriptions subscriptions,
        MqttTopics topics,
        TimeProvider timeProvider,
        ILoggerFactory loggerFactory,
        SensorSourceOverride? sourceOverride = null,
        IHostApplicationLifetime? lifetime = null)
        : base(loggerFactory.CreateLogger<SensorService>(), lifetime)
    {
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
    }

    /// <summary>The streams (for tests and metrics).</summary>
    internal IReadOnlyList<StreamRunner> Streams => Units;

    /// <summary>One step batcher per loaded model (for tests and metrics).</summary>
    internal IEnumerable<StepBatcher> Batchers => _models.Values.Select(m => m.Batcher);

    protected override IEnumerable<StreamRunner> CreateUnits()
    {
        // Streams of wildcard MQTT routes appear at run time (SensorService.Lifecycle.cs).
        PruneDynamicCheckpoints();
        RegisterWildcardIngests();
        return WithLifecycle(CreateRunners(_sensors.Where(s => !IsWildcardIngest(s.Value))));
    }

    private IEnumerable<StreamRunner> CreateRunners(IEnumerable<KeyValuePair<string, SensorStreamOptions>> streams)
    {
        foreach (var (streamId, options) in streams)
        {
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
            var manifest = resolved.Manifest!;
            var processor = new SensorStreamProcessor(streamId, model, modelLock, manifest.Stream!, manifest.Labels, batcher, SequenceOutputSpec.From(resolved.Task, manifest.Postprocess));
            var modelRate = manifest.Stream!.SampleRateHz;
            ISensorSource source;
            try
            {
                source = _sourceOverride?.Invoke(streamId, options, processor.ChunkSamples, modelRate) ?? options.Source.Kind switch
                {
                    SensorSourceKind.SimulatedVibration => new SimulatedVibrationSource(
                        options.Source.Seed, options.Source.SampleRateHz > 0 ? options.Source.SampleRateHz : modelRate, processor.ChunkSamples, _timeProvider),
                    SensorSourceKind.Csv => new CsvSensorSource(
                        new CsvSourceOptions
                        {
                            Path = options.Source.Path,
                            Columns = options.Source.Columns ?? [],
                            TimestampColumn = options.Source.TimestampColumn,
                            SampleRateHz = options.Source.SampleRateHz,
                            Speed = options.Source.Speed,
                            Loop = options.Source.Loop,
                        },
                        _timeProvider,
                        SensorLogger(streamId)),
                    SensorSourceKind.I2c or SensorSourceKind.Gpio => Supervised(
                        streamId,
                        options.Source,
                        () => Sources.BusSensorSources.Create(options.Source, modelRate, _timeProvider, SensorLogger(streamId))!,
                        manifest.Stream.Channels,
                        options.Source.SampleRateHz > 0 ? options.Source.SampleRateHz : modelRate),
                    SensorSourceKind.Serial => Supervised(
                        streamId,
                        options.Source,
                        () => Sources.StreamSensorSources.Create(streamId, options.Source, modelRate, _timeProvider, _loggerFactory),
                        manifest.Stream.Channels,
                        options.Source.SampleRateHz),
                    SensorSourceKind.Audio when string.IsNullOrEmpty(options.Source.Path) => Supervised(
                        streamId,
                        options.Source,
                        () => Sources.StreamSensorSources.Create(streamId, options.Source, modelRate, _timeProvider, _loggerFactory),
                        manifest.Stream.Channels,
                        Math.Round(options.Source.SampleRateHz > 0 ? options.Source.SampleRateHz : modelRate)),
                    SensorSourceKind.Audio => Sources.StreamSensorSources.Create(streamId, options.Source, modelRate, _timeProvider, _loggerFactory),
                    SensorSourceKind.Mqtt => MqttSourceFor(streamId, options, manifest.Stream.Channels, modelRate),
                    _ => throw new StartupException($"Sensors:{streamId}:Source:Kind: unsupported kind {options.Source.Kind}", StartupException.ConfigError),
                };
            }
            catch (SensorSourceException ex)
            {
                throw new StartupException($"Sensors:{streamId}:Source: {ex.Message}", StartupException.ConfigError, ex);
            }

            var configuredChannels = ConfiguredChannels(options.Source) ?? source.Channels.Count;
            if (source.Channels.Count != processor.Channels || configuredChannels != processor.Channels)
            {
                // Checked from the configuration too: a device absent at start must not pass a check it would fail present.
                source.DisposeAsync().AsTask().GetAwaiter().GetResult();
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
                new SensorResultWriter(streamId, resolved.Id, model.Sha256, processor.Labels, processor.Task, model.ExecutionProvider),
                _publisher,
                _topics.SensorResult(streamId),
                _topics.SensorEvent(streamId),
                TimeSpan.FromSeconds(_device.ResultLogIntervalSeconds),
                _timeProvider,
                SensorLogger(streamId),
                Checkpointing(streamId, processor, model.Sha256, manifest.StateCompatibleWith),
                new SampleValidation(
                    options.InvalidSamples,
                    (float)Math.Max(options.MinValue, float.MinValue),
                    (float)Math.Min(options.MaxValue, float.MaxValue),
                    options.GapResetSeconds));
        }

    }

    /// <summary>
    /// A device-backed source (I2C, GPIO, serial, live audio) that may be absent now or go away later:
    /// it is opened through a <see cref="ReopeningSensorSource"/>, which retries with backoff while the
    /// daemon runs, and its state is published retained on <c>.../sensors/{stream}/state</c>.
    /// </summary>
    private ReopeningSensorSource Supervised(string streamId, SensorSourceOptions options, Func<ISensorSource> open, IReadOnlyList<string> channels, double sampleRateHz)
    {
        var device = options.Kind switch
        {
            SensorSourceKind.I2c => $"I2C {options.Chip} at bus {options.BusId}",
            SensorSourceKind.Gpio => $"GPIO pins {string.Join(",", options.Pins ?? [])}",
            SensorSourceKind.Serial => $"serial port {options.Port}",
            _ => $"ALSA device {options.Device}",
        };
        if (options.Kind == SensorSourceKind.Audio)
        {
            // Live capture starts its program on the first read; a missing one is an installation error, not an absent device.
            var (program, package) = options.Backend == AudioCaptureBackend.Arecord ? ("arecord", "alsa-utils") : ("ffmpeg", "ffmpeg");
            if (!IsOnPath(program))
            {
                throw new StartupException($"Sensors:{streamId}:Source:Backend: '{program}' is not installed (install the Debian package '{package}')", StartupException.ConfigError);
            }
        }

        var source = new ReopeningSensorSource(device, open, channels, sampleRateHz, _timeProvider, SensorLogger(streamId));
        if (source.InitialError is { } error && IsInstallationProblem(error))
        {
            // A missing ffmpeg/arecord or libgpiod will not appear by waiting: stop startup saying what to
            // install. An absent device is waited for by the wrapper.
            source.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw new StartupException($"Sensors:{streamId}:Source: {error.Message}", StartupException.ConfigError, error);
        }

        void Publish(SensorSourceState state, string reason) => PublishState(streamId, state.ToString().ToLowerInvariant(), reason);
        source.StateChanged += (_, e) => Publish(e.State, e.Reason);
        Publish(source.State, source.Reason);
        return source;
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

    /// <summary>
    /// Deletes checkpoints of dynamic streams (ids with a '/', escaped %2F in the file name) that nothing
    /// has written for <see cref="StateOptions.DynamicStreamRetentionDays"/>: each MQTT topic that ever
    /// published leaves one, and on a gateway whose devices come and go they would fill the disk.
    /// Configured streams' checkpoints are never pruned.
    /// </summary>
    private static readonly DateTime PlausibleClock = new(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private void PruneDynamicCheckpoints()
    {
        if (string.IsNullOrEmpty(_state.Directory) || _state.DynamicStreamRetentionDays <= 0 || !Directory.Exists(_state.Directory))
        {
            return;
        }

        // A board without a real-time clock boots in 1970 until NTP sets it: ages measured across that are
        // meaningless, so nothing is pruned on such a clock, nor a file written while it was wrong.
        var now = _timeProvider.GetUtcNow().UtcDateTime;
        if (now < PlausibleClock)
        {
            return;
        }

        var cutoff = now - TimeSpan.FromDays(_state.DynamicStreamRetentionDays);
        var pruned = 0;
        foreach (var file in Directory.EnumerateFiles(_state.Directory, "*%2F*.state"))
        {
            try
            {
                var written = File.GetLastWriteTimeUtc(file);
                if (written < cutoff && written >= PlausibleClock)
                {
                    File.Delete(file);
                    pruned++;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                LogPruneFailed(Logger, file, ex.Message);
            }
        }

        if (pruned > 0)
        {
            LogPruned(Logger, pruned, _state.DynamicStreamRetentionDays, _state.Directory);
        }
    }

    /// <summary>Restores the stream's checkpoint when there is one for this exact model; says why not otherwise.</summary>
    private StreamCheckpointing? Checkpointing(string streamId, SensorStreamProcessor processor, string modelSha256, IReadOnlyList<string> compatibleSha256)
    {
        if (string.IsNullOrEmpty(_state.Directory))
        {
            return null;
        }

        try
        {
            StreamCheckpoint.EnsureDirectory(_state.Directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // At startup this stops the daemon naming the key; a dynamic stream fails alone (its "failed" event says why).
            throw new StartupException($"State:Directory: cannot create '{_state.Directory}': {ex.Message}", StartupException.ConfigError, ex);
        }

        var path = StreamCheckpoint.PathFor(_state.Directory, streamId);
        long resume = 0;
        DateTimeOffset? lastSampleTime = null;
        double[]? runnerState = null;
        if (StreamCheckpoint.TryRead(path, [modelSha256, .. compatibleSha256], processor.State, out var position, out lastSampleTime, out runnerState, out var writtenBy, out var reason))
        {
            resume = position;
            processor.StateRestored();

            // An older checkpoint has no last-sample time: when it was written is the next best thing for the gap rule.
            var written = File.GetLastWriteTimeUtc(path);
            lastSampleTime ??= written >= PlausibleClock ? new DateTimeOffset(written, TimeSpan.Zero) : null;
            if (string.Equals(writtenBy, modelSha256, StringComparison.OrdinalIgnoreCase))
            {
                LogRestored(Logger, streamId, processor.State.Steps, path);
            }
            else
            {
                LogRestoredFromCompatible(Logger, streamId, processor.State.Steps, path, writtenBy);
            }
        }
        else if (File.Exists(path))
        {
            LogNotRestored(Logger, streamId, path, reason);
        }

        return new StreamCheckpointing(path, TimeSpan.FromSeconds(_state.CheckpointIntervalSeconds), resume, lastSampleTime, runnerState);
    }

    /// <summary>
    /// Runs one stream under supervision. A source's own declared error (<see cref="SensorSourceException"/>:
    /// bad data that will not get better by retrying) fails the stream, published and logged. Anything
    /// else unexpected (a source throwing what it never should, a failed step) is logged with its stack
    /// (rate-limited), counted, published ("restarting" with the reason), and the stream is run again
    /// after the code base's one backoff rule; the other streams never notice.
    /// </summary>
    protected override async Task RunUnitAsync(StreamRunner unit, CancellationToken cancellationToken)
    {
        var log = new LogRateLimiter(_timeProvider, TimeSpan.FromSeconds(10));
        var failuresInARow = 0;
        while (true)
        {
            var stepsBefore = unit.Steps;
            try
            {
                await unit.RunAsync(cancellationToken);
                break;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (SensorSourceException ex)
            {
                Interlocked.Increment(ref _streamsFailed);
                LogSourceFailed(Logger, unit.StreamId, ex.Message);
                Report(unit.StreamId, "failed", ex.Message);
                return;
            }
#pragma warning disable CA1031 // Supervision: whatever a stream throws must not end it for good nor touch the other streams; fatal runtime errors still propagate.
            catch (Exception ex) when (!IsFatal(ex))
#pragma warning restore CA1031
            {
                // Progress since the last failure starts the backoff over: only failures in a row lengthen it.
                failuresInARow = unit.Steps > stepsBefore ? 1 : failuresInARow + 1;
                var count = unit.RecordUnexpectedError();
                Interlocked.Increment(ref _unexpectedErrors);
                var delay = Backoff.Exponential(RestartMinDelay, RestartMaxDelay, failuresInARow, jitter: 0.2, sample: Random.Shared.NextDouble());
                if (log.TryAcquire(out var suppressed))
                {
                    LogUnexpectedError(Logger, unit.StreamId, ex.GetType().Name, ex.Message, count, delay.TotalSeconds, suppressed, ex);
                }

                Report(unit.StreamId, "restarting", $"{ex.GetType().Name}: {ex.Message}; restarting in {delay.TotalSeconds:0.#} s");
                try
                {
                    await Task.Delay(delay, _timeProvider, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                unit.PrepareRestart($"a restart after an unexpected {ex.GetType().Name}");
                Report(unit.StreamId, "streaming", "restarted");
            }
        }

        if (!cancellationToken.IsCancellationRequested && !IsDynamic(unit.StreamId))
        {
            PublishState(unit.StreamId, "ended", "the source ended");
        }
    }

    /// <summary>Unexpected errors of the streams' loops, each followed by a restart (for tests and metrics).</summary>
    internal long UnexpectedErrors => Interlocked.Read(ref _unexpectedErrors);

    /// <summary>Streams failed for good by their source's own error (for tests and metrics).</summary>
    internal long StreamsFailed => Interlocked.Read(ref _streamsFailed);

    /// <summary>A configured stream's retained state, or a dynamic stream's event (dynamic streams have no retained state).</summary>
    private void Report(string streamId, string state, string reason)
    {
        if (IsDynamic(streamId))
        {
            PublishEvent(streamId, state, reason, topic: null, extra: null);
        }
        else
        {
            PublishState(streamId, state, reason);
        }
    }

    private static bool IsOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(directory => File.Exists(Path.Combine(directory, program)));

    private static bool IsInstallationProblem(Exception error)
    {
        for (var e = (Exception?)error; e is not null; e = e.InnerException)
        {
            if (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException or PlatformNotSupportedException
                || (e is System.ComponentModel.Win32Exception win32 && win32.NativeErrorCode == 2)) // ENOENT starting a program
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>How many channels a device-backed source's configuration gives (null for kinds whose source says it once opened).</summary>
    private static int? ConfiguredChannels(SensorSourceOptions source) => source.Kind switch
    {
        SensorSourceKind.I2c => source.Chip is { } chip ? I2cSensorSource.ChannelsOf(chip).Count : 0,
        SensorSourceKind.Gpio => source.Pins?.Length ?? 0,
        SensorSourceKind.Serial => source.Columns?.Length ?? 0,
        SensorSourceKind.Audio => source.Channels,
        _ => null,
    };

    /// <summary>A stream created at run time for one topic of an MQTT wildcard (its id spans topic levels).</summary>
    private static bool IsDynamic(string streamId) => streamId.Contains('/', StringComparison.Ordinal);

    /// <summary>Publishes a configured stream's retained state: streaming, unavailable, ended or failed, with the reason.</summary>
    private void PublishState(string streamId, string state, string reason) =>
        _publisher.TryPublish(_topics.SensorState(streamId), SensorResultWriter.WriteState(streamId, state, reason, _timeProvider.GetUtcNow()), retain: true);

    protected override string Describe(StreamRunner unit) => $"Sensor stream {unit.StreamId}";

    protected override async ValueTask DisposeSharedAsync()
    {
        await DrainLifecycleAsync();
        foreach (var (model, _, batcher) in _models.Values)
        {
            await batcher.DisposeAsync();
            model.Dispose();
        }
    }

    /// <summary>
    /// The stream's model, or false when it cannot be loaded (a bad file, a state input without its
    /// output, a changed SHA-256): the stream is marked failed — logged with the model's file and the
    /// reason, published retained on its state topic — and the other streams go on.
    /// </summary>
    private bool TryGetModel(ResolvedModel resolved, string streamId, out (SequenceModel Model, object Lock, StepBatcher Batcher) loaded)
    {
        if (_failedModels.TryGetValue(resolved.Id, out var failure))
        {
            StreamFailed(streamId, failure);
            loaded = default;
            return false;
        }

        try
        {
            loaded = GetModel(resolved, streamId);
            return true;
        }
        catch (StartupException ex) when (ex.InnerException is ModelLoadException or EdgeRunner.Models.Manifests.ManifestException)
        {
            var reason = ex.InnerException!.Message;
            _failedModels[resolved.Id] = reason;
            StreamFailed(streamId, reason);
            loaded = default;
            return false;
        }
    }

    private void StreamFailed(string streamId, string reason)
    {
        LogStreamFailed(Logger, streamId, reason);
        PublishState(streamId, "failed", reason);
    }

    private (SequenceModel Model, object Lock, StepBatcher Batcher) GetModel(ResolvedModel resolved, string streamId)
    {
        if (!_models.TryGetValue(resolved.Id, out var loaded))
        {
            var model = LoadModel(resolved, $"Sensors:{streamId}", _loggerFactory);
            var batcher = new StepBatcher(model, resolved.Options.MaxBatch, TimeSpan.FromMilliseconds(resolved.Options.BatchWaitMilliseconds), _timeProvider);
            loaded = (model, new object(), batcher);
            _models[resolved.Id] = loaded;
        }

        return loaded;
    }

    /// <summary>Loads a sequence model from its manifest. Throws <see cref="StartupException"/> naming <paramref name="owner"/>.</summary>
    internal static SequenceModel LoadModel(ResolvedModel resolved, string owner, ILoggerFactory loggerFactory)
    {
        var manifest = resolved.Manifest;
        if (!resolved.Task.IsSequence() || manifest?.Stream is null || manifest.Postprocess?.Output is null)
        {
            throw new StartupException(
                $"{owner}:Model: '{resolved.Id}' is not a sequence model with a manifest 'stream' section and postprocess output",
                StartupException.ConfigError);
        }

        try
        {
            manifest.VerifySha256();
            var stream = manifest.Stream;
            return SequenceModel.Load(
                new SequenceModelOptions
                {
                    Id = resolved.Id,
                    Path = resolved.Path,
                    StreamInput = stream.Input,
                    StreamBatchAxis = stream.BatchAxis,
                    ValuesPerStep = stream.Channels.Count * (stream.ChunkSamples + stream.ContextSamples),
                    ResultOutput = manifest.Postprocess.Output,
                    ResultBatchAxis = manifest.Postprocess.BatchAxis,
                    State = manifest.State is { } state ? [.. state.Select(p => (p.Input, p.Output, p.BatchAxis))] : null,
                    ConstantInputs = ConstantValues(manifest),
                    ExecutionProviders = resolved.Options.ExecutionProviders ?? ["cpu"],
                    AllowFallback = resolved.Options.AllowFallback,
                    DeviceId = resolved.Options.DeviceId,
                    ProviderSettings = resolved.Options.ProviderOptions.ToSettings(),
                    IntraOpThreads = resolved.Options.IntraOpThreads,
                },
                loggerFactory.CreateLogger<SequenceModel>());
        }
        catch (Exception ex) when (ex is ModelLoadException or EdgeRunner.Models.Manifests.ManifestException)
        {
            throw new StartupException($"{owner}: {ex.Message}", StartupException.ConfigError, ex);
        }
    }

    /// <summary>The manifest's constant inputs as numbers (a JSON number, boolean, or array of them).</summary>
    private static Dictionary<string, double[]> ConstantValues(EdgeRunner.Models.Manifests.ModelManifest manifest)
    {
        var constants = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var (name, value) in manifest.ConstantInputs ?? new Dictionary<string, System.Text.Json.JsonElement>())
        {
            static double Number(System.Text.Json.JsonElement e, string name, string path) => e.ValueKind switch
            {
                System.Text.Json.JsonValueKind.Number => e.GetDouble(),
                System.Text.Json.JsonValueKind.True => 1,
                System.Text.Json.JsonValueKind.False => 0,
                _ => throw new EdgeRunner.Models.Manifests.ManifestException($"Manifest '{path}': constant_inputs.{name} must be a number, a boolean or an array of them."),
            };

            constants[name] = value.ValueKind == System.Text.Json.JsonValueKind.Array
                ? [.. value.EnumerateArray().Select(e => Number(e, name, manifest.ManifestPath))]
                : [Number(value, name, manifest.ManifestPath)];
        }

        return constants;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted {Count} checkpoints of dynamic streams not seen for {Days} days from {Directory}")]
    private static partial void LogPruned(ILogger logger, int count, double days, string directory);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot delete the old checkpoint {Path}: {Reason}")]
    private static partial void LogPruneFailed(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sensor {StreamId}: unexpected {ExceptionType}: {Reason} ({Count} so far); restarting the stream in {DelaySeconds:0.#} s, the other streams go on ({Suppressed} not logged since the last line)")]
    private static partial void LogUnexpectedError(ILogger logger, string streamId, string exceptionType, string reason, long count, double delaySeconds, long suppressed, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sensor {StreamId}: the source failed: {Reason}; the stream stops, the other streams go on")]
    private static partial void LogSourceFailed(ILogger logger, string streamId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sensor {StreamId} failed: {Reason}; the other streams go on")]
    private static partial void LogStreamFailed(ILogger logger, string streamId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: state restored at step {Steps} from {Path}, written by the compatible model sha256 {WrittenBy} (manifest state_compatible_with)")]
    private static partial void LogRestoredFromCompatible(ILogger logger, string streamId, long steps, string path, string writtenBy);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: state restored at step {Steps} from {Path}")]
    private static partial void LogRestored(ILogger logger, string streamId, long steps, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor {StreamId}: checkpoint {Path} not used ({Reason}); the state starts fresh")]
    private static partial void LogNotRestored(ILogger logger, string streamId, string path, string reason);
}
