using System.Threading.Channels;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Vision;

/// <summary>
/// One camera: source → bounded channel (newest frame wins; dropped frames counted) → gate (detection
/// rate limit, motion; skipped frames counted) → preprocess → ONNX Runtime → decode → MQTT, plus an
/// annotated snapshot when the detected labels change. Capture and inference run as two loops so a slow
/// model never stalls the camera; the channel between them is the only hand-off and frames are disposed
/// by whoever holds them last. Owns its source, processor and snapshot publisher.
/// </summary>
internal sealed partial class VisionPipeline : IAsyncDisposable
{
    private readonly string _cameraId;
    private readonly IFrameSource _source;
    private readonly VisionFrameProcessor _processor;
    private readonly VisionResultWriter _resultWriter;
    private readonly IResultPublisher _publisher;
    private readonly string _resultTopic;
    private readonly string _stateTopic;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Channel<Frame> _frames;
    private readonly InferenceGate _gate;
    private readonly SnapshotPublisher? _snapshots;
    private readonly long _logIntervalTicks;
    private long _lastLogTimestamp;
    private long _dropped;
    private long _processed;
    private long _skippedRate;
    private long _skippedMotion;

    public VisionPipeline(
        string cameraId,
        IFrameSource source,
        VisionFrameProcessor processor,
        IResultPublisher publisher,
        MqttTopics topics,
        int queueCapacity,
        TimeSpan resultLogInterval,
        TimeProvider timeProvider,
        ILogger logger,
        InferenceGate? gate = null,
        SnapshotPublisher? snapshots = null)
    {
        _cameraId = cameraId;
        _source = source;
        _processor = processor;
        _publisher = publisher;
        _resultTopic = topics.VisionResult(cameraId);
        _stateTopic = topics.VisionState(cameraId);
        _timeProvider = timeProvider;
        _logger = logger;
        _gate = gate ?? new InferenceGate(0, null, TimeSpan.Zero, timeProvider.TimestampFrequency);
        _snapshots = snapshots;
        _resultWriter = new VisionResultWriter(processor.Model.Id, processor.Model.Sha256, processor.Model.ExecutionProvider);
        _logIntervalTicks = (long)(resultLogInterval.TotalSeconds * timeProvider.TimestampFrequency);
        _lastLogTimestamp = long.MinValue / 2;
        _frames = Channel.CreateBounded<Frame>(
            new BoundedChannelOptions(queueCapacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = true },
            frame =>
            {
                frame.Dispose();
                Interlocked.Increment(ref _dropped);
            });
    }

    public string CameraId => _cameraId;

    /// <summary>The camera's loaded model (id, execution provider), for the daemon's ready line.</summary>
    public EdgeRunner.Models.Inference.ModelSession Model => _processor.Model;

    /// <summary>Frames dropped because inference was behind.</summary>
    public long FramesDropped => Interlocked.Read(ref _dropped);

    /// <summary>Frames not run through the model because they came sooner than 1/DetectFps after the last inferred one.</summary>
    public long FramesSkippedRate => Interlocked.Read(ref _skippedRate);

    /// <summary>Frames not run through the model because nothing moved (motion gating).</summary>
    public long FramesSkippedMotion => Interlocked.Read(ref _skippedMotion);

    /// <summary>Snapshots published.</summary>
    public long SnapshotsPublished => _snapshots?.Published ?? 0;

    /// <summary>Frames run through the model.</summary>
    public long FramesProcessed => Interlocked.Read(ref _processed);

    /// <summary>Runs until cancelled or until a finite source ends.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        LogStarted(_logger, _cameraId, _source.Description, _processor.Model.Id, _resultTopic);
        if (_source is SupervisedFrameSource supervised)
        {
            supervised.StateChanged += OnStateChanged;
        }

