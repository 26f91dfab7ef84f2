using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Anomaly scores from the output of a sequence model, through the daemon's per-stream processor:
/// the reconstruction error of an autoencoder-shaped model and the prediction error of a forecaster,
/// with threshold/hysteresis raise and clear events. The models are small ONNX graphs written by the
/// test (a half-scale "reconstruction", a persistence forecaster with a state pair), so the expected
/// scores can be computed independently.
/// </summary>
public sealed class SequenceScoreOutputTests
{
    private const int Samples = 4;
    private static readonly string[] Channels = ["x", "y", "z"];

    private static readonly ManifestStreamInput Stream = new()
    {
        Input = "x",
        SampleRateHz = 100,
        Channels = Channels,
        ChunkSamples = Samples,
        Mean = [1f, 0f, -1f],
        Std = [2f, 1f, 0.5f],
    };

    private static float[] Chunk(float amplitude, int step)
    {
        // Interleaved samples, as sources deliver them.
        var chunk = new float[Samples * Channels.Length];
        for (var s = 0; s < Samples; s++)
        {
            for (var c = 0; c < Channels.Length; c++)
            {
                // Normalised, this is amplitude × a sine: the score scales with amplitude².
                chunk[(s * Channels.Length) + c] = Stream.Mean[c] + (Stream.Std[c] * amplitude * MathF.Sin((step * 1.3f) + s + (c * 0.7f)));
            }
        }

        return chunk;
    }

    private static float[] Normalised(float[] interleaved)
    {
        // Channel-major [3, 4], the model's layout.
        var result = new float[interleaved.Length];
        for (var s = 0; s < Samples; s++)
        {
            for (var c = 0; c < Channels.Length; c++)
            {
                result[(c * Samples) + s] = (interleaved[(s * Channels.Length) + c] - Stream.Mean[c]) / Stream.Std[c];
            }
        }

        return result;
    }

    private static double MeanSquare(IEnumerable<double> values) => values.Select(v => v * v).Average();

    [Fact]
    public void Reconstruction_error_is_the_score_and_raises_and_clears_with_hysteresis()
    {
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "half.onnx");
        File.WriteAllBytes(path, OnnxProto.WriteModel(
            8,
            [(string.Empty, 17)],
            [new OnnxNode("Mul", string.Empty, ["x", "half"], ["reconstruction"], [])],
            [new OnnxTensor("half", OnnxTensor.Float, [], [0.5f], [])],
            [("x", OnnxTensor.Float, ["batch", 3, Samples])],
            [("reconstruction", OnnxTensor.Float, ["batch", 3, Samples])]));
        using var model = SequenceModel.Load(new SequenceModelOptions { Id = "half", Path = path, StreamInput = "x", ResultOutput = "reconstruction" }, NullLogger.Instance);
        Assert.Empty(model.StatePairs);
        var processor = new SequenceStreamProcessor("s", model, new object(), Stream, [], output: new SequenceOutputSpec(ModelTask.SequenceReconstruction, new HysteresisSettings(1.0, 0.5, 1, 2)));

        var amplitudes = new[] { 0.1f, 0.2f, 6f, 3f, 6f, 0.2f, 6f, 0.1f, 0.1f };
        var transitions = new List<char>();
        for (var step = 0; step < amplitudes.Length; step++)
        {
            var chunk = Chunk(amplitudes[step], step);
            processor.Step(chunk);
            // reconstruction − input = −input/2 → error = mean(v²)/4 over the normalised chunk.
            var expected = MeanSquare(Normalised(chunk).Select(v => (double)v)) / 4;
            Assert.Equal(expected, processor.Score, 5);
            transitions.Add(processor.Transition switch { TriggerTransition.Raised => 'R', TriggerTransition.Cleared => 'C', _ => '.' });
        }

        var scores = amplitudes.Select((a, i) => MeanSquare(Normalised(Chunk(a, i)).Select(v => (double)v)) / 4).ToArray();
        Assert.True(scores[0] < 0.5 && scores[2] > 1 && scores[5] < 0.5 && scores[7] < 0.5, string.Join(", ", scores));
        // Raised at the first large chunk; one quiet chunk (5) is not enough to clear (2 needed); two (7, 8) are.
        Assert.Equal("..R.....C", new string([.. transitions]));

