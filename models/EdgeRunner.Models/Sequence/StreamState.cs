namespace EdgeRunner.Models.Sequence;

/// <summary>
/// The recurrent state of one stream: one buffer per state pair of the model, for batch size 1.
/// Owned by exactly one stream; the <see cref="SequenceModel"/> reads it before a step and writes
/// the new state back after, so streams never see each other's state.
/// </summary>
public sealed class StreamState
{
    private readonly float[][] _buffers;

    internal StreamState(string streamId, IReadOnlyList<int> sizes)
    {
        StreamId = streamId;
        _buffers = new float[sizes.Count][];
        for (var i = 0; i < sizes.Count; i++)
        {
            _buffers[i] = new float[sizes[i]];
        }
    }

    /// <summary>The stream this state belongs to.</summary>
    public string StreamId { get; }

    /// <summary>Steps run since creation or the last <see cref="Reset"/> (set when a checkpoint is restored).</summary>
    public long Steps { get; set; }

    /// <summary>Number of state tensors.</summary>
    public int Count => _buffers.Length;

    /// <summary>State tensor <paramref name="index"/> (batch 1), in the model's state-pair order.</summary>
    public Span<float> Tensor(int index) => _buffers[index];

    /// <summary>Back to the model's initial state (zeros).</summary>
    public void Reset()
    {
        foreach (var buffer in _buffers)
        {
            Array.Clear(buffer);
        }

        Steps = 0;
    }

    /// <summary>Copies this state into <paramref name="other"/> (same model).</summary>
    public void CopyTo(StreamState other)
    {
        ArgumentNullException.ThrowIfNull(other);
        for (var i = 0; i < _buffers.Length; i++)
        {
            _buffers[i].CopyTo(other._buffers[i], 0);
        }

        other.Steps = Steps;
    }
}
