namespace EdgeRunner.Models.Postprocessing;

/// <summary>One classification: class id, its label and its score (a probability when softmax is applied).</summary>
public readonly record struct Classification(int ClassId, string Label, float Score);

/// <summary>
/// Top-k over a model's class scores, with optional softmax. Allocates nothing: results go into a
/// caller-owned span and labels are the preloaded strings of the <see cref="LabelSet"/>.
/// </summary>
public sealed class ClassificationDecoder
{
    private readonly LabelSet _labels;

    /// <summary>Creates the decoder.</summary>
    public ClassificationDecoder(LabelSet labels, int topK, bool applySoftmax, float minScore = 0f)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        _labels = labels;
        TopK = topK;
        ApplySoftmax = applySoftmax;
        MinScore = minScore;
    }

    /// <summary>How many classes are reported at most.</summary>
    public int TopK { get; }

    /// <summary>Whether raw scores are turned into probabilities.</summary>
    public bool ApplySoftmax { get; }

    /// <summary>Classes scoring below this are not reported.</summary>
    public float MinScore { get; }

    /// <summary>Writes up to <see cref="TopK"/> classes, best first, into <paramref name="destination"/> and returns how many.</summary>
    public int Decode(ReadOnlySpan<float> scores, Span<Classification> destination)
    {
        var k = Math.Min(Math.Min(TopK, scores.Length), destination.Length);
        if (k == 0)
        {
            return 0;
        }

        // Insertion into a small sorted window: O(n·k) with k ≤ 10 beats a full sort and allocates nothing.
        Span<int> best = stackalloc int[k];
        var filled = 0;
        for (var i = 0; i < scores.Length; i++)
        {
            var s = scores[i];
            if (filled == k && s <= scores[best[k - 1]])
            {
                continue;
            }

            var pos = filled < k ? filled++ : k - 1;
            while (pos > 0 && scores[best[pos - 1]] < s)
            {
                best[pos] = best[pos - 1];
                pos--;
            }

            best[pos] = i;
        }

        float max = 0, sum = 1;
        if (ApplySoftmax)
        {
            max = scores[best[0]];
            sum = 0;
            for (var i = 0; i < scores.Length; i++)
            {
                sum += MathF.Exp(scores[i] - max);
            }
        }

        var written = 0;
        for (var j = 0; j < filled; j++)
        {
            var id = best[j];
            var score = ApplySoftmax ? MathF.Exp(scores[id] - max) / sum : scores[id];
            if (score < MinScore)
            {
                break;
            }

            destination[written++] = new Classification(id, _labels[id], score);
        }

        return written;
    }
}
