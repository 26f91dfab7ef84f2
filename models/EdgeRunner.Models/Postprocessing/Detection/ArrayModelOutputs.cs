namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>
/// <see cref="IModelOutputs"/> backed by caller-owned arrays: hand-built tensors in tests and offline tools.
/// The arrays are referenced, not copied, so a test can change values between decodes.
/// </summary>
public sealed class ArrayModelOutputs : IModelOutputs
{
    private readonly List<string> _names = [];
    private readonly List<float[]> _data = [];
    private readonly List<long[]> _shapes = [];

    /// <inheritdoc />
    public int OutputCount => _names.Count;

    /// <summary>Appends an output; <paramref name="data"/> must hold exactly the product of <paramref name="shape"/> floats.</summary>
    /// <returns>This instance, for chaining.</returns>
    public ArrayModelOutputs Add(string name, float[] data, params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        long size = 1;
        foreach (var d in shape)
        {
            size = checked(size * d);
        }

        if (size != data.Length)
        {
            throw new ArgumentException($"Output '{name}': shape [{string.Join(",", shape)}] needs {size} floats, {data.Length} given.", nameof(data));
        }

        _names.Add(name);
        _data.Add(data);
        _shapes.Add([.. shape]);
        return this;
    }

    /// <inheritdoc />
    public string OutputName(int index) => _names[index];

    /// <inheritdoc />
    public ReadOnlySpan<float> Output(int index) => _data[index];

    /// <inheritdoc />
    public IReadOnlyList<long> OutputShape(int index) => _shapes[index];
}