        // A reset while raised reports it (the runner then publishes a "cleared" event), and clears it.
        processor.Step(Chunk(6f, 20));
        Assert.Equal(TriggerTransition.Raised, processor.Transition);

        // The raised condition is part of the stream's state: a stream restored from it (a restart) is raised
        // too, so a large chunk raises nothing new and two quiet ones clear it.
        var restored = new SequenceStreamProcessor("s", model, new object(), Stream, [], output: new SequenceOutputSpec(ModelTask.SequenceReconstruction, new HysteresisSettings(1.0, 0.5, 1, 2)));
        processor.State.CopyTo(restored.State);
        restored.StateRestored();
        Assert.True(restored.Trigger!.Active);
        restored.Step(Chunk(6f, 21));
        Assert.Equal(TriggerTransition.None, restored.Transition);
        restored.Step(Chunk(0.1f, 22));
        restored.Step(Chunk(0.1f, 23));
        Assert.Equal(TriggerTransition.Cleared, restored.Transition);

        Assert.True(processor.Reset());
        Assert.False(processor.Trigger!.Active);
        Assert.False(processor.Reset());
    }

    [Fact]
    public void Forecast_error_compares_the_previous_steps_forecast_with_the_samples_that_came()
    {
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "persistence.onnx");
        // Forecast = this chunk (persistence); a state pair last → last_out keeps the previous chunk (inferred by name).
        File.WriteAllBytes(path, OnnxProto.WriteModel(
            8,
            [(string.Empty, 17)],
            [
                new OnnxNode("Add", string.Empty, ["x", "zero"], ["forecast"], []),
                new OnnxNode("Identity", string.Empty, ["x"], ["last_out"], []),
                new OnnxNode("Identity", string.Empty, ["last"], ["unused"], []),
            ],
            [new OnnxTensor("zero", OnnxTensor.Float, [], [0f], [])],
            [("x", OnnxTensor.Float, ["batch", 3, Samples]), ("last", OnnxTensor.Float, ["batch", 3, Samples])],
            [("forecast", OnnxTensor.Float, ["batch", 3, Samples]), ("last_out", OnnxTensor.Float, ["batch", 3, Samples]), ("unused", OnnxTensor.Float, ["batch", 3, Samples])]));
        using var model = SequenceModel.Load(new SequenceModelOptions { Id = "persistence", Path = path, StreamInput = "x", ResultOutput = "forecast" }, NullLogger.Instance);
        Assert.Equal(("last", "last_out"), (model.StatePairs.Single().Input, model.StatePairs.Single().Output));
        var processor = new SequenceStreamProcessor("s", model, new object(), Stream, [], output: new SequenceOutputSpec(ModelTask.SequenceForecast, null));

        float[]? previous = null;
        for (var step = 0; step < 6; step++)
        {
            var chunk = Chunk(step < 3 ? 0.5f : 3f, step);
            processor.Step(chunk);
            var normalised = Normalised(chunk);
            if (previous is null)
            {
                Assert.True(double.IsNaN(processor.Score), "no forecast exists before the first step");
            }
            else
            {
                Assert.Equal(MeanSquare(previous.Zip(normalised, (p, n) => (double)p - n)), processor.Score, 5);
            }

            previous = normalised;
        }

        // A reset forgets the last forecast: the next step has no score again.
        processor.Reset();
        processor.Step(Chunk(1, 9));
        Assert.True(double.IsNaN(processor.Score));
    }

    [Fact]
    public void A_non_finite_model_output_is_flagged_not_scored()
    {
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "log.onnx");
        // log of a negative sample is NaN: a stand-in for a model overflowing on extreme input.
        File.WriteAllBytes(path, OnnxProto.WriteModel(
            8,
            [(string.Empty, 17)],
            [new OnnxNode("Log", string.Empty, ["x"], ["y"], [])],
            [],
            [("x", OnnxTensor.Float, ["batch", 3, Samples])],
            [("y", OnnxTensor.Float, ["batch", 3, Samples])]));
        using var model = SequenceModel.Load(new SequenceModelOptions { Id = "log", Path = path, StreamInput = "x", ResultOutput = "y" }, NullLogger.Instance);
        var processor = new SequenceStreamProcessor("s", model, new object(), Stream, [], output: new SequenceOutputSpec(ModelTask.SequenceReconstruction, new HysteresisSettings(1, 1, 1, 1)));

        processor.Step(Chunk(1f, 0));

        Assert.False(processor.ResultIsFinite);
        Assert.True(double.IsNaN(processor.Score));
        Assert.Equal(TriggerTransition.None, processor.Transition);
    }

    [Fact]
    public async Task A_forecasters_results_on_mqtt_carry_the_forecast_and_its_prediction_error()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        // Forecast of the next chunk = this chunk (persistence), as channel-major [1, 4] for one channel.
        var (_, manifest) = await TestManifests.WriteModelAsync(
            temp.Path,
            "persistence",
            OnnxProto.WriteModel(
                8,
                [(string.Empty, 17)],
                [new OnnxNode("Add", string.Empty, ["x", "zero"], ["forecast"], [])],
                [new OnnxTensor("zero", OnnxTensor.Float, [], [0f], [])],
                [("x", OnnxTensor.Float, ["batch", 1, Samples])],
                [("forecast", OnnxTensor.Float, ["batch", 1, Samples])]),
            new JsonObject
            {
                ["task"] = "sequence_forecast",
                ["state"] = new JsonArray(),
                ["stream"] = new JsonObject { ["input"] = "x", ["sample_rate_hz"] = 100, ["channels"] = new JsonArray("v"), ["chunk_samples"] = Samples },
                ["postprocess"] = new JsonObject { ["kind"] = "sequence_forecast", ["output"] = "forecast", ["threshold"] = 1.0 },
            },
            ct);
        float[] values = [0.5f, 1, 1.5f, 2, 0.5f, 1, 1.5f, 4, 0, 0, 0, 0];
        var csv = Path.Combine(temp.Path, "v.csv");
        await File.WriteAllLinesAsync(csv, ["v", .. values.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))], ct);

        await using var scenario = await DaemonScenario.StartAsync("forecast", ct);
        var probe = await scenario.ProbeAsync("sensors/tank/#", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["f"] = new JsonObject { ["Manifest"] = manifest } },
                ["Sensors"] = new JsonObject { ["tank"] = new JsonObject { ["Model"] = "f", ["Source"] = TestConfig.CsvReplay(csv, 100, "v") } },
            },
            ct);
        await probe.WaitForAsync(m => m.Topic.EndsWith("/state", StringComparison.Ordinal) && m.Payload.Contains("\"ended\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30), ct);
        await host.StopAsync(ct);

        var results = probe.Seen.Where(m => m.Topic.EndsWith("/result", StringComparison.Ordinal)).Select(m => System.Text.Json.JsonDocument.Parse(m.Payload).RootElement).ToList();
        Assert.Equal(3, results.Count);
        Assert.Equal("sequence_forecast", results[0].GetProperty("task").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, results[0].GetProperty("score").ValueKind);
        Assert.Equal(values[..4].Select(v => (double)v), results[0].GetProperty("forecast").EnumerateArray().Select(e => e.GetDouble()));

        // Step 1: forecast (0.5, 1, 1.5, 2) vs actual (0.5, 1, 1.5, 4): error 4/4 = 1 → raised (threshold 1).
        Assert.Equal(1.0, results[1].GetProperty("score").GetDouble(), 6);
        Assert.True(results[1].GetProperty("active").GetBoolean());
        // Step 2: forecast (0.5, 1, 1.5, 4) vs zeros: (0.25 + 1 + 2.25 + 16) / 4.
        Assert.Equal(19.5 / 4, results[2].GetProperty("score").GetDouble(), 6);
        var raised = Assert.Single(probe.Seen, m => m.Topic.EndsWith("/event", StringComparison.Ordinal));
        Assert.Contains("\"raised\"", raised.Payload, StringComparison.Ordinal);
    }
}
