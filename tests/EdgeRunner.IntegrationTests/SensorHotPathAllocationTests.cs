using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Publishing;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.IntegrationTests;

/// <summary>A sensor step in the daemon — normalise, step the model, read the output, write the JSON — allocates nothing in steady state.</summary>
public sealed class SensorHotPathAllocationTests
{
    [Fact]
    public void A_classification_step_and_its_result_json_allocate_nothing()
    {
        var manifest = BundledModels.Load("vibration-lstm");
        using var model = SequenceModel.Load(
            new SequenceModelOptions
            {
                Id = manifest.Id,
                Path = manifest.ModelPath,
                StreamInput = manifest.Stream!.Input,
                ResultOutput = manifest.Postprocess!.Output!,
                State = [.. manifest.State!.Select(p => (p.Input, p.Output, p.BatchAxis))],
            },
            NullLogger.Instance);
        var processor = new SequenceStreamProcessor("pump", model, new object(), manifest.Stream, manifest.Labels);
        using var writer = new SensorResultWriter(PayloadOrigin.NewBoot("test-device"), "pump", manifest.Id, model.Sha256, processor.Labels, processor.Task);
        var chunk = Enumerable.Range(0, 150).Select(i => (float)Math.Sin(i * 0.3)).ToArray();
        var start = DateTimeOffset.UnixEpoch;
        long bytes = 0;

        AllocationAssert.SteadyStateIsZero(() =>
        {
            var latency = processor.Step(chunk);
            bytes += writer.Write(processor.State.Steps, start, start.AddSeconds(0.25), 50, processor, latency).Length;
        });
        Assert.True(bytes > 0);
    }

    [Fact]
    public void A_score_step_with_context_and_a_trigger_allocates_nothing()
    {
        using var temp = new TempFolder();
        var manifest = ModelManifest.Load(SileroVadStreamingTests.WriteManifest(temp.Path));
        using var model = SequenceModel.Load(
            new SequenceModelOptions
            {
                Id = manifest.Id,
                Path = manifest.ModelPath,
                StreamInput = "input",
                ResultOutput = "output",
                ValuesPerStep = 576,
                ConstantInputs = new Dictionary<string, double[]> { ["sr"] = [16000] },
            },
            NullLogger.Instance);
        var processor = new SequenceStreamProcessor("mic", model, new object(), manifest.Stream!, manifest.Labels, output: SequenceOutputSpec.From(ModelTask.SequenceScore, manifest.Postprocess));
        using var writer = new SensorResultWriter(PayloadOrigin.NewBoot("test-device"), "mic", manifest.Id, model.Sha256, processor.Labels, processor.Task);
        var random = new Random(3);
        var chunk = Enumerable.Range(0, 512).Select(_ => (float)((random.NextDouble() - 0.5) * 0.4)).ToArray();
        var start = DateTimeOffset.UnixEpoch;

        AllocationAssert.SteadyStateIsZero(() =>
        {
            var latency = processor.Step(chunk);
            _ = writer.Write(processor.State.Steps, start, start.AddSeconds(0.032), 512, processor, latency);
        });
        Assert.NotNull(processor.Trigger);
        Assert.False(double.IsNaN(processor.Score));
    }
}
