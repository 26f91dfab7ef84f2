using EdgeRunner.Models.Sequence;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// Cuts a stream's samples into the model's chunks: resamples them to the model's rate when the
/// source runs at another, and keeps the samples waiting for the next chunk. Its state (the
/// resampler's grid and the waiting samples) goes into checkpoints, so a restored stream continues
/// exactly. Buffers are allocated once.
/// </summary>
internal sealed class ChunkAssembler
{
    private readonly int _channels;
    private readonly int _chunkSamples;
    private readonly LinearResampler? _resampler;
    private readonly float[] _resampled;
    private readonly float[] _pending;
    private int _pendingSamples;

    /// <summary>Creates the assembler for blocks of up to <paramref name="blockSamples"/> source samples of <paramref name="channels"/> channels.</summary>
    public ChunkAssembler(int channels, int chunkSamples, int blockSamples, double sourceRateHz, double modelRateHz)
    {
        _channels = channels;
        _chunkSamples = chunkSamples;
        if (Math.Abs(sourceRateHz - modelRateHz) > 1e-9)
        {
            _resampler = new LinearResampler(channels, sourceRateHz, modelRateHz);
        }

        _resampled = new float[(_resampler?.MaxOutput(blockSamples) ?? blockSamples) * channels];
        _pending = new float[(chunkSamples + (_resampled.Length / channels)) * channels];
    }

    /// <summary>Whether a whole chunk is waiting.</summary>
    public bool HasChunk => _pendingSamples >= _chunkSamples;

    /// <summary>The oldest waiting chunk (interleaved), valid until <see cref="ConsumeChunk"/> or <see cref="Append"/>.</summary>
    public ReadOnlySpan<float> Chunk => _pending.AsSpan(0, _chunkSamples * _channels);

    /// <summary>Appends source-rate samples (interleaved), resampled to the model's rate when needed.</summary>
    public void Append(ReadOnlySpan<float> samples)
    {
        if (_resampler is null)
        {
            AppendModelRate(samples);
        }
        else
        {
            var produced = _resampler.Process(samples, _resampled);
            AppendModelRate(_resampled.AsSpan(0, produced * _channels));
        }
    }

    /// <summary>Drops the oldest chunk; the samples after it wait for the next.</summary>
    public void ConsumeChunk()
    {
        _pending.AsSpan(_chunkSamples * _channels, (_pendingSamples - _chunkSamples) * _channels).CopyTo(_pending);
        _pendingSamples -= _chunkSamples;
    }

    /// <summary>Drops the waiting samples and the resampler's history (a reset that drops samples).</summary>
    public void Clear()
    {
        _pendingSamples = 0;
        _resampler?.Reset();
    }

    /// <summary>[has resampler, resampler state…, pending samples, pending values…] (allocates: checkpoints are rare).</summary>
    public double[] SaveState()
    {
        var resamplerLength = _resampler?.StateLength ?? 0;
        var state = new double[1 + resamplerLength + 1 + (_pendingSamples * _channels)];
        state[0] = _resampler is null ? 0 : 1;
        _resampler?.SaveState(state.AsSpan(1, resamplerLength));
        state[1 + resamplerLength] = _pendingSamples;
        for (var i = 0; i < _pendingSamples * _channels; i++)
        {
            state[2 + resamplerLength + i] = _pending[i];
        }

        return state;
    }

    /// <summary>Takes the state saved by <see cref="SaveState"/>; ignores one that does not fit (an older checkpoint, changed rates).</summary>
    public void RestoreState(double[]? state)
    {
        var resamplerLength = _resampler?.StateLength ?? 0;
        if (state is null || state.Length < 2 + resamplerLength || (state[0] > 0.5) != (_resampler is not null))
        {
            // An older checkpoint (or the rates changed since): its position already excludes pending samples.
            return;
        }

        var pending = (int)state[1 + resamplerLength];
        if (pending < 0 || pending * _channels > _pending.Length || state.Length != 2 + resamplerLength + (pending * _channels))
        {
            return;
        }

        _resampler?.RestoreState(state.AsSpan(1, resamplerLength));
        for (var i = 0; i < pending * _channels; i++)
        {
            _pending[i] = (float)state[2 + resamplerLength + i];
        }

        _pendingSamples = pending;
    }

    private void AppendModelRate(ReadOnlySpan<float> samples)
    {
        samples.CopyTo(_pending.AsSpan(_pendingSamples * _channels));
        _pendingSamples += samples.Length / _channels;
    }
}