        var capture = Task.Run(() => CaptureAsync(cancellationToken), CancellationToken.None);
        var inference = Task.Run(() => InferAsync(cancellationToken), CancellationToken.None);
        await Task.WhenAll(capture, inference);
    }

    public async ValueTask DisposeAsync()
    {
        if (_source is SupervisedFrameSource supervised)
        {
            supervised.StateChanged -= OnStateChanged;
        }

        while (_frames.Reader.TryRead(out var frame))
        {
            frame.Dispose();
        }

        await _source.DisposeAsync();
        if (_snapshots is not null)
        {
            await _snapshots.DisposeAsync();
        }

        _processor.Dispose();
        _resultWriter.Dispose();
    }

    private async Task CaptureAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var frame = await _source.ReadFrameAsync(cancellationToken);
                if (frame is null)
                {
                    LogSourceEnded(_logger, _cameraId);
                    PublishState("ended", "the source has no more frames", (_source as SupervisedFrameSource)?.Restarts ?? 0);
                    break;
                }

                if (frame.Sequence == 0 && _source is not SupervisedFrameSource)
                {
                    PublishState("streaming", _source.Description, restarts: 0);
                }

                // DropOldest: never blocks, never fails while the channel is open.
                if (!_frames.Writer.TryWrite(frame))
                {
                    frame.Dispose();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
        catch (FrameSourceException ex)
        {
            LogSourceFailed(_logger, _cameraId, ex.Message);
            PublishState("failed", ex.Message, (_source as SupervisedFrameSource)?.Restarts ?? 0);
        }
        finally
        {
            _frames.Writer.TryComplete();
        }
    }

    private async Task InferAsync(CancellationToken cancellationToken)
    {
        try
        {
            // A finite source completes the channel; its last frames still get results.
            while (await _frames.Reader.WaitToReadAsync(cancellationToken))
            {
                while (_frames.Reader.TryRead(out var frame))
                {
                    using (frame)
                    {
                        Process(frame);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private void OnStateChanged(object? sender, CameraStateChangedEventArgs e)
    {
        var restarts = (sender as SupervisedFrameSource)?.Restarts ?? 0;
        PublishState(e.State.ToString().ToLowerInvariant(), e.Reason, restarts);
    }

    // Rare (state changes only): a small allocation here is fine.
    private void PublishState(string state, string reason, long restarts)
    {
        LogState(_logger, _cameraId, state, reason);
        var payload = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new CameraStatePayload(_cameraId, state, reason, _timeProvider.GetUtcNow(), restarts, FramesDropped, FramesSkippedRate, FramesSkippedMotion), CameraStatePayloadContext.Default.CameraStatePayload);
        _publisher.TryPublish(_stateTopic, payload, retain: true);
    }

    private void Process(Frame frame)
    {
        // Arrival time at the inference loop, on the monotonic clock: frames that waited in the queue are
        // judged by when they can be inferred, and a wall-clock step cannot stall or flood the camera.
        var now = _timeProvider.GetTimestamp();
        switch (_gate.Evaluate(now, InferenceGate.View(frame)))
        {
            case GateDecision.SkipRate:
                Interlocked.Increment(ref _skippedRate);
                return;
            case GateDecision.SkipMotion:
                Interlocked.Increment(ref _skippedMotion);
                return;
        }

        FrameTimings timings;
        try
        {
            timings = _processor.Process(frame);
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException ex)
        {
            LogInferenceFailed(_logger, _cameraId, frame.Sequence, ex.Message);
            return;
        }

        var context = new VisionResultContext(_cameraId, frame.Sequence, frame.Timestamp, frame.Origin, frame.Width, frame.Height, timings, FramesDropped, FramesSkippedRate, FramesSkippedMotion);
        _publisher.TryPublish(_resultTopic, _resultWriter.Write(context, _processor.Head));
        Interlocked.Increment(ref _processed);
        if (_snapshots is not null && _processor.Head is DetectionHead detections)
        {
            _snapshots.OnInferred(frame, detections.Results, detections.Labels, now);
        }

        MaybeLog(context);
    }

    private void MaybeLog(in VisionResultContext context)
    {
        var now = _timeProvider.GetTimestamp();
        if (now - _lastLogTimestamp < _logIntervalTicks || !_logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        _lastLogTimestamp = now;
        var head = _processor.Head;
        var (label, score) = head.Top;
        LogResult(_logger, context.CameraId, context.Sequence, context.Origin ?? "-", head.Count, label, score, context.Timings.InferenceMilliseconds);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Camera {CameraId}: {Source} → model {ModelId} → {Topic}")]
    private static partial void LogStarted(ILogger logger, string cameraId, string source, string modelId, string topic);

    [LoggerMessage(Level = LogLevel.Information, Message = "Camera {CameraId} #{Sequence} {Origin}: {Count} results, top {Label} {Score:0.000} ({InferenceMs:0.0} ms)")]
    private static partial void LogResult(ILogger logger, string cameraId, long sequence, string origin, int count, string label, float score, double inferenceMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Camera {CameraId} is {State}: {Reason}")]
    private static partial void LogState(ILogger logger, string cameraId, string state, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Camera {CameraId}: source ended")]
    private static partial void LogSourceEnded(ILogger logger, string cameraId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Camera {CameraId}: source failed: {Reason}")]
    private static partial void LogSourceFailed(ILogger logger, string cameraId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Camera {CameraId}: inference failed on frame {Sequence}: {Reason}")]
    private static partial void LogInferenceFailed(ILogger logger, string cameraId, long sequence, string reason);
}

/// <summary>The retained camera state message.</summary>
internal sealed record CameraStatePayload(
    [property: System.Text.Json.Serialization.JsonPropertyName("camera")] string Camera,
    [property: System.Text.Json.Serialization.JsonPropertyName("state")] string State,
    [property: System.Text.Json.Serialization.JsonPropertyName("reason")] string Reason,
    [property: System.Text.Json.Serialization.JsonPropertyName("timestamp")] DateTimeOffset Timestamp,
    [property: System.Text.Json.Serialization.JsonPropertyName("restarts")] long Restarts,
    [property: System.Text.Json.Serialization.JsonPropertyName("frames_dropped")] long FramesDropped,
    [property: System.Text.Json.Serialization.JsonPropertyName("frames_skipped_rate")] long FramesSkippedRate,
    [property: System.Text.Json.Serialization.JsonPropertyName("frames_skipped_motion")] long FramesSkippedMotion);

[System.Text.Json.Serialization.JsonSerializable(typeof(CameraStatePayload))]
internal sealed partial class CameraStatePayloadContext : System.Text.Json.Serialization.JsonSerializerContext;
