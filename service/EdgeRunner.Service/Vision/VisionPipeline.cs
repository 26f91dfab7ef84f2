using System.Diagnostics;
using System.Threading.Channels;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Preprocessing;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Vision;

/// <summary>
/// One camera: source → bounded channel (newest frame wins; dropped frames counted) → preprocess →
/// ONNX Runtime → top-k → MQTT. Capture and inference run as two loops so a slow model never stalls
/// the camera; the channel between them is the only hand-off and frames are disposed by whoever
/// holds them last. Owns its source and model session.
/// </summary>
internal sealed partial class VisionPipeline : IAsyncDisposable
{
    private readonly string _cameraId;
    private readonly IFrameSource _source;
    private readonly ModelSession _model;
    private readonly ImagePreprocessor _preprocessor;
    private readonly ClassificationDecoder _decoder;
    private readonly ClassificationResultWriter _resultWriter;
    private readonly IResultPublisher _publisher;
    private readonly string _resultTopic;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Channel<Frame> _frames;
    private readonly Classification[] _classifications;
    private readonly long _logIntervalTicks;
    private long _lastLogTimestamp;
    private long _dropped;
    private long _processed;

    public VisionPipeline(
        string cameraId,
        IFrameSource source,
        ModelSession model,
        ImagePreprocessor preprocessor,
        ClassificationDecoder decoder,
        IResultPublisher publisher,
        MqttTopics topics,
        int queueCapacity,
        TimeSpan resultLogInterval,
        TimeProvider timeProvider,
        ILogger logger)
    {
        _cameraId = cameraId;
        _source = source;
        _model = model;
        _preprocessor = preprocessor;
        _decoder = decoder;
        _publisher = publisher;
        _resultTopic = topics.VisionResult(cameraId);
        _timeProvider = timeProvider;
        _logger = logger;
        _resultWriter = new ClassificationResultWriter(model.Id, model.Sha256, model.ExecutionProvider);
        _classifications = new Classification[decoder.TopK];
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

    /// <summary>Frames dropped because inference was behind.</summary>
    public long FramesDropped => Interlocked.Read(ref _dropped);

    /// <summary>Frames run through the model.</summary>
    public long FramesProcessed => Interlocked.Read(ref _processed);

    /// <summary>Runs until cancelled or until a finite source ends.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        LogStarted(_logger, _cameraId, _source.Description, _model.Id, _resultTopic);
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

        await _source.DisposeAsync();
        _model.Dispose();
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
                    break;
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
            // Deliberately not cancelled by the token while frames remain: a finite source's last frames still get results.
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

    private void Process(Frame frame)
    {
        var start = Stopwatch.GetTimestamp();
        var view = new ImageView(frame.Pixels, frame.Width, frame.Height, frame.Stride, ToImageFormat(frame.PixelFormat));
        _preprocessor.Run(view, _model.Input);
        var preprocessed = Stopwatch.GetTimestamp();
        try
        {
            _model.Run();
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException ex)
        {
            LogInferenceFailed(_logger, _cameraId, frame.Sequence, ex.Message);
            return;
        }

        var inferred = Stopwatch.GetTimestamp();
        var count = _decoder.Decode(_model.Output(0), _classifications);
        var context = new VisionResultContext(
            _cameraId,
            frame.Sequence,
            frame.Timestamp,
            frame.Origin,
            frame.Width,
            frame.Height,
            Stopwatch.GetElapsedTime(start, preprocessed).TotalMilliseconds,
            Stopwatch.GetElapsedTime(preprocessed, inferred).TotalMilliseconds,
            FramesDropped);
        var results = _classifications.AsSpan(0, count);
        _publisher.TryPublish(_resultTopic, _resultWriter.Write(context, results));
        Interlocked.Increment(ref _processed);
        MaybeLog(context, results);
    }

    private void MaybeLog(in VisionResultContext context, ReadOnlySpan<Classification> results)
    {
        var now = _timeProvider.GetTimestamp();
        if (now - _lastLogTimestamp < _logIntervalTicks || !_logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        _lastLogTimestamp = now;
        if (results.Length > 0)
        {
            LogResult(_logger, context.CameraId, context.Sequence, context.Origin ?? "-", results[0].Label, results[0].Score, context.InferenceMilliseconds);
        }
        else
        {
            LogEmptyResult(_logger, context.CameraId, context.Sequence, context.InferenceMilliseconds);
        }
    }

    private static ImagePixelFormat ToImageFormat(FramePixelFormat format) => format switch
    {
        FramePixelFormat.Rgb24 => ImagePixelFormat.Rgb24,
        FramePixelFormat.Bgr24 => ImagePixelFormat.Bgr24,
        FramePixelFormat.Rgba32 => ImagePixelFormat.Rgba32,
        FramePixelFormat.Bgra32 => ImagePixelFormat.Bgra32,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown pixel format."),
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Camera {CameraId}: {Source} → model {ModelId} → {Topic}")]
    private static partial void LogStarted(ILogger logger, string cameraId, string source, string modelId, string topic);

    [LoggerMessage(Level = LogLevel.Information, Message = "Camera {CameraId} #{Sequence} {Origin}: {Label} {Score:0.000} ({InferenceMs:0.0} ms)")]
    private static partial void LogResult(ILogger logger, string cameraId, long sequence, string origin, string label, float score, double inferenceMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Camera {CameraId} #{Sequence}: nothing above threshold ({InferenceMs:0.0} ms)")]
    private static partial void LogEmptyResult(ILogger logger, string cameraId, long sequence, double inferenceMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Camera {CameraId}: source ended")]
    private static partial void LogSourceEnded(ILogger logger, string cameraId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Camera {CameraId}: source failed: {Reason}")]
    private static partial void LogSourceFailed(ILogger logger, string cameraId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Camera {CameraId}: inference failed on frame {Sequence}: {Reason}")]
    private static partial void LogInferenceFailed(ILogger logger, string cameraId, long sequence, string reason);
}
