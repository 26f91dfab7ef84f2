using EdgeRunner.Models.Evaluation;

namespace EdgeRunner.UnitTests;

public sealed class EvaluationTests
{
    [Fact]
    public void Perfect_predictions_give_AP_1()
    {
        var evaluator = new DetectionEvaluator(classes: 2);
        evaluator.AddImage([new TruthBox(0, 0, 0, 10, 10), new TruthBox(1, 20, 20, 40, 40)], [new PredictedBox(0, 0.9f, 0, 0, 10, 10), new PredictedBox(1, 0.8f, 21, 21, 40, 40)]);

        var (map, perClass) = evaluator.Compute();

        Assert.Equal(1.0, map, 6);
        Assert.All(perClass, p => Assert.Equal(1.0, p.AveragePrecision, 6));
    }

    [Fact]
    public void AP_is_the_area_under_the_interpolated_precision_recall_curve()
    {
        // Two truths; predictions by score: TP, FP, TP → precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
        // Interpolated: recall 0→0.5 at precision 1, 0.5→1 at precision 2/3 → AP = 0.5 + 0.5 * 2/3.
        var evaluator = new DetectionEvaluator(classes: 1);
        evaluator.AddImage(
            [new TruthBox(0, 0, 0, 10, 10), new TruthBox(0, 50, 50, 60, 60)],
            [new PredictedBox(0, 0.9f, 0, 0, 10, 10), new PredictedBox(0, 0.8f, 100, 100, 110, 110), new PredictedBox(0, 0.7f, 50, 50, 60, 60)]);

        Assert.Equal(0.5 + (0.5 * 2 / 3.0), evaluator.Compute().MeanAveragePrecision, 6);
    }

    [Fact]
    public void A_duplicate_detection_of_the_same_object_is_a_false_positive_and_wrong_class_does_not_match()
    {
        var evaluator = new DetectionEvaluator(classes: 2);
        evaluator.AddImage(
            [new TruthBox(0, 0, 0, 10, 10)],
            [new PredictedBox(0, 0.9f, 0, 0, 10, 10), new PredictedBox(0, 0.8f, 0, 0, 10, 10), new PredictedBox(1, 0.95f, 0, 0, 10, 10)]);

        var (map, perClass) = evaluator.Compute();

        Assert.Equal(1.0, perClass[0].AveragePrecision, 6); // the duplicate ranks below the hit
        Assert.True(double.IsNaN(perClass[1].AveragePrecision)); // no class-1 truth: not averaged
        Assert.Equal(1.0, map, 6);
        Assert.Equal(0.0, DetectionEvaluator.Iou(new PredictedBox(0, 1, 0, 0, 10, 10), new TruthBox(0, 20, 20, 30, 30)));
        // Overlap 5x10 = 50; union 100 + 150 - 50 = 200.
        Assert.Equal(0.25, DetectionEvaluator.Iou(new PredictedBox(0, 1, 0, 0, 10, 10), new TruthBox(0, 5, 0, 20, 10)), 6);
    }

    [Fact]
    public void Sequence_metrics_count_accuracy_F1_and_time_to_detect()
    {
        var evaluator = new SequenceClassificationEvaluator(classes: 3, holdSteps: 2);
        // Stream a: normal for 2 steps, fault 1 from t=2; the model says 1 from t=4 on.
        int[] truth = [0, 0, 1, 1, 1, 1, 1];
        int[] predicted = [0, 0, 0, 0, 1, 1, 1];
        for (var i = 0; i < truth.Length; i++)
        {
            evaluator.Add("a", i, truth[i], predicted[i]);
        }

        Assert.Equal(5 / 7.0, evaluator.Accuracy(), 6);
        // Class 1: tp 3, fp 0, fn 2 → F1 = 6 / 8.
        Assert.Equal(0.75, evaluator.F1(1), 6);
        // Class 0: tp 2, fp 2 → F1 = 4 / 6.
        Assert.Equal(4 / 6.0, evaluator.F1(0), 6);
        Assert.True(double.IsNaN(evaluator.F1(2)));
        Assert.Equal((0.75 + (4 / 6.0)) / 2, evaluator.MacroF1(), 6);
        Assert.Equal([(1, 2.0)], evaluator.Detections);
        Assert.Equal(0, evaluator.MissedFaults);
    }

    [Fact]
    public void A_fault_that_ends_undetected_is_missed()
    {
        var evaluator = new SequenceClassificationEvaluator(classes: 2, holdSteps: 3);
        int[] truth = [1, 1, 0, 0];
        int[] predicted = [1, 0, 0, 0];
        for (var i = 0; i < truth.Length; i++)
        {
            evaluator.Add("a", i, truth[i], predicted[i]);
        }

        Assert.Equal(1, evaluator.MissedFaults);
        Assert.Empty(evaluator.Detections);
    }
}
