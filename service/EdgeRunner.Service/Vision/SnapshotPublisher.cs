using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Vision;

/// <summary>
/// Publishes an annotated JPEG of an inferred frame when a label appears that was not in the previous
/// inferred frame, at most once per minimum interval. The inference loop only compares label sets
/// (no allocation) and, on the rare snapshot, copies the pixels and boxes into reused buffers; drawing
/// and encoding run on the thread pool so the loop never waits for Skia. While one snapshot is still
/// encoding the next change waits (it is not queued), and a change that falls inside the minimum
/// interval is kept pending and taken on the first inferred frame after it that still has detections.
/// </summary>
internal sealed partial class SnapshotPublisher : IAsyncDisposable
{
    private readonly string _cameraId;
    private readonly string _topic;
    private readonly bool _retain;
    private readonly long _minIntervalTicks;
    private readonly IResultPublisher _publisher;
    private readonly SnapshotRenderer _renderer;
    private readonly ILogger _logger;
    private int[] _previousClasses = new int[16];
    private int _previousCount;
    private byte[] _pixels = [];
    private SnapshotBox[] _boxes = new SnapshotBox[16];
    private bool _pending;
    private bool _publishedOnce;
    private long _lastSnapshot;
    private int _busy;
    private Task _encoding = Task.CompletedTask;
    private long _published;
    // Set by Request (a command, on another thread), cleared by the inference loop when it takes the snapshot.
    private int _requested;

    public SnapshotPublisher(string cameraId, string topic, bool retain, TimeSpan minInterval, int maxWidth, int quality, IResultPublisher publisher, long timestampFrequency, ILogger logger)
    {
        _cameraId = cameraId;
        _topic = topic;
        _retain = retain;
        _minIntervalTicks = (long)(minInterval.TotalSeconds * timestampFrequency);
        _publisher = publisher;
        _logger = logger;
        _renderer = new SnapshotRenderer(maxWidth, quality);
        if (_renderer.CanDrawText)
        {
            LogTypeface(logger, cameraId, _renderer.TypefaceName ?? "?");
        }
        else
        {
            LogNoTypeface(logger, cameraId);
        }
    }

    /// <summary>Snapshots handed to the publisher so far.</summary>
    public long Published => Interlocked.Read(ref _published);

    /// <summary>
    /// Takes a snapshot of the next inferred frame, whatever it shows and however soon after the last one (the
    /// <c>snapshot</c> command). Only sets a flag: the inference loop takes it.
    /// </summary>
    public void Request() => Volatile.Write(ref _requested, 1);

    /// <summary>The snapshot being encoded, or a completed task (for tests).</summary>
    internal Task Encoding => _encoding;

    /// <summary>Called by the inference loop after each successful inference, with the frame still held.</summary>
    /// <param name="frame">The inferred frame.</param>
    /// <param name="results">Its detections, boxes in frame pixels.</param>
    /// <param name="labels">Class names.</param>
    /// <param name="timestamp"><see cref="TimeProvider"/> timestamp of the frame's arrival.</param>
    public void OnInferred(Frame frame, ReadOnlySpan<Detection> results, LabelSet labels, long timestamp)
    {
        if (HasNewClass(results))
        {
            _pending = true;
        }

        Remember(results);
        // A snapshot asked for by a command is taken on this frame whatever it shows, past the minimum interval.
        var requested = Volatile.Read(ref _requested) != 0;
        if (results.IsEmpty)
        {
            // Whatever appeared has gone again: a snapshot of the empty scene would show nothing new.
            _pending = false;
            if (!requested)
            {
                return;
            }
        }

        if (Volatile.Read(ref _busy) != 0 || (!requested && (!_pending || (_publishedOnce && timestamp - _lastSnapshot < _minIntervalTicks))))
        {
            return;
        }

        Volatile.Write(ref _requested, 0);
        _pending = false;
        _publishedOnce = true;
        _lastSnapshot = timestamp;

        // Copy what the encoder needs: the frame goes back to its pool and the head is overwritten by the
        // next inference while the encoder runs. Buffers grow to the largest frame seen and are then reused.
        var pixels = frame.Pixels;
        if (_pixels.Length < pixels.Length)
        {
            _pixels = new byte[pixels.Length];
        }

        pixels.CopyTo(_pixels);
        if (_boxes.Length < results.Length)
        {
            _boxes = new SnapshotBox[results.Length];
        }

        for (var i = 0; i < results.Length; i++)
        {
            var d = results[i];
            _boxes[i] = new SnapshotBox(d.X1, d.Y1, d.X2, d.Y2, d.ClassId, labels[d.ClassId], d.Score);
        }

        var job = new Job(frame.Width, frame.Height, frame.Stride, frame.PixelFormat.ToImageFormat(), results.Length);
        Volatile.Write(ref _busy, 1);
        _encoding = Task.Run(() => Encode(job), CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        // The encoder may still be using the renderer and the copied pixels.
        await _encoding.ConfigureAwait(false);
        _renderer.Dispose();
    }

    private bool HasNewClass(ReadOnlySpan<Detection> results)
    {
        var previous = _previousClasses.AsSpan(0, _previousCount);
        foreach (var d in results)
        {
            if (!previous.Contains(d.ClassId))
            {
                return true;
            }
        }

        return false;
    }

    private void Remember(ReadOnlySpan<Detection> results)
    {
        if (_previousClasses.Length < results.Length)
        {
            _previousClasses = new int[results.Length];
        }

        for (var i = 0; i < results.Length; i++)
        {
            _previousClasses[i] = results[i].ClassId;
        }

        _previousCount = results.Length;
    }

    private void Encode(Job job)
    {
        try
        {
            var jpeg = _renderer.Render(new ImageView(_pixels, job.Width, job.Height, job.Stride, job.Format), _boxes.AsSpan(0, job.Boxes));
            if (_publisher.TryPublish(_topic, jpeg, _retain))
            {
                Interlocked.Increment(ref _published);
                LogSnapshot(_logger, _cameraId, jpeg.Length, job.Boxes);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
        {
            LogSnapshotFailed(_logger, _cameraId, ex.Message);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Anything else is a bug, logged with its stack; it must not fault the task DisposeAsync awaits.
            LogSnapshotCrashed(_logger, ex, _cameraId);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private readonly record struct Job(int Width, int Height, int Stride, ImagePixelFormat Format, int Boxes);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Camera {CameraId}: snapshot captions use typeface {Typeface}")]
    private static partial void LogTypeface(ILogger logger, string cameraId, string typeface);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Camera {CameraId}: no usable font under /usr/share/fonts; snapshots show boxes without labels")]
    private static partial void LogNoTypeface(ILogger logger, string cameraId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Camera {CameraId}: snapshot published ({Bytes} bytes, {Boxes} boxes)")]
    private static partial void LogSnapshot(ILogger logger, string cameraId, int bytes, int boxes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Camera {CameraId}: snapshot failed: {Reason}")]
    private static partial void LogSnapshotFailed(ILogger logger, string cameraId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Camera {CameraId}: snapshot failed unexpectedly; results go on")]
    private static partial void LogSnapshotCrashed(ILogger logger, Exception exception, string cameraId);
}
