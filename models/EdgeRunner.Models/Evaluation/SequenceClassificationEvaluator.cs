namespace EdgeRunner.Models.Evaluation;

/// <summary>
/// Per-step classification figures for streams: accuracy, per-class precision/recall/F1, macro F1,
/// the confusion matrix, and time to detect (from the step where the true class changes to a fault
/// until the prediction first equals it and stays so for <c>holdSteps</c> steps).
/// </summary>
public sealed class SequenceClassificationEvaluator
{
    private readonly int _classes;
    private readonly int _holdSteps;
    private readonly long[,] _confusion;
    private readonly Dictionary<string, StreamTracker> _streams = new(StringComparer.Ordinal);
    private readonly List<(int ClassId, double Seconds)> _detections = [];
    private int _missed;

    /// <summary>Creates the evaluator; class 0 is "normal" and is not timed.</summary>
    public SequenceClassificationEvaluator(int classes, int holdSteps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(holdSteps, 1);
        _classes = classes;
        _holdSteps = holdSteps;
        _confusion = new long[classes, classes];
    }

    /// <summary>Counts (truth, predicted) by class.</summary>
    public long[,] Confusion => _confusion;

    /// <summary>Faults whose prediction never settled on the fault class before it ended.</summary>
    public int MissedFaults => _missed;

    /// <summary>Seconds from fault start to a settled detection, per fault occurrence.</summary>
    public IReadOnlyList<(int ClassId, double Seconds)> Detections => _detections;

    /// <summary>Adds one step of one stream at time <paramref name="seconds"/>.</summary>
    public void Add(string stream, double seconds, int truth, int predicted)
    {
        _confusion[truth, predicted]++;
        if (!_streams.TryGetValue(stream, out var tracker))
        {
            tracker = new StreamTracker();
            _streams[stream] = tracker;
        }

        if (truth != tracker.Truth)
        {
            if (tracker.Truth > 0 && !tracker.Detected)
            {
                _missed++;
            }

            tracker.Truth = truth;
            tracker.Start = seconds;
            tracker.Detected = false;
            tracker.Run = 0;
        }

        if (truth > 0 && !tracker.Detected)
        {
            tracker.Run = predicted == truth ? tracker.Run + 1 : 0;
            if (tracker.Run == 1)
            {
                tracker.RunStart = seconds;
            }

            if (tracker.Run >= _holdSteps)
            {
                tracker.Detected = true;
                _detections.Add((truth, tracker.RunStart - tracker.Start));
            }
        }
    }

    /// <summary>Fraction of steps predicted correctly.</summary>
    public double Accuracy()
    {
        long correct = 0, total = 0;
        for (var t = 0; t < _classes; t++)
        {
            for (var p = 0; p < _classes; p++)
            {
                total += _confusion[t, p];
                if (t == p)
                {
                    correct += _confusion[t, p];
                }
            }
        }

        return total == 0 ? double.NaN : (double)correct / total;
    }

    /// <summary>F1 of class <paramref name="c"/> (NaN when it never occurs nor is predicted).</summary>
    public double F1(int c)
    {
        long tp = _confusion[c, c], fp = 0, fn = 0;
        for (var k = 0; k < _classes; k++)
        {
            if (k != c)
            {
                fp += _confusion[k, c];
                fn += _confusion[c, k];
            }
        }

        return tp + fp + fn == 0 ? double.NaN : 2.0 * tp / ((2.0 * tp) + fp + fn);
    }

    /// <summary>Mean F1 over classes that occur or are predicted.</summary>
    public double MacroF1() => Enumerable.Range(0, _classes).Select(F1).Where(f => !double.IsNaN(f)).DefaultIfEmpty(double.NaN).Average();

    private sealed class StreamTracker
    {
        public int Truth { get; set; } = -1;

        public double Start { get; set; }

        public bool Detected { get; set; }

        public int Run { get; set; }

        public double RunStart { get; set; }
    }
}
