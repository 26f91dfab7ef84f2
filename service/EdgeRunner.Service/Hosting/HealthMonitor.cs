using System.Globalization;
using System.Text;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service;

/// <summary>
/// Checks at a fixed interval that the daemon's stages make progress, keeps systemd's <c>STATUS=</c>
/// current with a one-line summary, and sends <c>WATCHDOG=1</c> only while nothing is hung, so a
/// hung stage gets the daemon restarted by systemd's watchdog.
/// </summary>
/// <remarks>
/// "Hung" must not include waiting: a camera that is unplugged or reconnecting, a sensor stream with
/// no data, a broker that is down (the publisher queues) are states the daemon handles itself and
/// reports on MQTT; restarting would not help. So a stage counts as hung only when its input keeps
/// arriving and is thrown away while its output counter stands still:
/// a camera whose capture loop keeps dropping frames while its inference loop completes none
/// (processed and gated frames both count as completed), or a publisher that is connected and
/// dropping queued messages while publishing none. A sensor stream's loop reads samples and steps its
/// model in turn, so its input piles up (or, from a live device, is lost) only while a step runs: it
/// counts as hung when it is inside the same model step at consecutive checks
/// (<see cref="StreamRunner.StepInProgress"/>), never while it waits for samples. A stage must be found
/// so on <see cref="ChecksToHang"/> consecutive checks (a whole watchdog interval) before the pings stop.
/// </remarks>
internal sealed partial class HealthMonitor
{
    /// <summary>Consecutive checks without progress (under input pressure) that make a stage hung.</summary>
    public const int ChecksToHang = 2;

    private readonly VisionService _vision;
    private readonly SensorService _sensors;
    private readonly MqttPublisher _publisher;
    private readonly SystemdNotifier _notifier;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Dictionary<string, (long Done, long Dropped, int Stalled)> _cameras = new(StringComparer.Ordinal);
    private Dictionary<string, (long Step, int Stalled)> _streams = new(StringComparer.Ordinal);
    private Dictionary<string, (long Step, int Stalled)> _streamsBefore = new(StringComparer.Ordinal);
    private (long Published, long Dropped, int Stalled) _mqtt;
    private long _lastSteps;
    private long _lastFrames;
    private long _lastTimestamp;
    private string? _hung;

    public HealthMonitor(VisionService vision, SensorService sensors, MqttPublisher publisher, SystemdNotifier notifier, TimeProvider timeProvider, ILogger logger)
    {
        _vision = vision;
        _sensors = sensors;
        _publisher = publisher;
        _notifier = notifier;
        _timeProvider = timeProvider;
        _logger = logger;
        _lastTimestamp = timeProvider.GetTimestamp();
        _mqtt = (publisher.Published, publisher.Dropped, 0);
    }

    /// <summary>The check interval: half the watchdog timeout (as sd_watchdog_enabled(3) advises), else 10 s for STATUS alone.</summary>
    public static TimeSpan IntervalFor(TimeSpan? watchdog) => watchdog is { } w ? w / 2 : TimeSpan.FromSeconds(10);

    /// <summary>Checks every <paramref name="interval"/> until <paramref name="cancellationToken"/>.</summary>
    public async Task RunAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, _timeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var (healthy, status) = Check();
                _notifier.Notify(healthy && _notifier.WatchdogInterval is not null
                    ? "WATCHDOG=1\n" + SystemdNotifier.Status(status)
                    : SystemdNotifier.Status(status));
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>One check: whether every stage is alive, and the status line.</summary>
    internal (bool Healthy, string Status) Check()
    {
        var now = _timeProvider.GetTimestamp();
        var seconds = Math.Max(1e-3, _timeProvider.GetElapsedTime(_lastTimestamp, now).TotalSeconds);
        _lastTimestamp = now;
        string? hung = null;

        long frames = 0;
        foreach (var pipeline in _vision.Pipelines)
        {
            var done = pipeline.FramesProcessed + pipeline.FramesSkippedRate + pipeline.FramesSkippedMotion;
            var dropped = pipeline.FramesDropped;
            frames += pipeline.FramesProcessed;
            var stalled = 0;
            if (_cameras.TryGetValue(pipeline.CameraId, out var last))
            {
                stalled = done == last.Done && dropped > last.Dropped ? last.Stalled + 1 : 0;
            }

            _cameras[pipeline.CameraId] = (done, dropped, stalled);
            if (stalled >= ChecksToHang)
            {
                hung ??= $"camera {pipeline.CameraId}: inference completed no frame in {ChecksToHang} checks while {dropped - last.Dropped} frames were dropped";
            }
        }

        var published = _publisher.Published;
        var mqttDropped = _publisher.Dropped;
        var connected = _publisher.IsConnected;
        _mqtt = (published, mqttDropped, connected && published == _mqtt.Published && mqttDropped > _mqtt.Dropped ? _mqtt.Stalled + 1 : 0);
        if (_mqtt.Stalled >= ChecksToHang)
        {
            hung ??= $"MQTT publisher: connected but published nothing in {ChecksToHang} checks while its queue overflowed";
        }

        long steps = 0;
        var streams = _sensors.Streams;
        // Streams come and go (wildcard MQTT routes, idle eviction): only those present now are kept.
        (_streamsBefore, _streams) = (_streams, _streamsBefore);
        _streams.Clear();
        foreach (var stream in streams)
        {
            steps += stream.Steps;
            var step = stream.StepInProgress;
            var stalled = 0;
            if (step != 0 && _streamsBefore.TryGetValue(stream.StreamId, out var last) && last.Step == step)
            {
                stalled = last.Stalled + 1;
            }

            _streams[stream.StreamId] = (step, stalled);
            if (stalled >= ChecksToHang)
            {
                hung ??= $"sensor stream {stream.StreamId}: a model step has not finished in {ChecksToHang} checks ({stream.Steps} steps done)";
            }
        }

        var status = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        if (hung is not null)
        {
            status.Append(c, $"stalled: {hung}; ");
        }

        status.Append(c, $"{_cameras.Count} cameras {(frames - _lastFrames) / seconds:0.0} inferences/s, {streams.Count} streams {(steps - _lastSteps) / seconds:0.0} steps/s, MQTT {(connected ? "connected" : "disconnected, queueing")}, {published} published, {mqttDropped} dropped");
        _lastFrames = frames;
        _lastSteps = steps;

        if (hung != _hung)
        {
            if (hung is not null)
            {
                LogHung(_logger, hung);
            }
            else
            {
                LogRecovered(_logger, _hung!);
            }

            _hung = hung;
        }

        return (hung is null, status.ToString());
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "Stalled: {Stage}; watchdog pings stop, so systemd restarts the daemon")]
    private static partial void LogHung(ILogger logger, string stage);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Progress again after a stall ({Stage}); watchdog pings resume")]
    private static partial void LogRecovered(ILogger logger, string stage);
}
