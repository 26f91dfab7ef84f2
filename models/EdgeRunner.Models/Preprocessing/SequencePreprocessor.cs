using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Sequence;

namespace EdgeRunner.Models.Preprocessing;

/// <summary>
/// The input side of a sequence model, as <see cref="ImagePreprocessingSpec"/> is for images: how many
/// channels and samples one step takes, how many samples of the previous chunk come before them, and
/// the per-channel normalisation.
/// </summary>
/// <param name="Channels">Channels per sample.</param>
/// <param name="ChunkSamples">New samples per channel in one step.</param>
/// <param name="ContextSamples">Samples per channel carried over from the end of the previous chunk (0: none).</param>
/// <param name="Mean">Per-channel mean subtracted (missing channels: 0).</param>
/// <param name="Std">Per-channel standard deviation divided by (missing or 0: 1).</param>
public sealed record SequenceInputSpec(int Channels, int ChunkSamples, int ContextSamples, IReadOnlyList<float> Mean, IReadOnlyList<float> Std)
{
    /// <summary>How the samples are laid out in the model's input (<see cref="StreamLayout.Auto"/>: guessed from its shape).</summary>
    public StreamLayout Layout { get; init; }

    /// <summary>Samples per channel the model sees in one step (context and new).</summary>
    public int ModelSamples => ChunkSamples + ContextSamples;

    /// <summary>From a manifest's stream section.</summary>
    public static SequenceInputSpec From(ManifestStreamInput stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return new(stream.Channels.Count, stream.ChunkSamples, stream.ContextSamples, stream.Mean, stream.Std) { Layout = StreamLayouts.Parse(stream.Layout) };
    }
}

/// <summary>
/// Turns one chunk of interleaved samples (<c>[sample, channel]</c>, as sources deliver them) into a
/// sequence model's input: normalised per channel, in the model's own layout (<c>[channels, samples]</c>
/// or <c>[samples, channels]</c>), after the context carried from the previous chunk when the model
/// takes one. The carried context is the caller's (it belongs to a stream's state, so it is reset and
/// checkpointed with it). Allocation-free per chunk.
/// </summary>
public sealed class SequencePreprocessor
{
    private readonly float[] _scale;
    private readonly float[] _offset;
    private readonly int _channels;
    private readonly int _chunkSamples;
    private readonly int _contextSamples;
    private readonly int _modelSamples;

    /// <summary>
    /// Creates the preprocessor for <paramref name="spec"/> and the model input's chunk shape <paramref name="chunkShape"/>:
    /// a declared layout is checked against it (<see cref="ManifestException"/> when they disagree); <see cref="StreamLayout.Auto"/>
    /// is guessed from its last two dims, as before layouts could be declared.
    /// </summary>
    public SequencePreprocessor(SequenceInputSpec spec, IReadOnlyList<long> chunkShape)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(chunkShape);
        Spec = spec;
        _channels = spec.Channels;
        _chunkSamples = spec.ChunkSamples;
        _contextSamples = spec.ContextSamples;
        _modelSamples = spec.ModelSamples;
        _scale = new float[_channels];
        _offset = new float[_channels];
        for (var c = 0; c < _channels; c++)
        {
            var mean = c < spec.Mean.Count ? spec.Mean[c] : 0f;
            var std = c < spec.Std.Count && spec.Std[c] != 0 ? spec.Std[c] : 1f;
            _scale[c] = 1f / std;
            _offset[c] = -mean / std;
        }

        // Declared in the manifest, checked against the input's shape; else guessed from it (the default).
        Layout = StreamLayouts.Resolve(spec, chunkShape);
        ChannelMajor = Layout == StreamLayout.FeatureTime;
        LayoutGuessed = spec.Layout == StreamLayout.Auto;
    }

    /// <summary>The layout in effect (never <see cref="StreamLayout.Auto"/>: a guess is resolved to what it guessed).</summary>
    public StreamLayout Layout { get; }

    /// <summary>Whether <see cref="Layout"/> was guessed from the input's shape rather than declared in the manifest.</summary>
    public bool LayoutGuessed { get; }

    /// <summary>The input side this preprocessor was made for.</summary>
    public SequenceInputSpec Spec { get; }

    /// <summary>Values of one model input (channels × (context + chunk) samples).</summary>
    public int InputLength => _channels * _modelSamples;

    /// <summary>Values of the carried context (channels × context samples; 0 without context).</summary>
    public int ContextLength => _channels * _contextSamples;

    /// <summary>Whether the model takes <c>[channels, samples]</c> (else <c>[samples, channels]</c>).</summary>
    public bool ChannelMajor { get; }

    /// <summary>
    /// Writes <paramref name="interleaved"/> (exactly one chunk) into <paramref name="input"/>, after the
    /// context in <paramref name="context"/>, and leaves the end of this chunk in <paramref name="context"/>
    /// for the next one.
    /// </summary>
    public void Process(ReadOnlySpan<float> interleaved, Span<float> context, Span<float> input)
    {
        // Model sample m of channel c sits at [c, m] (channel-major) or [m, c]; the first
        // _contextSamples of them are the end of the previous chunk, kept in the state.
        for (var c = 0; c < _channels; c++)
        {
            for (var k = 0; k < _contextSamples; k++)
            {
                input[Index(c, k)] = context[(c * _contextSamples) + k];
            }
        }

        for (var s = 0; s < _chunkSamples; s++)
        {
            for (var c = 0; c < _channels; c++)
            {
                var v = (interleaved[(s * _channels) + c] * _scale[c]) + _offset[c];
                input[Index(c, _contextSamples + s)] = v;
            }
        }

        for (var c = 0; c < _channels; c++)
        {
            for (var k = 0; k < _contextSamples; k++)
            {
                context[(c * _contextSamples) + k] = input[Index(c, _chunkSamples + k)];
            }
        }
    }

    private int Index(int channel, int sample) => ChannelMajor ? (channel * _modelSamples) + sample : (sample * _channels) + channel;
}
