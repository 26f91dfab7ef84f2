using EdgeRunner.Service.Sensors;

namespace EdgeRunner.UnitTests.Sensors;

public sealed class ChunkAssemblerTests
{
    [Fact]
    public void Samples_are_cut_into_chunks_and_the_rest_waits_for_the_next()
    {
        var chunks = new ChunkAssembler(channels: 2, chunkSamples: 3, blockSamples: 3, sourceRateHz: 10, modelRateHz: 10);
        chunks.Append([1, 10, 2, 20]);
        Assert.False(chunks.HasChunk);

        chunks.Append([3, 30, 4, 40, 5, 50]);
        Assert.True(chunks.HasChunk);
        Assert.Equal([1f, 10, 2, 20, 3, 30], chunks.Chunk.ToArray());

        chunks.ConsumeChunk();
        Assert.False(chunks.HasChunk);
        chunks.Append([6, 60]);
        Assert.Equal([4f, 40, 5, 50, 6, 60], chunks.Chunk.ToArray());
    }

    [Fact]
    public void The_waiting_samples_survive_a_save_and_restore_and_a_clear_drops_them()
    {
        var chunks = new ChunkAssembler(channels: 1, chunkSamples: 4, blockSamples: 4, sourceRateHz: 8, modelRateHz: 4);
        chunks.Append([0, 1, 2, 3, 4]);
        var saved = chunks.SaveState();

        var restored = new ChunkAssembler(channels: 1, chunkSamples: 4, blockSamples: 4, sourceRateHz: 8, modelRateHz: 4);
        restored.RestoreState(saved);
        chunks.Append([5, 6, 7, 8, 9, 10]);
        restored.Append([5, 6, 7, 8, 9, 10]);
        Assert.True(chunks.HasChunk);
        Assert.Equal(chunks.Chunk.ToArray(), restored.Chunk.ToArray());

        restored.Clear();
        Assert.False(restored.HasChunk);
    }

    [Fact]
    public void A_state_saved_at_another_rate_is_ignored()
    {
        var resampling = new ChunkAssembler(channels: 1, chunkSamples: 4, blockSamples: 4, sourceRateHz: 8, modelRateHz: 4);
        resampling.Append([1, 2, 3]);
        var plain = new ChunkAssembler(channels: 1, chunkSamples: 4, blockSamples: 4, sourceRateHz: 4, modelRateHz: 4);

        plain.RestoreState(resampling.SaveState());
        plain.Append([7, 8, 9, 10]);

        Assert.Equal([7f, 8, 9, 10], plain.Chunk.ToArray());
    }
}
