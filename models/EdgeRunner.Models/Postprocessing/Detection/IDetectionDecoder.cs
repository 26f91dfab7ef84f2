using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>
/// Turns a detector's raw outputs into boxes in frame pixels: decode, score threshold, top-K pre-selection,
/// class-aware non-maximum suppression, mapping back through the preprocessing. Implementations preallocate
/// everything for the output shapes they were built for; <see cref="Decode"/> allocates nothing. Not
/// thread-safe: one pipeline owns one decoder.
/// </summary>
public interface IDetectionDecoder
{
    /// <summary>The model family this decoder reads, as named to <see cref="DetectionDecoders.Create(string, DetectionDecoderOptions, int, int, IModelOutputs)"/>.</summary>
    string Kind { get; }

    /// <summary>The options in effect.</summary>
    DetectionDecoderOptions Options { get; }

    /// <summary>Number of classes the decoder reports (class ids are 0 … ClassCount-1; an SSD background column is not counted).</summary>
    int ClassCount { get; }

    /// <summary>
    /// Decodes <paramref name="outputs"/> (of a model fed through a preprocessing that returned <paramref name="mapping"/>
    /// for a <paramref name="frameWidth"/>×<paramref name="frameHeight"/> frame) into <paramref name="destination"/>.
    /// </summary>
    /// <returns>How many detections were written, best first; at most <see cref="DetectionDecoderOptions.MaxDetections"/> and the destination length.</returns>
    /// <exception cref="ArgumentException">An output's size differs from the shape the decoder was built for.</exception>
    int Decode(IModelOutputs outputs, in SourceMapping mapping, int frameWidth, int frameHeight, Span<Detection> destination);
}
