using EdgeRunner.Hardware.Sensors;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Sequence;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.IntegrationTests;

/// <summary>The bundled LSTM run by the daemon's stateful runner: state carried per stream, never shared.</summary>
public sealed class VibrationLstmTests
{
    private const int Steps = 40;

    private static SequenceModel Load()
    {
        var manifest = BundledModels.Load("vibration-lstm");
        return SequenceModel.Load(
            new SequenceModelOptions
            {
                Id = manifest.Id,
                Path = manifest.ModelPath,
                StreamInput = manifest.Stream!.Input,
                ResultOutput = manifest.Postprocess!.Output!,
                State = [.. manifest.State!.Select(p => (p.Input, p.Output, p.BatchAxis))],
            },
            NullLogger.Instance);
    }

    /// <summary>Steps × chunk of normalised simulator data for one machine (channel-major per step, as the model takes it).</summary>
    private static float[] Chunks(SequenceModel model, int seed)
    {
        var manifest = BundledModels.Load("vibration-lstm");
        var stream = manifest.Stream!;
        var source = new SimulatedVibrationSource(seed, stream.SampleRateHz, stream.ChunkSamples, TimeProvider.System, paced: false);
        var block = new float[stream.ChunkSamples * 3];
        var chunks = new float[Steps * model.ChunkLength];
        for (var step = 0; step < Steps; step++)
        {
            source.ReadAsync(block, TestContext.Current.CancellationToken).AsTask().GetAwaiter().GetResult();
            for (var s = 0; s < stream.ChunkSamples; s++)
            {
                for (var c = 0; c < 3; c++)
                {
                    var mean = stream.Mean.Count > c ? stream.Mean[c] : 0f;
                    var std = stream.Std.Count > c ? stream.Std[c] : 1f;
                    chunks[(step * model.ChunkLength) + (c * stream.ChunkSamples) + s] = (block[(s * 3) + c] - mean) / std;
                }
            }
        }

        return chunks;
    }

    private static float[] StepByStep(SequenceModel model, StreamState state, float[] chunks)
    {
        var results = new float[Steps * model.ResultLength];
        for (var step = 0; step < Steps; step++)
        {
            model.Step(state, chunks.AsSpan(step * model.ChunkLength, model.ChunkLength), results.AsSpan(step * model.ResultLength, model.ResultLength));
        }

        return results;
    }

    private static float MaxAbsDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        var max = 0f;
        for (var i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }

        return max;
    }

    [Fact]
    public void Stepping_with_carried_state_equals_one_run_over_the_whole_sequence()
    {
        using var model = Load();
        var chunks = Chunks(model, seed: 900123);

        var stepped = model.CreateState("stepped");
        var steppedResults = StepByStep(model, stepped, chunks);
        var whole = model.CreateState("whole");
        var wholeResults = model.RunSequence(whole, chunks, Steps);

        Assert.True(MaxAbsDifference(steppedResults, wholeResults) <= 1e-5f, $"max |Δ| = {MaxAbsDifference(steppedResults, wholeResults)}");
        for (var p = 0; p < stepped.Count; p++)
        {
            Assert.True(MaxAbsDifference(stepped.Tensor(p), whole.Tensor(p)) <= 1e-5f);
        }

        Assert.Equal(Steps, stepped.Steps);
        // The state matters: the same last chunk from a fresh state gives a different answer.
        var fresh = new float[model.ResultLength];
        model.Step(model.CreateState("fresh"), chunks.AsSpan((Steps - 1) * model.ChunkLength, model.ChunkLength), fresh);
        Assert.True(MaxAbsDifference(fresh, steppedResults.AsSpan((Steps - 1) * model.ResultLength)) > 1e-4f);
    }

    [Fact]
    public void Two_streams_interleaved_give_the_same_outputs_as_each_alone()
    {
        using var model = Load();
        var a = Chunks(model, seed: 900201);
        var b = Chunks(model, seed: 900202);
        var aloneA = StepByStep(model, model.CreateState("a"), a);
        var aloneB = StepByStep(model, model.CreateState("b"), b);

        var stateA = model.CreateState("a");
        var stateB = model.CreateState("b");
        var mixedA = new float[aloneA.Length];
        var mixedB = new float[aloneB.Length];
        for (var step = 0; step < Steps; step++)
        {
            model.Step(stateA, a.AsSpan(step * model.ChunkLength, model.ChunkLength), mixedA.AsSpan(step * model.ResultLength, model.ResultLength));
            model.Step(stateB, b.AsSpan(step * model.ChunkLength, model.ChunkLength), mixedB.AsSpan(step * model.ResultLength, model.ResultLength));
        }

        Assert.Equal(0f, MaxAbsDifference(aloneA, mixedA));
        Assert.Equal(0f, MaxAbsDifference(aloneB, mixedB));
    }

    [Fact]
    public void Eight_streams_batched_in_one_run_match_each_stream_alone()
    {
        using var model = Load();
        const int streams = 8;
        var chunks = Enumerable.Range(0, streams).Select(i => Chunks(model, seed: 900300 + i)).ToArray();
        var alone = chunks.Select((c, i) => StepByStep(model, model.CreateState($"s{i}"), c)).ToArray();

        var states = Enumerable.Range(0, streams).Select(i => model.CreateState($"s{i}")).ToArray();
        var batchChunks = new float[streams * model.ChunkLength];
        var batchResults = new float[streams * model.ResultLength];
        var batched = chunks.Select(_ => new float[Steps * model.ResultLength]).ToArray();
        for (var step = 0; step < Steps; step++)
        {
            for (var i = 0; i < streams; i++)
            {
                chunks[i].AsSpan(step * model.ChunkLength, model.ChunkLength).CopyTo(batchChunks.AsSpan(i * model.ChunkLength));
            }

            model.StepBatch(states, batchChunks, batchResults);
            for (var i = 0; i < streams; i++)
            {
                batchResults.AsSpan(i * model.ResultLength, model.ResultLength).CopyTo(batched[i].AsSpan(step * model.ResultLength));
            }
        }

        for (var i = 0; i < streams; i++)
        {
            Assert.True(MaxAbsDifference(alone[i], batched[i]) <= 1e-5f, $"stream {i}: max |Δ| = {MaxAbsDifference(alone[i], batched[i])}");
        }
    }

    [Fact]
    public void Steady_state_steps_allocate_nothing()
    {
        using var model = Load();
        var chunks = Chunks(model, seed: 900400);
        var state = model.CreateState("s");
        var result = new float[model.ResultLength];
        model.Step(state, chunks.AsSpan(0, model.ChunkLength), result);

        var step = 1;
        AllocationAssert.SteadyStateIsZero(() =>
        {
            model.Step(state, chunks.AsSpan(step * model.ChunkLength, model.ChunkLength), result);
            step = (step % (Steps - 1)) + 1;
        });
    }
}
