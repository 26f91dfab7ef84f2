using System.Text.Json;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Publishing;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.IntegrationTests;

/// <summary>A live stream restored from a checkpoint after a long pause: the stale state is dropped, its raised event cleared with a real time, and the window clock starts at the new samples.</summary>
public sealed class StreamRunnerRestoreTests
{
    private const int Samples = 4;

    private sealed class CapturingPublisher : IResultPublisher
    {
        public List<(string Topic, string Payload)> Messages { get; } = [];

        public bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain = false)
        {
            Messages.Add((topic, System.Text.Encoding.UTF8.GetString(payload)));
            return true;
        }
    }

    /// <summary>A live sensor (not replayable): one block at a given time, then the end.</summary>
    private sealed class OneBlockSource(DateTimeOffset time) : ISensorSource
    {
        private bool _sent;

        public string Description => "live";

        public IReadOnlyList<string> Channels { get; } = ["x", "y", "z"];

        public double SampleRateHz => 100;

        public ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
        {
            if (_sent)
            {
                return ValueTask.FromResult(new SensorBlock(0, time, 0));
            }

            _sent = true;
            var samples = destination.Length / 3;
            destination.Span[..(samples * 3)].Fill(0.01f);
            return ValueTask.FromResult(new SensorBlock(samples, time, 0));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Fact]
    public async Task A_raised_condition_restored_after_a_long_gap_is_cleared_at_the_checkpoints_time_and_windows_start_at_the_new_samples()
    {
        var ct = TestContext.Current.CancellationToken;
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
        var stream = new ManifestStreamInput { Input = "x", SampleRateHz = 100, Channels = ["x", "y", "z"], ChunkSamples = Samples };
        var processor = new SequenceStreamProcessor("s", model, new object(), stream, [], output: new SequenceOutputSpec(ModelTask.SequenceReconstruction, new HysteresisSettings(1.0, 0.5, 1, 1)));

        // The state as a checkpoint left it: the condition raised, 10 steps run.
        processor.Step(Enumerable.Repeat(10f, 3 * Samples).ToArray());
        Assert.True(processor.Trigger!.Active);
        processor.State.Steps = 10;

        var checkpointTime = new DateTimeOffset(2026, 11, 27, 1, 0, 0, TimeSpan.Zero);
        var resumedAt = checkpointTime.AddHours(1);
        var publisher = new CapturingPublisher();
        using var writer = new SensorResultWriter(PayloadOrigin.NewBoot("test-device"), "s", "half", model.Sha256, processor.Labels, processor.Task);
        var runner = new StreamRunner(
            "s",
            new OneBlockSource(resumedAt),
            processor,
            100,
            writer,
            publisher,
            "results",
            "events",
            TimeSpan.FromHours(1),
            TimeProvider.System,
            NullLogger.Instance,
            new StreamCheckpointing(Path.Combine(temp.Path, "s.state"), TimeSpan.FromHours(1), ResumeSourceSamples: 40, LastSampleTime: checkpointTime),
            new SampleValidation(InvalidSamplePolicy.Hold, float.MinValue, float.MaxValue, GapResetSeconds: 5));

        await runner.RunAsync(ct);

        var cleared = JsonDocument.Parse(Assert.Single(publisher.Messages, m => m.Topic == "events").Payload).RootElement;
        Assert.Equal("cleared", cleared.GetProperty("event").GetString());
        Assert.Equal(checkpointTime, cleared.GetProperty("timestamp").GetDateTimeOffset());
        Assert.Contains("gap since the checkpoint", cleared.GetProperty("reason").GetString(), StringComparison.Ordinal);

        var first = JsonDocument.Parse(publisher.Messages.First(m => m.Topic == "results").Payload).RootElement;
        Assert.Equal(10, first.GetProperty("seq").GetInt64()); // step numbers go on
        Assert.Equal(1, first.GetProperty("state_steps").GetInt64()); // the state does not
        Assert.Equal(resumedAt, first.GetProperty("window").GetProperty("start").GetDateTimeOffset());
    }
}
