namespace EdgeRunner.Service.Publishing;

/// <summary>
/// The pipelines' <see cref="IResultPublisher"/>: hands every result to every registered
/// <see cref="IResultOutput"/>, in registration order. An output's refusal touches that output alone.
/// </summary>
public sealed class CompositeResultPublisher : IResultPublisher
{
    // An array, not the enumerable the container hands over: called per frame and per step, so no enumerator allocation.
    private readonly IResultOutput[] _outputs;

    /// <summary>Creates the composite over <paramref name="outputs"/> (at least one).</summary>
    public CompositeResultPublisher(IEnumerable<IResultOutput> outputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        _outputs = [.. outputs];
        if (_outputs.Length == 0)
        {
            throw new ArgumentException("at least one result output is needed", nameof(outputs));
        }
    }

    /// <summary>The outputs results go to.</summary>
    public IReadOnlyList<IResultOutput> Outputs => _outputs;

    /// <inheritdoc />
    /// <returns>True when at least one output took the message.</returns>
    public bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain = false)
    {
        var taken = false;
        foreach (var output in _outputs)
        {
            taken |= output.TryPublish(topic, payload, retain);
        }

        return taken;
    }
}
