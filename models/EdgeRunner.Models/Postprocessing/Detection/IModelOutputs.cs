namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>
/// The float outputs of one inference, as a decoder reads them. <see cref="Inference.ModelSession"/> implements
/// it over its pinned output buffers; <see cref="ArrayModelOutputs"/> over plain arrays (tests, tools).
/// </summary>
public interface IModelOutputs
{
    /// <summary>Number of outputs.</summary>
    int OutputCount { get; }

    /// <summary>Name of output <paramref name="index"/> in model order.</summary>
    string OutputName(int index);

    /// <summary>Data of output <paramref name="index"/>, row-major.</summary>
    ReadOnlySpan<float> Output(int index);

    /// <summary>Shape of output <paramref name="index"/>.</summary>
    IReadOnlyList<long> OutputShape(int index);
}
