using System.Threading.Channels;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Hardware.Supervision;
using EdgeRunner.Service.Diagnostics;
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
/// <remarks>
/// Supervised so that nothing one frame or one camera does stops the others: an exception while processing
/// a frame (preprocessing, inference, decoding, publishing) drops that frame, is counted
/// (<see cref="FramesFailed"/>, <c>frames_failed</c>) and logged (with its stack the first time, then at
/// most once a minute), and the loop goes on; a snapshot that fails is logged and the pipeline goes on;
/// an unexpected exception escaping the capture loop disposes the source, publishes <c>reconnecting</c>,
/// waits the jittered exponential backoff (<see cref="Backoff"/>) and creates the
/// source again. A <see cref="FrameSourceException"/> is the source saying it cannot go on (no usable image,
/// gave up reconnecting): the camera publishes <c>failed</c> and stops.
/// </remarks>
internal sealed partial class VisionPipeline : IAsyncDisposable
{
    private static readonly TimeSpan FailureLogInterval = TimeSpan.FromMinutes(1);

    private readonly string _cameraId;
    private readonly Func<IFrameSource> _sourceFactory;
    private readonly TimeSpan _restartMinDelay;
    private readonly TimeSpan _restartMaxDelay;
    private readonly VisionFrameProcessor _processor;
    private VisionResultWriter _resultWriter;
    private EdgeRunner.Models.Inference.ModelSession _resultWriterModel;
    private readonly IResultPublisher _publisher;
    private readonly PayloadOrigin _origin;
    private readonly string _resultTopic;
    private readonly string _stateTopic;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Channel<Frame> _frames;
    private readonly InferenceGate _gate;
    private readonly SnapshotPublisher? _snapshots;
    private readonly EdgeRunnerMetrics? _metrics;
    private readonly long _logIntervalTicks;
    private readonly bool _waitForRoom;
    private long _lastLogTimestamp;
    private long _dropped;
    private long _processed;
    private long _skippedRate;
    private long _skippedMotion;
    private long _failed;
    private long _captureRestarts;
    private long _nextSequence;
    private long _snapshotFailures;
    private long _lastFailureLog;
    private Type? _lastFailureType;
    private IFrameSource? _source;
    // The current source's restart signal (null between sources); cancelled by RequestRestart from a command's thread.
    private CancellationTokenSource? _restartRequest;
    private long _requestedRestarts;

    public VisionPipeline(
        string cameraId,
        Func<IFrameSource> sourceFactory,
        VisionFrameProcessor processor,
        IResultPublisher publisher,
        MqttTopics topics,
        PayloadOrigin origin,
        int queueCapacity,
        TimeSpan resultLogInterval,
        TimeProvider timeProvider,
        ILogger logger,
        InferenceGate? gate = null,
        SnapshotPublisher? snapshots = null,
        TimeSpan? restartMinDelay = null,
        TimeSpan? restartMaxDelay = null,
        EdgeRunnerMetrics? metrics = null,
        bool waitForRoom = false)
    {
        _cameraId = cameraId;
        _metrics = metrics;
        _sourceFactory = sourceFactory;
        _restartMinDelay = restartMinDelay ?? TimeSpan.FromSeconds(1);
        _restartMaxDelay = restartMaxDelay ?? TimeSpan.FromSeconds(30);

        // Created here so that a bad path or a missing folder fails startup, naming the camera.
        _source = sourceFactory();
        _processor = processor;
        _publisher = publisher;
        _origin = origin;
        _resultTopic = topics.VisionResult(cameraId);
        _stateTopic = topics.VisionState(cameraId);
        _timeProvider = timeProvider;
        _logger = logger;
        _gate = gate ?? new InferenceGate(0, null, TimeSpan.Zero, timeProvider.TimestampFrequency);
        _snapshots = snapshots;
        _resultWriterModel = processor.Model;
        _resultWriter = new VisionResultWriter(origin, processor.Model.Id, processor.Model.Sha256, processor.Model.ExecutionProvider);
        _logIntervalTicks = (long)(resultLogInterval.TotalSeconds * timeProvider.TimestampFrequency);
        _lastLogTimestamp = long.MinValue / 2;
        // An unpaced source (a video file read as fast as inference takes frames) waits for room instead: dropping
        // frames there only makes ffmpeg decode frames nobody infers, on the cores inference needs (issue 15).
        _waitForRoom = waitForRoom;
        _frames = Channel.CreateBounded<Frame>(
            new BoundedChannelOptions(queueCapacity) { FullMode = waitForRoom ? BoundedChannelFullMode.Wait : BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = true },
            frame =>
            {
                frame.Dispose();
                Interlocked.Increment(ref _dropped);
            });
    }

