using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Sequence;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// <c>postprocess.softmax</c> on sequence models that output logits: the published probabilities and
/// score are the softmax of the model's output. The model is an identity written by the test (its four
/// "logits" are the chunk's four samples), so the expected probabilities are computed here independently.
/// </summary>
public sealed class SequenceSoftmaxTests
{
    private static readonly string[] Labels = ["a", "b", "c", "d"];

    private static byte[] IdentityLogits() => OnnxProto.WriteModel(
        8,
        [(string.Empty, 17)],
        [new OnnxNode("Add", string.Empty, ["x", "zero"], ["logits"], [])],
        [new OnnxTensor("zero", OnnxTensor.Float, [], [0f], [])],
        [("x", OnnxTensor.Float, ["batch", 1, 4])],
        [("logits", OnnxTensor.Float, ["batch", 1, 4])]);

    private static double[] Softmax(float[] logits)
    {
        var max = logits.Max();
        var exp = logits.Select(v => Math.Exp(v - max)).ToArray();
        return [.. exp.Select(e => e / exp.Sum())];
    }

    private static readonly ManifestStreamInput Stream = new() { Input = "x", SampleRateHz = 10, Channels = ["v"], ChunkSamples = 4 };

    [Fact]
    public void Softmax_from_the_manifest_turns_logits_into_probabilities_and_without_it_logits_stay()
    {
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "logits.onnx");
        File.WriteAllBytes(path, IdentityLogits());
        using var model = SequenceModel.Load(new SequenceModelOptions { Id = "logits", Path = path, StreamInput = "x", ResultOutput = "logits" }, NullLogger.Instance);
        float[] logits = [2f, -1f, 0.5f, 9f];

        var softmax = new SequenceStreamProcessor("s", model, new object(), Stream, Labels, output: SequenceOutputSpec.From(ModelTask.SequenceClassification, new ManifestPostprocess { Kind = "sequence_classification", Output = "logits", Softmax = true }));
        softmax.Step(logits);
        var expected = Softmax(logits);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(expected[i], softmax.Result[i], 5);
        }

        Assert.Equal(3, softmax.TopClass);

        var raw = new SequenceStreamProcessor("s", model, new object(), Stream, Labels, output: SequenceOutputSpec.From(ModelTask.SequenceClassification, new ManifestPostprocess { Kind = "sequence_classification", Output = "logits" }));
        raw.Step(logits);
        Assert.Equal(logits, raw.Result.ToArray());

        // A score model's score is the first value after the softmax.
        var score = new SequenceStreamProcessor("s", model, new object(), Stream, Labels, output: SequenceOutputSpec.From(ModelTask.SequenceScore, new ManifestPostprocess { Kind = "sequence_score", Output = "logits", Softmax = true }));
        score.Step(logits);
        Assert.Equal(expected[0], score.Score, 5);
    }

    [Fact]
    public void Softmax_on_a_reconstruction_model_is_refused_naming_the_key()
    {
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "logits.onnx");
        File.WriteAllBytes(path, IdentityLogits());
        using var model = SequenceModel.Load(new SequenceModelOptions { Id = "logits", Path = path, StreamInput = "x", ResultOutput = "logits" }, NullLogger.Instance);

        var error = Assert.Throws<ManifestException>(() => new SequenceStreamProcessor("s", model, new object(), Stream, [], output: SequenceOutputSpec.From(ModelTask.SequenceReconstruction, new ManifestPostprocess { Kind = "sequence_reconstruction", Output = "logits", Softmax = true })));
        Assert.Contains("postprocess.softmax", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Published_probabilities_and_score_of_a_logits_model_with_softmax_are_probabilities()
    {
        var ct = TestContext.Current.CancellationToken;
        using var temp = new TempFolder();
        var (_, manifest) = await TestManifests.WriteModelAsync(
            temp.Path,
            "logits",
            IdentityLogits(),
            new JsonObject
            {
                ["task"] = "sequence_classification",
                ["labels"] = new JsonArray([.. Labels.Select(l => JsonValue.Create(l))]),
                ["state"] = new JsonArray(),
                ["stream"] = new JsonObject { ["input"] = "x", ["sample_rate_hz"] = 10, ["channels"] = new JsonArray("v"), ["chunk_samples"] = 4 },
                ["postprocess"] = new JsonObject { ["kind"] = "sequence_classification", ["output"] = "logits", ["softmax"] = true },
            },
            ct);
        float[] values = [2f, -1f, 0.5f, 9f, 3f, 3f, -2f, 0f];
        var csv = Path.Combine(temp.Path, "v.csv");
        await File.WriteAllLinesAsync(csv, ["v", .. values.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))], ct);

        await using var scenario = await DaemonScenario.StartAsync("softmax", ct);
        var probe = await scenario.ProbeAsync("sensors/logits/result", ct);
        var host = await scenario.StartHostAsync(
            new JsonObject
            {
                ["Models"] = new JsonObject { ["m"] = new JsonObject { ["Manifest"] = manifest } },
                ["Sensors"] = new JsonObject { ["logits"] = new JsonObject { ["Model"] = "m", ["Source"] = TestConfig.CsvReplay(csv, 10, "v") } },
            },
            ct);
        var results = new List<JsonElement>();
        while (results.Count < 2)
        {
            results.Add(JsonDocument.Parse((await probe.WaitForAsync(_ => true, TimeSpan.FromSeconds(30), ct)).Payload).RootElement);
        }

        await host.StopAsync(ct);

        for (var step = 0; step < 2; step++)
        {
            var expected = Softmax(values[(step * 4)..((step * 4) + 4)]);
            var probabilities = results[step].GetProperty("probabilities");
            for (var i = 0; i < 4; i++)
            {
                Assert.Equal(expected[i], probabilities.GetProperty(Labels[i]).GetDouble(), 4);
            }

            Assert.Equal(expected.Max(), results[step].GetProperty("score").GetDouble(), 4);
            Assert.Equal(Labels[Array.IndexOf(expected, expected.Max())], results[step].GetProperty("label").GetString());
        }
    }
}
