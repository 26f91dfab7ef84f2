using EdgeRunner.Models.Postprocessing;

namespace EdgeRunner.UnitTests;

public sealed class ClassificationDecoderTests
{
    private static LabelSet Labels(params string[] names)
    {
        var path = Path.GetTempFileName();
        File.WriteAllLines(path, names);
        try
        {
            return LabelSet.Load(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Top_k_is_sorted_best_first_with_labels()
    {
        var decoder = new ClassificationDecoder(Labels("a", "b", "c", "d", "e"), topK: 3, applySoftmax: false);
        var results = new Classification[3];

        var n = decoder.Decode([0.1f, 0.9f, 0.3f, 0.7f, 0.2f], results);

        Assert.Equal(3, n);
        Assert.Equal([(1, "b"), (3, "d"), (2, "c")], results.Select(r => (r.ClassId, r.Label)));
        Assert.Equal(0.9f, results[0].Score);
    }

    [Fact]
    public void Softmax_turns_logits_into_probabilities()
    {
        var decoder = new ClassificationDecoder(LabelSet.Numbered(3), topK: 3, applySoftmax: true);
        var results = new Classification[3];

        decoder.Decode([2f, 1f, 0f], results);

        var expected = MathF.Exp(2) / (MathF.Exp(2) + MathF.Exp(1) + 1);
        Assert.Equal(expected, results[0].Score, 5);
        Assert.Equal(1f, results.Sum(r => r.Score), 5);
        Assert.Equal("class_0", results[0].Label);
    }

    [Fact]
    public void Min_score_cuts_the_list()
    {
        var decoder = new ClassificationDecoder(LabelSet.Numbered(4), topK: 4, applySoftmax: false, minScore: 0.5f);
        var results = new Classification[4];

        Assert.Equal(2, decoder.Decode([0.6f, 0.1f, 0.8f, 0.4f], results));
        Assert.Equal([2, 0], results[..2].Select(r => r.ClassId));
    }

    [Fact]
    public void Decoding_allocates_nothing()
    {
        var decoder = new ClassificationDecoder(LabelSet.Numbered(1000), topK: 5, applySoftmax: true);
        var scores = Enumerable.Range(0, 1000).Select(i => (float)Math.Sin(i)).ToArray();
        var results = new Classification[5];
        decoder.Decode(scores, results);

        AllocationAssert.SteadyStateIsZero(() => decoder.Decode(scores, results));
    }

    [Theory]
    [InlineData("n01443537 goldfish, Carassius auratus", "goldfish")]
    [InlineData("n02123045 tabby, tabby cat", "tabby")]
    [InlineData("n03617480 kimono", "kimono")]
    [InlineData("person", "person")]
    [InlineData("  traffic light ", "traffic light")]
    public void Label_lines_are_parsed(string line, string expected) => Assert.Equal(expected, LabelSet.Parse(line));
}
