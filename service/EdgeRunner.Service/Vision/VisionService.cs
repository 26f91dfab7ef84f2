using System.Runtime.CompilerServices;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Vision.Sources;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Vision;

/// <summary>
/// Builds a camera's processor from its resolved model (<see cref="VisionProcessorFactory.Create"/> unless
/// another is registered in the container: tests wrap the real one to make a stage fail on purpose).
/// </summary>
internal delegate VisionFrameProcessor VisionProcessorBuilder(Catalog.ResolvedModel model, string owner, ILoggerFactory loggerFactory);

/// <summary>
/// Wraps each frame source a camera creates (at start and on every capture restart); none is registered in
/// the daemon. Tests register one to make a capture loop fail on purpose.
/// </summary>
internal delegate IFrameSource VisionSourceDecorator(string cameraId, IFrameSource source);

/// <summary>
/// Builds one <see cref="VisionPipeline"/> per enabled camera at start (loading and warming up each
/// model, so "started" means ready to infer) and runs them until stop. A model that cannot be used
/// stops startup with the model, file and reason named.
/// </summary>
internal sealed class VisionService : UnitHostService<VisionPipeline>
{
    private readonly CamerasOptions _cameras;
    private readonly Catalog.ModelCatalog _catalog;
    private readonly DeviceOptions _device;
    private readonly IResultPublisher _publisher;
    private readonly MqttTopics _topics;
    private readonly PayloadOrigin _origin;
    private readonly TimeProvider _timeProvider;
    private readonly ILoggerFactory _loggerFactory;
    private readonly VisionProcessorBuilder _processorBuilder;
    private readonly VisionSourceDecorator? _sourceDecorator;
    private readonly Diagnostics.EdgeRunnerMetrics? _metrics;

    public VisionService(
        IOptions<CamerasOptions> cameras,
        Catalog.ModelCatalog catalog,
        IOptions<DeviceOptions> device,
        IResultPublisher publisher,
        MqttTopics topics,
        PayloadOrigin origin,
        TimeProvider timeProvider,
        ILoggerFactory loggerFactory,
        VisionProcessorBuilder? processorBuilder = null,
        VisionSourceDecorator? sourceDecorator = null,
        IHostApplicationLifetime? lifetime = null,
        Diagnostics.EdgeRunnerMetrics? metrics = null)
        : base(loggerFactory.CreateLogger<VisionService>(), lifetime)
    {
        _metrics = metrics;
        _cameras = cameras.Value;
        _catalog = catalog;
        _device = device.Value;
        _publisher = publisher;
        _topics = topics;
        _origin = origin;
        _timeProvider = timeProvider;
        _loggerFactory = loggerFactory;
        _processorBuilder = processorBuilder ?? VisionProcessorFactory.Create;
        _sourceDecorator = sourceDecorator;
    }

    /// <summary>The camera pipelines (for tests and metrics).</summary>
    internal IReadOnlyList<VisionPipeline> Pipelines => Units;

    protected override async IAsyncEnumerable<VisionPipeline> CreateUnitsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var (cameraId, camera) in _cameras)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (camera.Enabled)
            {
                yield return await CreatePipelineAsync(cameraId, camera);
            }
        }
    }

    protected override Task RunUnitAsync(VisionPipeline unit, CancellationToken cancellationToken) => unit.RunAsync(cancellationToken);

    protected override string Describe(VisionPipeline unit) => $"Camera {unit.CameraId}";

    private async Task<VisionPipeline> CreatePipelineAsync(string cameraId, CameraOptions camera)
    {
        var processor = _processorBuilder(_catalog.Get(camera.Model), $"Camera {cameraId}", _loggerFactory);
        SnapshotPublisher? snapshots = null;
        try
        {
            var logger = _loggerFactory.CreateLogger($"EdgeRunner.Camera.{cameraId}");
            var motion = camera.Motion;
            var gate = new InferenceGate(
                camera.DetectFps,
                motion.Enabled ? new Models.Preprocessing.MotionDetector(motion.DownscaleWidth, motion.Threshold, motion.MinAreaPercent) : null,
                TimeSpan.FromSeconds(motion.ForcedIntervalSeconds),
                _timeProvider.TimestampFrequency);
            if (camera.Snapshots.Enabled)
            {
                // Known only once the model is loaded: the manifest or the output shape decides the task.
                if (processor.Head is not DetectionHead)
                {
                    throw new StartupException($"Cameras:{cameraId}:Snapshots:Enabled: snapshots need a detection model; '{camera.Model}' is a {processor.Head.Task} model", StartupException.ConfigError);
                }

                var s = camera.Snapshots;
                snapshots = new SnapshotPublisher(cameraId, _topics.VisionSnapshot(cameraId), s.Retain, TimeSpan.FromSeconds(s.MinIntervalSeconds), s.MaxWidth, s.Quality, _publisher, _timeProvider.TimestampFrequency, logger);
            }

            return new VisionPipeline(
                cameraId,
                () => _sourceDecorator is { } decorate ? decorate(cameraId, CreateSource(cameraId, camera)) : CreateSource(cameraId, camera),
                processor,
                _publisher,
                _topics,
                _origin,
                camera.QueueCapacity,
                TimeSpan.FromSeconds(_device.ResultLogIntervalSeconds),
                _timeProvider,
                logger,
                gate,
                snapshots,
                TimeSpan.FromSeconds(camera.ReconnectMinDelaySeconds),
                TimeSpan.FromSeconds(camera.ReconnectMaxDelaySeconds),
                _metrics,
                waitForRoom: camera.Source is Sources.FileSourceOptions { RealTime: false });
        }
        catch
        {
            if (snapshots is not null)
            {
                await snapshots.DisposeAsync();
            }

            processor.Dispose();
            throw;
        }
    }

    private IFrameSource CreateSource(string cameraId, CameraOptions camera)
    {
        var pool = new FramePool(camera.QueueCapacity + 2);
        try
        {
            // The camera's kind builds its source (Sources/, one file per kind).
            return camera.Source.Create(new CameraSourceContext(cameraId, camera, pool, _timeProvider, _loggerFactory));
        }
        catch (FrameSourceException ex)
        {
            throw new StartupException($"Cameras:{cameraId}:Source: {ex.Message}", StartupException.ConfigError, ex);
        }
    }
}