    public string CameraId => _cameraId;

    /// <summary>The camera's loaded model (id, execution provider), for the daemon's ready line.</summary>
    public EdgeRunner.Models.Inference.ModelSession Model => _processor.Model;

    /// <summary>The camera's processor, for a model reload to hand it a new session (<see cref="VisionFrameProcessor.Offer"/>).</summary>
    internal VisionFrameProcessor Processor => _processor;

    /// <summary>Frames the sources delivered (all of them, across capture restarts).</summary>
    public long FramesCaptured => Interlocked.Read(ref _nextSequence);

    /// <summary>Frames dropped because inference was behind.</summary>
    public long FramesDropped => Interlocked.Read(ref _dropped);

    /// <summary>Frames not run through the model because they came sooner than 1/DetectFps after the last inferred one.</summary>
    public long FramesSkippedRate => Interlocked.Read(ref _skippedRate);

    /// <summary>Frames not run through the model because nothing moved (motion gating).</summary>
    public long FramesSkippedMotion => Interlocked.Read(ref _skippedMotion);

    /// <summary>Frames run through the model.</summary>
    public long FramesProcessed => Interlocked.Read(ref _processed);

    /// <summary>Frames dropped because processing them threw (preprocessing, inference, decoding, publishing).</summary>
    public long FramesFailed => Interlocked.Read(ref _failed);

    /// <summary>Times the capture loop was restarted (source disposed and created again) after an unexpected exception.</summary>
    public long CaptureRestarts => Interlocked.Read(ref _captureRestarts);

    /// <summary>Snapshots that threw before reaching the encoder (each logged; the pipeline went on).</summary>
    public long SnapshotFailures => Interlocked.Read(ref _snapshotFailures);

    /// <summary>The current frame source (replaced on a capture restart; null while a restart waits).</summary>
    internal IFrameSource? Source => Volatile.Read(ref _source);

