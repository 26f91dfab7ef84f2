namespace EdgeRunner.Models.Postprocessing;

/// <summary>What a model's output means.</summary>
public enum ModelTask
{
    /// <summary>Class scores: top-k classification.</summary>
    Classification,

    /// <summary>Boxes with classes and scores.</summary>
    Detection,

    /// <summary>A stateful model run on sensor streams, giving class probabilities per step.</summary>
    SequenceClassification,

    /// <summary>A stateful model giving a score per step (e.g. a speech probability, an anomaly score), with threshold events.</summary>
    SequenceScore,

    /// <summary>A stateful model forecasting the next chunk; the prediction error is the anomaly score.</summary>
    SequenceForecast,

    /// <summary>A stateful model reconstructing its input chunk; the reconstruction error is the anomaly score.</summary>
    SequenceReconstruction,
}

/// <summary>Helpers on <see cref="ModelTask"/>.</summary>
public static class ModelTaskExtensions
{
    /// <summary>Whether the task is a stateful model run on sensor streams.</summary>
    public static bool IsSequence(this ModelTask task) =>
        task is ModelTask.SequenceClassification or ModelTask.SequenceScore or ModelTask.SequenceForecast or ModelTask.SequenceReconstruction;
}
