using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Hardware.Sensors.Simulation;
using EdgeRunner.Models.Evaluation;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Service.Catalog;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Sensors;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Cli;

/// <summary>One camera's detection figures.</summary>
internal sealed record VisionEvaluation(string Camera, string Model, string Sha256, string Provider, int Frames, int Scenes, int FirstSeed, double MeanAveragePrecision, IReadOnlyList<(string Label, ClassAveragePrecision Ap)> PerClass, double MeanInferenceMilliseconds);

/// <summary>One sensor model's figures over its streams.</summary>
internal sealed record SensorEvaluation(string Model, string Sha256, string Provider, IReadOnlyList<string> Streams, IReadOnlyList<int> Seeds, double Seconds, long Steps, double Accuracy, double MacroF1, IReadOnlyList<(string Label, double F1)> PerClass, IReadOnlyList<(string Label, int Count, double MedianSeconds, double P90Seconds)> TimeToDetect, int MissedFaults, long[,] Confusion, IReadOnlyList<string> Labels);

/// <summary>
/// Runs the daemon's own per-frame and per-step processing (the same processors its pipelines use)
/// on simulated data with known truth, and measures it: mAP@0.5 for synthetic cameras with a
/// detector, accuracy / F1 / time-to-detect for simulated vibration streams. Scenes and machines
/// are seeded from <c>seed</c> (default 900000), apart from the seeds the demo models were trained on.
/// </summary>
internal sealed class Evaluator(CamerasOptions cameras, SensorsOptions sensors, ModelCatalog catalog, ILoggerFactory loggerFactory)
{
    public const int FramesPerScene = 10;
    public const int SceneStride = 7;

    public IEnumerable<VisionEvaluation> EvaluateVision(int frames, int seed)
    {
        foreach (var (cameraId, camera) in cameras)
        {
            if (!camera.Enabled || camera.Source is not Vision.Sources.SyntheticSourceOptions)
            {
                continue;
            }

            var resolved = catalog.Get(camera.Model);
            if (resolved.Task != ModelTask.Detection)
            {
                continue;
            }

            yield return EvaluateCamera(cameraId, camera, resolved, frames, seed);
        }
    }

    public IEnumerable<SensorEvaluation> EvaluateSensors(double seconds, int seed)
    {
        foreach (var group in sensors.Where(s => s.Value.Enabled && s.Value.Source.Kind == SensorSourceKind.SimulatedVibration && catalog.Get(s.Value.Model).Task == ModelTask.SequenceClassification).GroupBy(s => s.Value.Model, StringComparer.OrdinalIgnoreCase))
        {
            yield return EvaluateSensorModel(catalog.Get(group.Key), [.. group.Select(g => g.Key)], seconds, seed);
        }
    }

    private VisionEvaluation EvaluateCamera(string cameraId, CameraOptions camera, ResolvedModel resolved, int frames, int seed)
    {
        using var processor = VisionProcessorFactory.Create(resolved, $"Camera {cameraId}", loggerFactory);
        var head = (DetectionHead)processor.Head;
        var labels = head.Labels;
        var evaluator = new DetectionEvaluator(labels.Count);
        var pool = new FramePool(2);
        var truth = new SyntheticObject[16];
        var truthBoxes = new TruthBox[16];
        var predictions = new PredictedBox[Math.Max(1, resolved.MaxDetections)];
        var source = (Vision.Sources.SyntheticSourceOptions)camera.Source;
        SyntheticScene? scene = null;
        double inferenceMs = 0;
        var scenes = 0;
        for (var i = 0; i < frames; i++)
        {
            if (i % FramesPerScene == 0)
            {
                scene = new SyntheticScene(source.Width, source.Height, seed + (i / FramesPerScene));
                scenes++;
            }

            var index = SyntheticScene.StartIndex(seed + (i / FramesPerScene)) + ((long)(i % FramesPerScene) * SceneStride);
            using var frame = scene!.RenderFrame(pool, index);
            inferenceMs += processor.Process(frame).InferenceMilliseconds;
            scene.GetTruth(index, truth);
            for (var t = 0; t < scene.ObjectCount; t++)
            {
                truthBoxes[t] = new TruthBox((int)truth[t].Shape, truth[t].X1, truth[t].Y1, truth[t].X2, truth[t].Y2);
            }

            var results = head.Results;
            for (var d = 0; d < results.Length; d++)
            {
                predictions[d] = new PredictedBox(results[d].ClassId, results[d].Score, results[d].X1, results[d].Y1, results[d].X2, results[d].Y2);
            }

            evaluator.AddImage(truthBoxes.AsSpan(0, scene.ObjectCount), predictions.AsSpan(0, results.Length));
        }

        var (map, perClass) = evaluator.Compute();
        return new VisionEvaluation(
            cameraId,
            resolved.Id,
            processor.Model.Sha256,
            processor.Model.ExecutionProvider,
            frames,
            scenes,
            seed,
            map,
            [.. perClass.Select(p => (labels[p.ClassId], p))],
            inferenceMs / Math.Max(1, frames));
    }

    private SensorEvaluation EvaluateSensorModel(ResolvedModel resolved, IReadOnlyList<string> streamIds, double seconds, int seed)
    {
        using var model = SequenceProcessorFactory.LoadModel(resolved, $"Models:{resolved.Id}", loggerFactory);
        var manifest = resolved.Manifest!;
        var labels = manifest.Labels;
        var modelLock = new object();
        var chunk = manifest.Stream!.ChunkSamples;
        var rate = manifest.Stream.SampleRateHz;
        var steps = (long)(seconds * rate / chunk);
        var evaluator = new SequenceClassificationEvaluator(labels.Count, holdSteps: Math.Max(1, (int)Math.Round(rate / chunk)));
        var seeds = new List<int>();
        long total = 0;
        for (var s = 0; s < streamIds.Count; s++)
        {
            var streamSeed = seed + s;
            seeds.Add(streamSeed);
            var processor = SequenceProcessorFactory.CreateProcessor(streamIds[s], model, modelLock, manifest.Stream, labels);
            var source = new SimulatedVibrationSource(streamSeed, rate, chunk, TimeProvider.System, paced: false);
            var block = new float[chunk * processor.Channels];
            for (long step = 0; step < steps; step++)
            {
                source.ReadAsync(block, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                processor.Step(block);
                // The step's truth is the state at its last sample: what the model has just seen.
                var truth = (int)source.LastTruth[^1];
                evaluator.Add(streamIds[s], (step + 1) * chunk / rate, truth, processor.TopClass);
                total++;
            }
        }

        var detections = evaluator.Detections;
        return new SensorEvaluation(
            resolved.Id,
            model.Sha256,
            model.ExecutionProvider,
            streamIds,
            seeds,
            seconds,
            total,
            evaluator.Accuracy(),
            evaluator.MacroF1(),
            [.. Enumerable.Range(0, labels.Count).Select(c => (labels[c], evaluator.F1(c)))],
            [.. Enumerable.Range(1, labels.Count - 1).Select(c =>
            {
                var times = detections.Where(d => d.ClassId == c).Select(d => d.Seconds).Order().ToList();
                return (labels[c], times.Count, Percentile(times, 0.5), Percentile(times, 0.9));
            })],
            evaluator.MissedFaults,
            evaluator.Confusion,
            labels);
    }

    private static double Percentile(List<double> sorted, double q) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];
}
