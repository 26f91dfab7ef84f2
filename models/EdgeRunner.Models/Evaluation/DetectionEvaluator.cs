namespace EdgeRunner.Models.Evaluation;

/// <summary>A ground-truth box: class and corners in pixels.</summary>
public readonly record struct TruthBox(int ClassId, float X1, float Y1, float X2, float Y2);

/// <summary>A predicted box with its score.</summary>
public readonly record struct PredictedBox(int ClassId, float Score, float X1, float Y1, float X2, float Y2);

/// <summary>Average precision of one class.</summary>
public readonly record struct ClassAveragePrecision(int ClassId, int TruthCount, int PredictionCount, double AveragePrecision);

/// <summary>
/// Accumulates predictions and ground truth over many images and computes mAP at one IoU threshold
/// the way PASCAL VOC (2010+) and COCO's AP50 do: per class, predictions sorted by score, greedy
/// matching to the best-overlapping unmatched truth box of the same image, all-point interpolated
/// precision–recall area; the mean is over classes that have ground truth.
/// </summary>
public sealed class DetectionEvaluator
{
    private readonly double _iouThreshold;
    private readonly int _classes;
    private readonly List<(int Image, PredictedBox Box)> _predictions = [];
    private readonly List<List<TruthBox>> _truth = [];

    /// <summary>Creates an evaluator for <paramref name="classes"/> classes.</summary>
    public DetectionEvaluator(int classes, double iouThreshold = 0.5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 1);
        _classes = classes;
        _iouThreshold = iouThreshold;
    }

    /// <summary>Images added so far.</summary>
    public int Images => _truth.Count;

    /// <summary>Adds one image's ground truth and predictions.</summary>
    public void AddImage(ReadOnlySpan<TruthBox> truth, ReadOnlySpan<PredictedBox> predictions)
    {
        var image = _truth.Count;
        _truth.Add([.. truth]);
        foreach (var p in predictions)
        {
            _predictions.Add((image, p));
        }
    }

    /// <summary>AP per class and their mean over classes with ground truth.</summary>
    public (double MeanAveragePrecision, IReadOnlyList<ClassAveragePrecision> PerClass) Compute()
    {
        var perClass = new List<ClassAveragePrecision>();
        for (var c = 0; c < _classes; c++)
        {
            var truthCount = _truth.Sum(t => t.Count(b => b.ClassId == c));
            var predictions = _predictions.Where(p => p.Box.ClassId == c).OrderByDescending(p => p.Box.Score).ToList();
            var matched = _truth.Select(t => new bool[t.Count]).ToList();
            var tp = new double[predictions.Count];
            for (var i = 0; i < predictions.Count; i++)
            {
                var (image, box) = predictions[i];
                var best = -1;
                var bestIou = _iouThreshold;
                for (var j = 0; j < _truth[image].Count; j++)
                {
                    var t = _truth[image][j];
                    if (t.ClassId != c || matched[image][j])
                    {
                        continue;
                    }

                    var iou = Iou(box, t);
                    if (iou >= bestIou)
                    {
                        bestIou = iou;
                        best = j;
                    }
                }

                if (best >= 0)
                {
                    matched[image][best] = true;
                    tp[i] = 1;
                }
            }

            perClass.Add(new ClassAveragePrecision(c, truthCount, predictions.Count, truthCount == 0 ? double.NaN : AllPointAp(tp, truthCount)));
        }

        var withTruth = perClass.Where(p => p.TruthCount > 0).ToList();
        return (withTruth.Count == 0 ? double.NaN : withTruth.Average(p => p.AveragePrecision), perClass);
    }

    /// <summary>Intersection over union of two boxes.</summary>
    public static double Iou(PredictedBox a, TruthBox b)
    {
        var ix = Math.Max(0, Math.Min(a.X2, b.X2) - Math.Max(a.X1, b.X1));
        var iy = Math.Max(0, Math.Min(a.Y2, b.Y2) - Math.Max(a.Y1, b.Y1));
        var inter = (double)ix * iy;
        var union = ((double)(a.X2 - a.X1) * (a.Y2 - a.Y1)) + ((double)(b.X2 - b.X1) * (b.Y2 - b.Y1)) - inter;
        return union <= 0 ? 0 : inter / union;
    }

    private static double AllPointAp(double[] truePositives, int truthCount)
    {
        var n = truePositives.Length;
        var recall = new double[n + 2];
        var precision = new double[n + 2];
        double cumulativeTp = 0;
        for (var i = 0; i < n; i++)
        {
            cumulativeTp += truePositives[i];
            recall[i + 1] = cumulativeTp / truthCount;
            precision[i + 1] = cumulativeTp / (i + 1);
        }

        recall[n + 1] = recall[n];
        precision[n + 1] = 0;
        // Precision envelope: make precision monotonically decreasing from the right.
        for (var i = n; i >= 0; i--)
        {
            precision[i] = Math.Max(precision[i], precision[i + 1]);
        }

        double ap = 0;
        for (var i = 1; i <= n + 1; i++)
        {
            ap += (recall[i] - recall[i - 1]) * precision[i];
        }

        return ap;
    }
}
