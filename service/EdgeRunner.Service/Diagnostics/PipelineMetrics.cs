using System.Diagnostics.Metrics;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.Hosting;

namespace EdgeRunner.Service.Diagnostics;

/// <summary>
/// Publishes the counters the cameras, the sensor streams and the MQTT publisher already keep as observable
/// instruments on the daemon's meter (<see cref="EdgeRunnerMetrics"/>), one measurement per camera (tag
/// <c>camera</c>) or stream (tag <c>stream</c>). Their callbacks run only when a listener collects (every
/// second or so for <c>dotnet-counters</c>), so the hot paths pay nothing for them.
/// </summary>
/// <remarks>
/// A hosted service only so that it exists once the host starts: it has nothing to run. The pipelines are read
/// through their services' lists (copies taken under their lock), so cameras and dynamic streams that come and go
/// are measured while they exist.
/// </remarks>
internal sealed class PipelineMetrics : IHostedService
{
    private static readonly KeyValuePair<string, object?> RateReason = new("reason", "rate");
    private static readonly KeyValuePair<string, object?> MotionReason = new("reason", "motion");

    private readonly VisionService _vision;
    private readonly SensorService _sensors;
    private readonly MqttPublisher _publisher;

    public PipelineMetrics(EdgeRunnerMetrics metrics, VisionService vision, SensorService sensors, MqttPublisher publisher)
    {
        _vision = vision;
        _sensors = sensors;
        _publisher = publisher;
        var meter = metrics.Meter;

        meter.CreateObservableCounter("edgerunner.frames.captured", () => PerCamera(p => p.FramesCaptured), "{frame}", "Frames the camera's source delivered");
        meter.CreateObservableCounter("edgerunner.frames.dropped", () => PerCamera(p => p.FramesDropped), "{frame}", "Frames dropped because inference was behind (the newest frame wins)");
        meter.CreateObservableCounter("edgerunner.frames.skipped", SkippedFrames, "{frame}", "Frames not run through the model: reason rate (sooner than 1/DetectFps after the last) or motion (nothing moved)");
        meter.CreateObservableCounter("edgerunner.frames.inferred", () => PerCamera(p => p.FramesProcessed), "{frame}", "Frames run through the model (one result each)");
        meter.CreateObservableCounter("edgerunner.frames.failed", () => PerCamera(p => p.FramesFailed), "{frame}", "Frames dropped because processing them threw");

        meter.CreateObservableCounter("edgerunner.sensor.steps", () => PerStream(r => r.Steps), "{step}", "Model steps run (one result each)");
        meter.CreateObservableCounter("edgerunner.sensor.resets", () => PerStream(r => r.StateResets), "{reset}", "State resets (gaps, invalid samples, non-finite outputs, commands, restarts)");
        meter.CreateObservableCounter("edgerunner.sensor.invalid_samples", () => PerStream(r => r.InvalidSamples), "{sample}", "Samples refused by the stream's bounds or not finite (then held, dropped or reset by its InvalidSamples policy)");

        meter.CreateObservableCounter("edgerunner.mqtt.published", () => _publisher.Published, "{message}", "Messages the broker acknowledged");
        meter.CreateObservableCounter("edgerunner.mqtt.dropped", () => _publisher.Dropped, "{message}", "Messages dropped because the queue was full");
        // The first connect is not a reconnect.
        meter.CreateObservableCounter("edgerunner.mqtt.reconnects", () => Math.Max(0, _publisher.Connects - 1), "{connection}", "Connections made again after the first");
        meter.CreateObservableUpDownCounter("edgerunner.mqtt.queued", () => _publisher.Queued, "{message}", "Messages waiting for the broker (in memory and in the spool)");
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private IEnumerable<Measurement<long>> PerCamera(Func<VisionPipeline, long> read)
    {
        foreach (var pipeline in _vision.Pipelines)
        {
            yield return new Measurement<long>(read(pipeline), new KeyValuePair<string, object?>(EdgeRunnerMetrics.CameraTag, pipeline.CameraId));
        }
    }

    private IEnumerable<Measurement<long>> SkippedFrames()
    {
        foreach (var pipeline in _vision.Pipelines)
        {
            var camera = new KeyValuePair<string, object?>(EdgeRunnerMetrics.CameraTag, pipeline.CameraId);
            yield return new Measurement<long>(pipeline.FramesSkippedRate, camera, RateReason);
            yield return new Measurement<long>(pipeline.FramesSkippedMotion, camera, MotionReason);
        }
    }

    private IEnumerable<Measurement<long>> PerStream(Func<StreamRunner, long> read)
    {
        foreach (var runner in _sensors.Streams)
        {
            yield return new Measurement<long>(read(runner), new KeyValuePair<string, object?>(EdgeRunnerMetrics.StreamTag, runner.StreamId));
        }
    }
}
