using EdgeRunner.Models.Inference;

namespace EdgeRunner.Models.Sequence;

/// <summary>A tensor as the model declares it: name and dimensions (≤ 0 for a symbolic/dynamic dimension).</summary>
public readonly record struct TensorDeclaration(string Name, IReadOnlyList<int> Dimensions);

/// <summary>A state pair found by <see cref="StatePairInference"/>, with the rule that matched it.</summary>
public sealed record InferredStatePair(string Input, string Output, int BatchAxis, string Rule);

/// <summary>
/// Finds the recurrent state pairs of a model that has no manifest saying which output feeds back into
/// which input: the naming conventions of the common exporters are tried first (<c>h0</c>→<c>hn</c>,
/// <c>state</c>→<c>stateN</c>, <c>*_cache</c>→<c>*_cache_out</c>, <c>initial_h</c>→<c>Y_h</c>,
/// <c>past_*</c>→<c>present_*</c>, <c>*_in</c>→<c>*_out</c>), then a unique output of the same shape.
/// The batch axis is the state input's one dynamic dimension. Anything ambiguous is an error that
/// names the tensor, never a guess.
/// </summary>
public static class StatePairInference
{
    /// <summary>
    /// Pairs every input in <paramref name="stateInputs"/> with one of <paramref name="outputs"/>.
    /// Throws <see cref="ModelLoadException"/> naming an input no output matches, or whose batch axis cannot be told.
    /// </summary>
    /// <param name="stateInputs">Inputs that are neither the stream input nor constants.</param>
    /// <param name="outputs">All outputs of the model.</param>
    /// <param name="excludedOutputs">Outputs that cannot be state (the result output).</param>
    /// <param name="where">Model description for messages.</param>
    public static IReadOnlyList<InferredStatePair> Infer(
        IReadOnlyList<TensorDeclaration> stateInputs,
        IReadOnlyList<TensorDeclaration> outputs,
        IReadOnlyCollection<string> excludedOutputs,
        string where)
    {
        ArgumentNullException.ThrowIfNull(stateInputs);
        ArgumentNullException.ThrowIfNull(outputs);
        ArgumentNullException.ThrowIfNull(excludedOutputs);
        var claimed = new HashSet<string>(excludedOutputs, StringComparer.OrdinalIgnoreCase);
        var pairs = new List<InferredStatePair>();
        var unmatched = new List<TensorDeclaration>();

        // Names first, for every input, so that a shape fallback never takes an output a name would have claimed.
        foreach (var input in stateInputs)
        {
            if (MatchByName(input, outputs, claimed, where) is { } pair)
            {
                claimed.Add(pair.Output);
                pairs.Add(pair);
            }
            else
            {
                unmatched.Add(input);
            }
        }

        foreach (var input in unmatched)
        {
            var sameShape = outputs.Where(o => !claimed.Contains(o.Name) && ShapesCompatible(input, o) && HasFixedShapeInCommon(input, o)).ToList();
            if (sameShape.Count != 1)
            {
                var why = sameShape.Count == 0
                    ? "no output matches it by name or shape"
                    : $"several outputs have its shape ({string.Join(", ", sameShape.Select(o => o.Name))})";
                throw new ModelLoadException(
                    $"{where}: input '{input.Name}' [{Dims(input)}] looks like recurrent state but {why}; outputs: {string.Join(", ", outputs.Select(o => $"{o.Name} [{Dims(o)}]"))}. " +
                    "Name the state pairs in the model's manifest ('state'), or give the input a constant value.");
            }

            claimed.Add(sameShape[0].Name);
            pairs.Add(new InferredStatePair(input.Name, sameShape[0].Name, BatchAxis(input, where), "same shape"));
        }

        // In input order, as the model declares them.
        return [.. stateInputs.Select(i => pairs.First(p => p.Input == i.Name))];
    }

