using System.Globalization;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Models.Sequence;

/// <summary>How one step's samples are laid out in a sequence model's input (manifest <c>stream.layout</c>).</summary>
public enum StreamLayout
{
    /// <summary>Not declared: guessed from the input's last two dimensions (<c>[samples, channels]</c> when they read so, else <c>[channels, samples]</c>).</summary>
    Auto,

    /// <summary><c>feature_time</c>: channel-major, <c>[channels, samples]</c> (all of channel 0's samples, then channel 1's, …).</summary>
    FeatureTime,

    /// <summary><c>time_feature</c>: sample-major, <c>[samples, channels]</c> (the channels of sample 0, then of sample 1, …), as sources interleave them.</summary>
    TimeFeature,

    /// <summary>
    /// <c>complex_interleaved</c>: two channels (real, imaginary) fed as pairs, e.g. a <c>[1, 257, 1, 2]</c> input
    /// of 257 complex STFT bins: sample-major like <see cref="TimeFeature"/>, with the pair as the input's last dimension.
    /// </summary>
    ComplexInterleaved,
}

/// <summary>Parsing, naming and checking <see cref="StreamLayout"/>s against a model's input shape.</summary>
public static class StreamLayouts
{
    /// <summary>The manifest's names, in <see cref="StreamLayout"/> order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["auto", "feature_time", "time_feature", "complex_interleaved"];

    /// <summary>The manifest's name of <paramref name="layout"/>.</summary>
    public static string Name(StreamLayout layout) => Names[(int)layout];

    /// <summary>A manifest's <c>stream.layout</c> (empty: <see cref="StreamLayout.Auto"/>); throws <see cref="ManifestException"/> naming the valid values.</summary>
    public static StreamLayout Parse(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return StreamLayout.Auto;
        }

        for (var i = 0; i < Names.Count; i++)
        {
            if (string.Equals(Names[i], name, StringComparison.OrdinalIgnoreCase))
            {
                return (StreamLayout)i;
            }
        }

        throw new ManifestException($"stream.layout '{name}' is not one of {string.Join(", ", Names)}");
    }

    /// <summary>
    /// The layout <paramref name="spec"/> feeds an input whose one-step chunk has shape <paramref name="chunkShape"/>
    /// (without batch and steps axes): the declared one when the shape allows it, else <see cref="ManifestException"/>
    /// naming both; <see cref="StreamLayout.Auto"/> resolves to today's guess from the last two dimensions. A flat
    /// chunk (one dimension above 1) says nothing about the order, so any declared layout fits it.
    /// </summary>
    public static StreamLayout Resolve(SequenceInputSpec spec, IReadOnlyList<long> chunkShape)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(chunkShape);
        var channels = spec.Channels;
        var samples = spec.ModelSamples;
        if (spec.Layout == StreamLayout.Auto)
        {
            // The guess made before layouts could be declared: [samples, channels] only when the last two dims read so.
            return chunkShape.Count >= 2 && samples != channels && chunkShape[^2] == samples && chunkShape[^1] == channels
                ? StreamLayout.TimeFeature
                : StreamLayout.FeatureTime;
        }

        // Dimensions of 1 (batch-like or steps-like leftovers, [1, 257, 1, 2]) carry no order: compare the rest.
        var squeezed = chunkShape.Where(d => d != 1).ToList();
        var shapeText = $"[{string.Join(", ", chunkShape.Select(d => d.ToString(CultureInfo.InvariantCulture)))}]";
        if (squeezed.Count <= 1)
        {
            return spec.Layout == StreamLayout.ComplexInterleaved && !(channels == 2 && chunkShape.Count > 0 && chunkShape[^1] == 2)
                ? throw new ManifestException($"stream.layout 'complex_interleaved' takes 2 channels (real, imaginary) as the input's last dimension of 2; the stream has {channels} channels and the input's step is {shapeText}")
                : spec.Layout;
        }

        long[] Squeeze(params long[] dims) => [.. dims.Where(d => d != 1)];
        switch (spec.Layout)
        {
            case StreamLayout.FeatureTime when squeezed.SequenceEqual(Squeeze(channels, samples)):
            case StreamLayout.TimeFeature when squeezed.SequenceEqual(Squeeze(samples, channels)):
                return spec.Layout;
            case StreamLayout.ComplexInterleaved when channels == 2 && chunkShape[^1] == 2 && squeezed.SequenceEqual(Squeeze(samples, 2)):
                return spec.Layout;
        }

        var expected = spec.Layout switch
        {
            StreamLayout.FeatureTime => $"[{channels} channels, {samples} samples]",
            StreamLayout.TimeFeature => $"[{samples} samples, {channels} channels]",
            _ => $"[{samples} samples, 2 (real, imaginary)] with 2 channels (the stream has {channels})",
        };
        throw new ManifestException($"stream.layout '{Name(spec.Layout)}' reads the input's step as {expected}, but it is {shapeText} (dimensions of 1 aside)");
    }

    /// <summary>For logs and <c>inspect</c>: the layout in effect and where it came from.</summary>
    public static string Describe(StreamLayout layout, bool guessed) =>
        (layout is StreamLayout.FeatureTime ? "feature_time [channels, samples]" : layout is StreamLayout.TimeFeature ? "time_feature [samples, channels]" : "complex_interleaved [samples, (real, imaginary)]")
        + (guessed ? " (guessed from the input's shape; declare stream.layout to be sure)" : " (declared)");
}
