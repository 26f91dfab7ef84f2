namespace EdgeRunner.Models.Audio;

/// <summary>
/// An <see cref="AudioFrontEnd"/> over samples that come in pieces of any size (a capture's reads, a
/// file's blocks): samples short of a whole hop wait for the next piece, so the frames are exactly those
/// of the whole signal at once. Owns the carried history. Allocation-free per piece; not thread-safe.
/// </summary>
public sealed class StreamingAudioFrontEnd
{
    private readonly AudioFrontEnd _frontEnd;
    private readonly float[] _history;
    private readonly float[] _pending;
    private int _pendingCount;

    /// <summary>A stream over a front end of its own (its scratch buffers are not shared).</summary>
    public StreamingAudioFrontEnd(AudioFrontEndSpec spec)
    {
        _frontEnd = new AudioFrontEnd(spec);
        _history = new float[_frontEnd.HistoryLength];
        _pending = new float[spec.HopLength];
    }

    /// <summary>The front end.</summary>
    public AudioFrontEnd FrontEnd => _frontEnd;

    /// <summary>Frames that <paramref name="samples"/> more samples complete, given those waiting.</summary>
    public int FramesFor(int samples) => (_pendingCount + samples) / _pending.Length;

    /// <summary>
    /// Adds <paramref name="samples"/>; writes the frames they complete into <paramref name="features"/>
    /// (room for <see cref="FramesFor"/> frames) and returns how many.
    /// </summary>
    public int Push(ReadOnlySpan<float> samples, Span<float> features)
    {
        var hop = _pending.Length;
        var perFrame = _frontEnd.FeaturesPerFrame;
        var frames = 0;
        while (!samples.IsEmpty)
        {
            if (_pendingCount > 0 || samples.Length < hop)
            {
                var take = Math.Min(hop - _pendingCount, samples.Length);
                samples[..take].CopyTo(_pending.AsSpan(_pendingCount));
                _pendingCount += take;
                samples = samples[take..];
                if (_pendingCount == hop)
                {
                    frames += _frontEnd.ProcessChunk(_pending, _history, features[(frames * perFrame)..]);
                    _pendingCount = 0;
                }
            }
            else
            {
                var whole = samples.Length / hop * hop;
                frames += _frontEnd.ProcessChunk(samples[..whole], _history, features[(frames * perFrame)..]);
                samples = samples[whole..];
            }
        }

        return frames;
    }

    /// <summary>Starts afresh: zeros of history, nothing waiting.</summary>
    public void Reset()
    {
        Array.Clear(_history);
        _pendingCount = 0;
    }
}