    /// <summary>Runs until cancelled or until a finite source ends.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        LogStarted(_logger, _cameraId, _source!.Description, _processor.Model.Id, _resultTopic);
        Watch(_source);
        var capture = Task.Run(() => CaptureAsync(cancellationToken), CancellationToken.None);
        var inference = Task.Run(() => InferAsync(cancellationToken), CancellationToken.None);
        await Task.WhenAll(capture, inference);
    }

    public async ValueTask DisposeAsync()
    {
        while (_frames.Reader.TryRead(out var frame))
        {
            frame.Dispose();
        }

        if (Interlocked.Exchange(ref _source, null) is { } source)
        {
            await DisposeSourceAsync(source);
        }

        if (_snapshots is not null)
        {
            await _snapshots.DisposeAsync();
        }

        _processor.Dispose();
        _resultWriter.Dispose();
    }

    private async Task CaptureAsync(CancellationToken cancellationToken)
    {
        var failuresInARow = 0;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    if (_source is null)
                    {
                        var created = _sourceFactory();
                        Volatile.Write(ref _source, created);
                        Watch(created);
                    }

                    // Per source: RequestRestart cancels it to end this source's reads without stopping the camera.
                    using var restart = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    Volatile.Write(ref _restartRequest, restart);
                    try
                    {
                        if (await CaptureFromSourceAsync(_source, () => failuresInARow = 0, restart.Token) && !IsRestartRequested(restart, cancellationToken))
                        {
                            return;
                        }
                    }
                    catch (OperationCanceledException) when (IsRestartRequested(restart, cancellationToken))
                    {
                        // Asked for by a command: the source is replaced below.
                    }
                    finally
                    {
                        Interlocked.CompareExchange(ref _restartRequest, null, restart);
                    }

                    await RestartOnRequestAsync();
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (FrameSourceException ex)
                {
                    // The source's own verdict that it cannot go on (no usable image, gave up reconnecting).
                    LogSourceFailed(_logger, _cameraId, ex.Message);
                    PublishState("failed", ex.Message, Restarts);
                    return;
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    failuresInARow++;
                    Interlocked.Increment(ref _captureRestarts);
                    // The same rule and jitter as the supervised source's reconnects (SupervisionOptions' defaults).
                    var delay = Backoff.Exponential(_restartMinDelay, _restartMaxDelay, failuresInARow, Backoff.DefaultMultiplier, Backoff.DefaultJitter, Random.Shared.NextDouble());
                    if (failuresInARow == 1)
                    {
                        LogCaptureCrashed(_logger, ex, _cameraId, delay);
                    }
                    else
                    {
                        LogCaptureCrashedAgain(_logger, _cameraId, failuresInARow, ex.GetType().Name, ex.Message, delay);
                    }

                    PublishState("reconnecting", $"capture failed unexpectedly ({ex.GetType().Name}: {ex.Message}); restarting in {delay.TotalSeconds:0.###} s", Restarts);
                    if (Interlocked.Exchange(ref _source, null) is { } broken)
                    {
                        await DisposeSourceAsync(broken);
                    }

                    // Cancelled while waiting: the outer handler ends the loop.
                    await Task.Delay(delay, _timeProvider, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping (during a restart's backoff).
        }
        finally
        {
            _frames.Writer.TryComplete();
        }
    }

    /// <summary>Reads frames from the current source into the channel; true when the source ended (or we are stopping).</summary>
    private async Task<bool> CaptureFromSourceAsync(IFrameSource source, Action onFrame, CancellationToken cancellationToken)
    {
        var first = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            var frame = await source.ReadFrameAsync(cancellationToken);
            if (frame is null)
            {
                LogSourceEnded(_logger, _cameraId);
                PublishState("ended", "the source has no more frames", Restarts);
                return true;
            }

            if (first)
            {
                first = false;
                onFrame();
                // A source that reports its camera's health says "streaming" itself (StateChanged).
                if (source is not ICameraHealth)
                {
                    PublishState("streaming", source.Description, Restarts);
                }
            }

            // Numbered here, not by the source: a restarted source starts again at 0, the camera's results go on.
            // Interlocked: read by the metrics while the capture loop writes it (a long can tear on a 32-bit board).
            frame.Sequence = Interlocked.Increment(ref _nextSequence) - 1;

            if (_waitForRoom)
            {
                // Back-pressure: ffmpeg blocks on its pipe meanwhile. Completed channel or stopping: the frame is ours to drop.
                try
                {
                    if (!_frames.Writer.TryWrite(frame) && !await WaitToWriteAsync(frame, cancellationToken))
                    {
                        frame.Dispose();
                    }
                }
                catch
                {
                    frame.Dispose();
                    throw;
                }
            }
            else if (!_frames.Writer.TryWrite(frame))
            {
                // DropOldest: never blocks, never fails while the channel is open.
                frame.Dispose();
            }
        }

        return true;
    }

    /// <summary>Writes <paramref name="frame"/> once the queue has room; false when the queue was completed meanwhile.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WaitToWriteAsync(Frame frame, CancellationToken cancellationToken)
    {
        while (await _frames.Writer.WaitToWriteAsync(cancellationToken))
        {
            if (_frames.Writer.TryWrite(frame))
            {
                return true;
            }
        }

        return false;
    }

    private void Watch(IFrameSource source)
    {
        if (source is ICameraHealth health)
        {
            health.StateChanged += OnStateChanged;
        }
    }

    private async ValueTask DisposeSourceAsync(IFrameSource source)
    {
        if (source is ICameraHealth health)
        {
            health.StateChanged -= OnStateChanged;
        }

        try
        {
            await source.DisposeAsync();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogSourceDisposeFailed(_logger, ex, _cameraId);
        }
    }

    /// <summary>
    /// Asks the capture loop to dispose the current source and create it again at once (the <c>restart-camera</c>
    /// command); the camera says <c>reconnecting</c>, then <c>streaming</c> with the first frame of the new source.
    /// False when no source is capturing now (between restarts, or the camera has stopped).
    /// </summary>
    internal bool RequestRestart()
    {
        if (Volatile.Read(ref _restartRequest) is not { } restart)
        {
            return false;
        }

        try
        {
            restart.Cancel();
            return true;
        }
        catch (ObjectDisposedException)
        {
            // The source ended meanwhile.
            return false;
        }
    }

    /// <summary>Restarts asked for by <see cref="RequestRestart"/> and carried out.</summary>
    public long RequestedRestarts => Interlocked.Read(ref _requestedRestarts);

    /// <summary>The camera's result head (its run-time score threshold).</summary>
    internal IVisionHead Head => _processor.Head;

    /// <summary>The camera's snapshot publisher; null when <c>Snapshots:Enabled</c> is false.</summary>
    internal SnapshotPublisher? Snapshots => _snapshots;

    private static bool IsRestartRequested(CancellationTokenSource restart, CancellationToken stopping) =>
        restart.IsCancellationRequested && !stopping.IsCancellationRequested;

    private async Task RestartOnRequestAsync()
    {
        Interlocked.Increment(ref _requestedRestarts);
        PublishState("reconnecting", "restart requested by a command", Restarts);
        if (Interlocked.Exchange(ref _source, null) is { } old)
        {
            await DisposeSourceAsync(old);
        }
    }

    /// <summary>Restarts of a source that reopens its camera itself (reconnects) plus restarts of the capture loop.</summary>
    private long Restarts => ((_source as ICameraHealth)?.Restarts ?? 0) + CaptureRestarts;

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
                        ProcessGuarded(frame);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private void OnStateChanged(object? sender, SourceHealthChangedEventArgs e)
    {
        var restarts = ((sender as ICameraHealth)?.Restarts ?? 0) + CaptureRestarts;
        PublishState(SourceHealthWords.ForCamera(e.State), e.Reason, restarts);
    }

    // Rare (state changes only): a small allocation here is fine.
    private void PublishState(string state, string reason, long restarts)
    {
        LogState(_logger, _cameraId, state, reason);
        var model = Catalog.RunningModelStatus.Of(_processor.Model);
        var payload = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new CameraStatePayload(PayloadSchemas.VisionState.Value, _origin.Device, _origin.BootId, _cameraId, state, reason, _timeProvider.GetUtcNow(), restarts, FramesDropped, FramesSkippedRate, FramesSkippedMotion, FramesFailed, model, model.Degraded), CameraStatePayloadContext.Default.CameraStatePayload);
        _publisher.TryPublish(_stateTopic, payload, retain: true);
    }

    /// <summary>Processes one frame; whatever it throws drops that frame only (counted and logged), never the loop.</summary>
    private void ProcessGuarded(Frame frame)
    {
        try
        {
            Process(frame);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            var failed = Interlocked.Increment(ref _failed);
            ReportFrameFailure(frame.Sequence, ex, failed);
        }
    }

    /// <summary>The first failure, and the first of each new exception type, with its stack; then at most one line a minute.</summary>
    private void ReportFrameFailure(long sequence, Exception ex, long failed)
    {
        var now = _timeProvider.GetTimestamp();
        var type = ex.GetType();
        if (type != _lastFailureType)
        {
            _lastFailureType = type;
            _lastFailureLog = now;
            LogFrameFailed(_logger, ex, _cameraId, sequence, failed);
            return;
        }

        if (_timeProvider.GetElapsedTime(_lastFailureLog, now) >= FailureLogInterval)
        {
            _lastFailureLog = now;
            LogFrameFailedAgain(_logger, _cameraId, sequence, failed, type.Name, ex.Message);
        }
    }

    private void Process(Frame frame)
    {
        // Arrival time at the inference loop, on the monotonic clock: frames that waited in the queue are
        // judged by when they can be inferred, and a wall-clock step cannot stall or flood the camera.
        var now = _timeProvider.GetTimestamp();
        switch (_gate.Evaluate(now, frame.AsImageView()))
        {
            case GateDecision.SkipRate:
                Interlocked.Increment(ref _skippedRate);
                return;
            case GateDecision.SkipMotion:
                Interlocked.Increment(ref _skippedMotion);
                return;
        }

        var timings = _processor.Process(frame);
        if (!ReferenceEquals(_resultWriterModel, _processor.Model))
        {
            // A reloaded model took over at this frame: its results name it (allocates once per reload).
            var model = _processor.Model;
            _resultWriter.Dispose();
            _resultWriter = new VisionResultWriter(_origin, model.Id, model.Sha256, model.ExecutionProvider);
            _resultWriterModel = model;
            // The retained state names the model and its provider: say which one runs now.
            PublishState("streaming", $"model {model.Id} reloaded (sha256 {model.Sha256[..12]}…, {model.ExecutionProvider})", Restarts);
        }

        var context = new VisionResultContext(_cameraId, frame.Sequence, frame.Timestamp, frame.Origin, frame.Width, frame.Height, timings, FramesDropped, FramesSkippedRate, FramesSkippedMotion, FramesFailed);
        _publisher.TryPublish(_resultTopic, _resultWriter.Write(context, _processor.Head));
        Interlocked.Increment(ref _processed);
        if (_metrics is not null)
        {
            _metrics.RecordInference(EdgeRunnerMetrics.CameraTag, _cameraId, timings.PreprocessMilliseconds + timings.InferenceMilliseconds);
            _metrics.RecordResultLatency(_cameraId, (_timeProvider.GetUtcNow() - frame.Timestamp).TotalMilliseconds);
        }

        if (_snapshots is not null && _processor.Head is DetectionHead detections)
        {
            try
            {
                _snapshots.OnInferred(frame, detections.Results, detections.Labels, now);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The result is out already; a snapshot is a nice-to-have.
                if (Interlocked.Increment(ref _snapshotFailures) == 1)
                {
                    LogSnapshotFailed(_logger, ex, _cameraId);
                }
            }
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

    [LoggerMessage(Level = LogLevel.Error, Message = "Camera {CameraId}: processing frame {Sequence} failed; frame dropped ({Failed} so far), the camera goes on")]
    private static partial void LogFrameFailed(ILogger logger, Exception exception, string cameraId, long sequence, long failed);

    [LoggerMessage(Level = LogLevel.Error, Message = "Camera {CameraId}: processing frame {Sequence} failed again; {Failed} frames dropped so far; last {ExceptionType}: {Reason}")]
    private static partial void LogFrameFailedAgain(ILogger logger, string cameraId, long sequence, long failed, string exceptionType, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Camera {CameraId}: capture failed unexpectedly; restarting the source in {Delay}")]
    private static partial void LogCaptureCrashed(ILogger logger, Exception exception, string cameraId, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Error, Message = "Camera {CameraId}: capture failed unexpectedly again ({Failures} in a row), {ExceptionType}: {Reason}; restarting the source in {Delay}")]
    private static partial void LogCaptureCrashedAgain(ILogger logger, string cameraId, int failures, string exceptionType, string reason, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Camera {CameraId}: disposing the source failed")]
    private static partial void LogSourceDisposeFailed(ILogger logger, Exception exception, string cameraId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Camera {CameraId}: a snapshot failed (later ones are counted, not logged); results go on")]
    private static partial void LogSnapshotFailed(ILogger logger, Exception exception, string cameraId);
}

/// <summary>The retained camera state message.</summary>
internal sealed record CameraStatePayload(
    [property: System.Text.Json.Serialization.JsonPropertyName("schema")] string Schema,
    [property: System.Text.Json.Serialization.JsonPropertyName("device")] string Device,
    [property: System.Text.Json.Serialization.JsonPropertyName("boot_id")] string BootId,
    [property: System.Text.Json.Serialization.JsonPropertyName("camera")] string Camera,
    [property: System.Text.Json.Serialization.JsonPropertyName("state")] string State,
    [property: System.Text.Json.Serialization.JsonPropertyName("reason")] string Reason,
    [property: System.Text.Json.Serialization.JsonPropertyName("timestamp")] DateTimeOffset Timestamp,
    [property: System.Text.Json.Serialization.JsonPropertyName("restarts")] long Restarts,
    [property: System.Text.Json.Serialization.JsonPropertyName("frames_dropped")] long FramesDropped,
    [property: System.Text.Json.Serialization.JsonPropertyName("frames_skipped_rate")] long FramesSkippedRate,
    [property: System.Text.Json.Serialization.JsonPropertyName("frames_skipped_motion")] long FramesSkippedMotion,
    [property: System.Text.Json.Serialization.JsonPropertyName("frames_failed")] long FramesFailed,
    [property: System.Text.Json.Serialization.JsonPropertyName("model")] Catalog.RunningModelStatus Model,
    [property: System.Text.Json.Serialization.JsonPropertyName("degraded"), System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Degraded);

[System.Text.Json.Serialization.JsonSerializable(typeof(CameraStatePayload))]
internal sealed partial class CameraStatePayloadContext : System.Text.Json.Serialization.JsonSerializerContext;