    /// <summary>
    /// The output that carries <paramref name="input"/>'s next value by the naming conventions (and a
    /// compatible shape), with the batch axis, or null. Throws <see cref="ModelLoadException"/> when the
    /// input's batch axis cannot be told.
    /// </summary>
    public static InferredStatePair? MatchByName(TensorDeclaration input, IReadOnlyList<TensorDeclaration> outputs, IReadOnlyCollection<string> excludedOutputs, string where)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        ArgumentNullException.ThrowIfNull(excludedOutputs);
        foreach (var (name, rule) in CandidateNames(input.Name))
        {
            foreach (var output in outputs)
            {
                if (string.Equals(output.Name, name, StringComparison.OrdinalIgnoreCase)
                    && !excludedOutputs.Contains(output.Name, StringComparer.OrdinalIgnoreCase)
                    && ShapesCompatible(input, output))
                {
                    return new InferredStatePair(input.Name, output.Name, BatchAxis(input, where), rule);
                }
            }
        }

        return null;
    }

    /// <summary>Output names that conventionally carry input <paramref name="input"/>'s next value, with the rule's description.</summary>
    public static IEnumerable<(string Name, string Rule)> CandidateNames(string input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.EndsWith('0') && input.Length > 1)
        {
            var stem = input[..^1];
            yield return (stem + "n", "x0 → xn");
            yield return (stem + "N", "x0 → xN");
            yield return (stem + "_n", "x0 → x_n");
            yield return (stem + "1", "x0 → x1");
        }

        foreach (var suffix in (string[])["N", "n", "_out", "out", "_new", "_next", "_o", "_output"])
        {
            yield return (input + suffix, $"x → x{suffix}");
        }

        foreach (var prefix in (string[])["next_", "new_", "out_"])
        {
            yield return (prefix + input, $"x → {prefix}x");
        }

        foreach (var (from, to) in (IEnumerable<(string, string)>)[("_in", "_out"), ("_input", "_output"), ("_prev", "_next"), ("_past", "_present")])
        {
            if (input.EndsWith(from, StringComparison.OrdinalIgnoreCase))
            {
                yield return (input[..^from.Length] + to, $"x{from} → x{to}");
            }
        }

        foreach (var (from, to) in (IEnumerable<(string, string)>)[("in_", "out_"), ("input_", "output_"), ("past_", "present_"), ("prev_", "next_"), ("initial_", "Y_")])
        {
            if (input.StartsWith(from, StringComparison.OrdinalIgnoreCase))
            {
                yield return (to + input[from.Length..], $"{from}x → {to}x");
            }
        }
    }

    private static int BatchAxis(TensorDeclaration input, string where)
    {
        var dynamic = Enumerable.Range(0, input.Dimensions.Count).Where(a => input.Dimensions[a] <= 0).ToList();
        if (dynamic.Count == 1)
        {
            return dynamic[0];
        }

        if (dynamic.Count == 0)
        {
            // A fixed-shape state: the model takes one stream per run. The batch axis is the one of size 1, if any.
            var ones = Enumerable.Range(0, input.Dimensions.Count).Where(a => input.Dimensions[a] == 1).ToList();
            return ones.Count > 0 ? ones[0] : 0;
        }

        throw new ModelLoadException(
            $"{where}: state input '{input.Name}' [{Dims(input)}] has {dynamic.Count} dynamic dimensions; its batch axis cannot be told. Name it in the manifest ('state': batch_axis).");
    }

    private static bool ShapesCompatible(TensorDeclaration input, TensorDeclaration output) =>
        output.Dimensions.Count == input.Dimensions.Count
        && input.Dimensions.Zip(output.Dimensions).All(d => d.First <= 0 || d.Second <= 0 || d.First == d.Second);

    // The shape fallback needs some evidence beyond rank: at least one fixed dimension that agrees.
    private static bool HasFixedShapeInCommon(TensorDeclaration input, TensorDeclaration output) =>
        input.Dimensions.Zip(output.Dimensions).Any(d => d.First > 0 && d.First == d.Second);

    private static string Dims(TensorDeclaration t) => Dims(t.Dimensions);

    /// <summary>Dimensions as "1,?,48" (? for a dynamic one), for messages.</summary>
    internal static string Dims(IEnumerable<int> dims) => string.Join(",", dims.Select(d => d > 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : "?"));
}
