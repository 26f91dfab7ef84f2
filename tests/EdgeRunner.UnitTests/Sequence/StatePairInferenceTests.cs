using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Sequence;

namespace EdgeRunner.UnitTests.Sequence;

public sealed class StatePairInferenceTests
{
    private static TensorDeclaration T(string name, params int[] dims) => new(name, dims);

    [Fact]
    public void Exporter_naming_conventions_pair_inputs_with_their_outputs()
    {
        var pairs = StatePairInference.Infer(
            [T("h0", 1, -1, 48), T("c0", 1, -1, 48), T("state", 2, -1, 128), T("conv_cache", -1, 8, 3), T("initial_h", 1, -1, 4), T("past_key", -1, 4, 16)],
            [T("probs", -1, 4), T("hn", 1, -1, 48), T("cn", 1, -1, 48), T("stateN", 2, -1, 128), T("conv_cache_out", -1, 8, 3), T("Y_h", 1, -1, 4), T("present_key", -1, 4, 16)],
            ["probs"],
            "m");
        Assert.Equal(
            [("h0", "hn", 1), ("c0", "cn", 1), ("state", "stateN", 1), ("conv_cache", "conv_cache_out", 0), ("initial_h", "Y_h", 1), ("past_key", "present_key", 0)],
            pairs.Select(p => (p.Input, p.Output, p.BatchAxis)));
    }

    [Fact]
    public void An_unconventionally_named_state_pairs_with_the_only_output_of_its_shape()
    {
        var pairs = StatePairInference.Infer([T("memory", 1, -1, 32)], [T("score", -1, 1), T("memory_next_step", 1, -1, 32)], ["score"], "m");
        var pair = Assert.Single(pairs);
        Assert.Equal(("memory", "memory_next_step", "same shape"), (pair.Input, pair.Output, pair.Rule));
    }

    [Fact]
    public void The_result_output_is_never_taken_as_state_even_when_the_shape_fits()
    {
        var error = Assert.Throws<ModelLoadException>(() => StatePairInference.Infer([T("memory", -1, 4)], [T("scores", -1, 4)], ["scores"], "Model 'm' (m.onnx)"));
        Assert.Contains("'memory' [?,4]", error.Message, StringComparison.Ordinal);
        Assert.Contains("no output matches it", error.Message, StringComparison.Ordinal);
        Assert.StartsWith("Model 'm' (m.onnx)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_outputs_of_the_same_shape_are_ambiguous_and_both_are_named()
    {
        var error = Assert.Throws<ModelLoadException>(() => StatePairInference.Infer([T("memory", 1, -1, 8)], [T("y", -1, 1), T("a", 1, -1, 8), T("b", 1, -1, 8)], ["y"], "m"));
        Assert.Contains("several outputs have its shape (a, b)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_name_match_wins_over_an_earlier_shape_match()
    {
        // "a" has no conventional partner; "h0" names "hn". The shape fallback for "a" must not steal "hn".
        var pairs = StatePairInference.Infer([T("a", 1, -1, 8), T("h0", 1, -1, 8)], [T("y", -1, 1), T("hn", 1, -1, 8), T("a_state", 1, -1, 8)], ["y"], "m");
        Assert.Equal([("a", "a_state"), ("h0", "hn")], pairs.Select(p => (p.Input, p.Output)));
    }

    [Fact]
    public void A_state_with_several_dynamic_dimensions_needs_its_batch_axis_named()
    {
        var error = Assert.Throws<ModelLoadException>(() => StatePairInference.Infer([T("state", -1, -1, 8)], [T("y", -1), T("stateN", -1, -1, 8)], ["y"], "m"));
        Assert.Contains("batch axis cannot be told", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_fixed_shape_state_takes_its_size_one_axis_as_the_batch_axis()
    {
        var pair = Assert.Single(StatePairInference.Infer([T("state", 2, 1, 64)], [T("y", 1, 1), T("stateN", 2, 1, 64)], ["y"], "m"));
        Assert.Equal(1, pair.BatchAxis);
    }
}
