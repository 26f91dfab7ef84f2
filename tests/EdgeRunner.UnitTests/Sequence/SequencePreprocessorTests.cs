using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.UnitTests.Sequence;

/// <summary>Two channels (mean 1 and 10, std 2 and 0 = none), chunks of 3 samples after 1 sample of context.</summary>
public sealed class SequencePreprocessorTests
{
    private static readonly SequenceInputSpec Spec = new(Channels: 2, ChunkSamples: 3, ContextSamples: 1, Mean: [1f, 10f], Std: [2f, 0f]);

    // Samples (channel 0, channel 1) normalise to 0,1,2 then 3,4,5 on both channels.
    private static readonly float[] First = [1, 10, 3, 11, 5, 12];
    private static readonly float[] Second = [7, 13, 9, 14, 11, 15];

    [Fact]
    public void Channel_major_input_gets_the_normalised_chunk_after_the_carried_context()
    {
        var pre = new SequencePreprocessor(Spec, [1, 2, 4]);
        var context = new float[pre.ContextLength];
        var input = new float[pre.InputLength];
        Assert.True(pre.ChannelMajor);

        pre.Process(First, context, input);
        Assert.Equal([0f, 0, 1, 2, 0, 0, 1, 2], input);
        Assert.Equal([2f, 2], context);

        pre.Process(Second, context, input);
        Assert.Equal([2f, 3, 4, 5, 2, 3, 4, 5], input);
        Assert.Equal([5f, 5], context);
    }

    [Fact]
    public void Sample_major_input_is_read_from_the_models_shape()
    {
        var pre = new SequencePreprocessor(Spec, [1, 4, 2]);
        var context = new float[pre.ContextLength];
        var input = new float[pre.InputLength];
        Assert.False(pre.ChannelMajor);

        pre.Process(First, context, input);
        pre.Process(Second, context, input);

        Assert.Equal([2f, 2, 3, 3, 4, 4, 5, 5], input);
    }

    [Fact]
    public void Without_context_the_chunk_is_only_normalised()
    {
        var pre = new SequencePreprocessor(Spec with { ContextSamples = 0 }, [1, 2, 3]);
        var input = new float[pre.InputLength];

        pre.Process(First, [], input);

        Assert.Equal(0, pre.ContextLength);
        Assert.Equal([0f, 1, 2, 0, 1, 2], input);
    }
}
