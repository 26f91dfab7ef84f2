using EdgeRunner.Hardware.Sensors;
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
/// Runs every enabled sensor stream: source → one chunk → normalise → one step of the stream's
/// stateful model (state kept per stream) → MQTT. Streams of the same model share one loaded
/// session; each stream owns its state. Models load (and fail) in <see cref="Prepare"/>.
/// </summary>
internal sealed partial class SensorService : IHostedService, IAsyncDisposable
{
    private readonly SensorsOptions _sensors;
    private readonly ModelCatalog _catalog;
    private readonly DeviceOptions _device;
    private readonly IResultPublisher _publisher;
    private readonly MqttTopics _topics;
    private readonly TimeProvider _timeProvider;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger<SensorService> _logger;
    private readonly Dictionary<string, (SequenceModel Model, object Lock)> _models = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<StreamRunner> _streams = [];
    private readonly List<Task> _running = [];
    private readonly CancellationTokenSource _stopping = new();
    private bool _prepared;
    private int _disposed;

    public SensorService(
        IOptions<SensorsOptions> sensors,
        ModelCatalog catalog,
        IOptions<DeviceOptions> device,
        IResultPublisher publisher,
        MqttTopics topics,
        TimeProvider timeProvider,
        ILoggerFactory loggerFactory)
    {
        _sensors = sensors.Value;
        _catalog = catalog;
        _device = device.Value;
        _publisher = publisher;
        _topics = topics;
        _timeProvider = timeProvider;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<SensorService>();
    }

    /// <summary>Streams (for tests and metrics).</summary>
    internal IReadOnlyList<StreamRunner> Streams => _streams;

    /// <summary>Loads every stream's model and opens its source. Throws <see cref="StartupException"/> naming the stream and model.</summary>
    public void Prepare()
    {
        if (_prepared)
        {
            return;
        }

        foreach (var (streamId, options) in _sensors)
        {
            if (!options.Enabled)
            {
                continue;
            }

            var resolved = _catalog.Get(options.Model);
            var (model, modelLock) = GetModel(resolved, streamId);
            var manifest = resolved.Manifest!;
            var processor = new SensorStreamProcessor(streamId, model, modelLock, manifest.Stream!, manifest.Labels);
            var modelRate = manifest.Stream!.SampleRateHz;
            ISensorSource source;
            try
            {
                source = options.Source.Kind switch
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
                        _loggerFactory.CreateLogger($"EdgeRunner.Sensor.{streamId}")),
                    _ => throw new StartupException($"Sensors:{streamId}:Source:Kind: unsupported kind {options.Source.Kind}", StartupException.ConfigError),
                };
            }
            catch (SensorSourceException ex)
            {
                throw new StartupException($"Sensors:{streamId}:Source: {ex.Message}", StartupException.ConfigError, ex);
            }

            if (source.Channels.Count != processor.Channels)
            {
                throw new StartupException(
                    $"Sensors:{streamId}: source has {source.Channels.Count} channels but model '{resolved.Id}' takes {processor.Channels}",
                    StartupException.ConfigError);
            }

            _streams.Add(new StreamRunner(
                streamId,
                source,
                processor,
                modelRate,
                new SensorResultWriter(streamId, resolved.Id, model.Sha256, manifest.Labels),
                _publisher,
                _topics.SensorResult(streamId),
                TimeSpan.FromSeconds(_device.ResultLogIntervalSeconds),
                _timeProvider,
                _loggerFactory.CreateLogger($"EdgeRunner.Sensor.{streamId}")));
        }

        _prepared = true;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Prepare();
        foreach (var stream in _streams)
        {
            _running.Add(RunStreamAsync(stream, _stopping.Token));
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await Task.WhenAll(_running).WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync();
        await Task.WhenAll(_running);
        foreach (var stream in _streams)
        {
            await stream.DisposeAsync();
        }

        foreach (var (model, _) in _models.Values)
        {
            model.Dispose();
        }

        _stopping.Dispose();
    }

    private (SequenceModel Model, object Lock) GetModel(ResolvedModel resolved, string streamId)
    {
        if (!_models.TryGetValue(resolved.Id, out var loaded))
        {
            loaded = (LoadModel(resolved, $"Sensors:{streamId}", _loggerFactory), new object());
            _models[resolved.Id] = loaded;
        }

        return loaded;
    }

    /// <summary>Loads a sequence model from its manifest. Throws <see cref="StartupException"/> naming <paramref name="owner"/>.</summary>
    internal static SequenceModel LoadModel(ResolvedModel resolved, string owner, ILoggerFactory loggerFactory)
    {
        var manifest = resolved.Manifest;
        if (resolved.Task != ModelTask.SequenceClassification || manifest?.Stream is null || manifest.Postprocess?.Output is null)
        {
            throw new StartupException(
                $"{owner}:Model: '{resolved.Id}' is not a sequence model with a manifest 'stream' section and postprocess output",
                StartupException.ConfigError);
        }

        try
        {
            manifest.VerifySha256();
            return SequenceModel.Load(
                new SequenceModelOptions
                {
                    Id = resolved.Id,
                    Path = resolved.Path,
                    StreamInput = manifest.Stream.Input,
                    ResultOutput = manifest.Postprocess.Output,
                    State = [.. manifest.State.Select(p => (p.Input, p.Output, p.BatchAxis))],
                    ExecutionProviders = resolved.Options.ExecutionProviders ?? ["cpu"],
                    IntraOpThreads = resolved.Options.IntraOpThreads,
                },
                loggerFactory.CreateLogger<SequenceModel>());
        }
        catch (Exception ex) when (ex is ModelLoadException or EdgeRunner.Models.Manifests.ManifestException)
        {
            throw new StartupException($"{owner}: {ex.Message}", StartupException.ConfigError, ex);
        }
    }

    private async Task RunStreamAsync(StreamRunner stream, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Run(() => stream.RunAsync(cancellationToken), CancellationToken.None);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // One stream failing must not take the others (or the daemon) down.
            LogStreamCrashed(_logger, stream.StreamId, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Sensor stream {StreamId} stopped unexpectedly")]
    private static partial void LogStreamCrashed(ILogger logger, string streamId, Exception exception);
}
