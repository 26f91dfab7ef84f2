using EdgeRunner.Models.Manifests;

namespace EdgeRunner.Models.Postprocessing.Sequence;

/// <summary>How a sequence model's per-step output is read.</summary>
/// <param name="Task">Classification (probabilities per label), score (a value per step), forecast (the next chunk; the prediction error is the score) or reconstruction (the input chunk; the reconstruction error is the score).</param>
/// <param name="Trigger">Raise/clear thresholds on the score, or <see langword="null"/> for none.</param>
public sealed record SequenceOutputSpec(ModelTask Task, HysteresisSettings? Trigger)
{
    /// <summary>Class probabilities per step, no trigger.</summary>
    public static SequenceOutputSpec Classification { get; } = new(ModelTask.SequenceClassification, null);

    /// <summary>
    /// Whether the output is logits that need a softmax (manifest <c>postprocess.softmax</c>): applied to each
    /// step's output before it is read, so <c>probabilities</c> and <c>score</c> are probabilities.
    /// Classification and score models only.
    /// </summary>
    public bool Softmax { get; init; }

    /// <summary>From a manifest's task and postprocess section.</summary>
    public static SequenceOutputSpec From(ModelTask task, ManifestPostprocess? post) =>
        new(task, post?.Threshold is { } threshold
            ? new HysteresisSettings(threshold, post.ClearThreshold ?? threshold, post.RaiseSteps, post.ClearSteps)
            : null)
        {
            Softmax = post?.Softmax ?? false,
        };
}

/// <summary>Thresholds of a <see cref="HysteresisTrigger"/>.</summary>
/// <param name="Threshold">Raise at or above this score.</param>
/// <param name="ClearThreshold">Clear below this score.</param>
/// <param name="RaiseSteps">Consecutive steps at or above the threshold to raise.</param>
/// <param name="ClearSteps">Consecutive steps below the clear threshold to clear.</param>
public sealed record HysteresisSettings(double Threshold, double ClearThreshold, int RaiseSteps, int ClearSteps);

/// <summary>The arithmetic of reading a sequence model's output: finiteness, the top class, the error scores. Allocation-free.</summary>
public static class SequenceScores
{
    /// <summary>Whether every value is finite (a model fed extreme input can overflow).</summary>
    public static bool IsAllFinite(ReadOnlySpan<float> values)
    {
        foreach (var v in values)
        {
            if (!float.IsFinite(v))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Mean square difference of two equally long spans (the prediction or reconstruction error).</summary>
    public static double MeanSquareError(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double sum = 0;
        for (var i = 0; i < a.Length; i++)
        {
            double d = a[i] - b[i];
            sum += d * d;
        }

        return sum / a.Length;
    }

    /// <summary>Turns logits into probabilities in place (max-subtracted, so large logits do not overflow); values must be finite.</summary>
    public static void SoftmaxInPlace(Span<float> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        var max = values[TopIndex(values)];
        var sum = 0f;
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = MathF.Exp(values[i] - max);
            sum += values[i];
        }

        for (var i = 0; i < values.Length; i++)
        {
            values[i] /= sum;
        }
    }

    /// <summary>Index of the largest value (the first of equal ones).</summary>
    public static int TopIndex(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>Labels of a model without any: <c>score</c> for a single score, else the output indices.</summary>
    public static string[] DefaultLabels(ModelTask task, int values) => task switch
    {
        ModelTask.SequenceScore when values == 1 => ["score"],
        _ => [.. Enumerable.Range(0, values).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))],
    };
}
