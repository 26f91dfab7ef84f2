using System.Text.Json;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Models.Preprocessing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.Service.Vision;

/// <summary>
/// Turns one run's outputs into results and writes them into the result JSON. One per pipeline,
/// holding preallocated result arrays: decoding and writing allocate nothing.
/// </summary>
internal interface IVisionHead
{
    /// <summary>"classification" or "detection" (the payload's <c>task</c>).</summary>
    JsonEncodedText Task { get; }

    /// <summary>Results of the last <see cref="Decode"/>.</summary>
    int Count { get; }

    /// <summary>Best result's label and score, for the log line.</summary>
    (string Label, float Score) Top { get; }

    /// <summary>Decodes the session's outputs for a frame of the given size.</summary>
    void Decode(ModelSession session, in SourceMapping mapping, int frameWidth, int frameHeight);

    /// <summary>Writes the results array (<c>classifications</c> or <c>detections</c>).</summary>
    void Write(Utf8JsonWriter writer);
}

internal sealed class ClassificationHead(ClassificationDecoder decoder) : IVisionHead
{
    private static readonly JsonEncodedText TaskName = JsonEncodedText.Encode("classification");
    private static readonly JsonEncodedText Classifications = JsonEncodedText.Encode("classifications");
    private static readonly JsonEncodedText ClassId = JsonEncodedText.Encode("class_id");
    private static readonly JsonEncodedText Label = JsonEncodedText.Encode("label");
    private static readonly JsonEncodedText Score = JsonEncodedText.Encode("score");
    private readonly Classification[] _results = new Classification[decoder.TopK];
    private readonly VisionScoreFilter _scoreThreshold = new(decoder.MinScore);

    public JsonEncodedText Task => TaskName;

    public int Count { get; private set; }

    public (string Label, float Score) Top => Count > 0 ? (_results[0].Label, _results[0].Score) : ("-", 0f);

    public ReadOnlySpan<Classification> Results => _results.AsSpan(0, Count);

    public void Decode(ModelSession session, in SourceMapping mapping, int frameWidth, int frameHeight) =>
        Count = VisionScoreFilter.CountAtOrAbove(_results, decoder.Decode(session.Output(0), _results), _scoreThreshold.Value, static c => c.Score);

    /// <summary>The score below which the decoder itself drops classes (<c>Classification:MinScore</c>); the run-time threshold cannot go lower.</summary>
    public float DecoderThreshold => decoder.MinScore;

    /// <summary>The run-time score threshold (the <c>set-threshold</c> command); results below it are dropped after decoding.</summary>
    public VisionScoreFilter ScoreThreshold => _scoreThreshold;

    public void Write(Utf8JsonWriter writer)
    {
        writer.WriteStartArray(Classifications);
        foreach (var c in Results)
        {
            writer.WriteStartObject();
            writer.WriteNumber(ClassId, c.ClassId);
            writer.WriteString(Label, c.Label);
            writer.WriteNumber(Score, Math.Round(c.Score, 5));
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }
}

/// <summary>
/// Detections of one pipeline. Also watches the decoder's output for what a wrong decode looks like: a YOLOX
/// raw-grid inference settled on the first frame with candidates is logged once, and a detector that keeps
/// producing boxes without area is warned about (rate-limited by <see cref="DegenerateBoxMonitor"/>).
/// </summary>
internal sealed partial class DetectionHead(IDetectionDecoder decoder, LabelSet labels, int maxDetections, string modelId = "", ILogger? logger = null) : IVisionHead
{
    private static readonly JsonEncodedText TaskName = JsonEncodedText.Encode("detection");
    private static readonly JsonEncodedText Detections = JsonEncodedText.Encode("detections");
    private static readonly JsonEncodedText ClassId = JsonEncodedText.Encode("class_id");
    private static readonly JsonEncodedText Label = JsonEncodedText.Encode("label");
    private static readonly JsonEncodedText Score = JsonEncodedText.Encode("score");
    private static readonly JsonEncodedText Box = JsonEncodedText.Encode("box");
    private static readonly JsonEncodedText X1 = JsonEncodedText.Encode("x1");
    private static readonly JsonEncodedText Y1 = JsonEncodedText.Encode("y1");
    private static readonly JsonEncodedText X2 = JsonEncodedText.Encode("x2");
    private static readonly JsonEncodedText Y2 = JsonEncodedText.Encode("y2");
    private readonly Detection[] _results = new Detection[maxDetections];
    private readonly DegenerateBoxMonitor _degenerate = new();
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly VisionScoreFilter _scoreThreshold = new(decoder.Options.ScoreThreshold);
    private bool _rawGridPending = decoder is YoloXDecoder { RawGridInUse: null };

    public JsonEncodedText Task => TaskName;

    public int Count { get; private set; }

    public (string Label, float Score) Top => Count > 0 ? (labels[_results[0].ClassId], _results[0].Score) : ("-", 0f);

    public ReadOnlySpan<Detection> Results => _results.AsSpan(0, Count);

    public LabelSet Labels => labels;

    public void Decode(ModelSession session, in SourceMapping mapping, int frameWidth, int frameHeight)
    {
        Count = VisionScoreFilter.CountAtOrAbove(_results, decoder.Decode(session, mapping, frameWidth, frameHeight, _results), _scoreThreshold.Value, static d => d.Score);
        if (_rawGridPending && decoder is YoloXDecoder { RawGridInUse: not null } yolox)
        {
            _rawGridPending = false;
            LogRawGridInferred(_logger, modelId, yolox.RawGridDecision);
        }

        if (_degenerate.Observe(Results))
        {
            LogDegenerateBoxes(_logger, modelId, decoder.Kind, _degenerate.FramesInRow, _degenerate.BoxesInRow, _degenerate.DetectionsInRow);
        }
    }

    /// <summary>The score below which the decoder itself drops boxes (<c>Detection:ScoreThreshold</c>); the run-time threshold cannot go lower.</summary>
    public float DecoderThreshold => decoder.Options.ScoreThreshold;

    /// <summary>The run-time score threshold (the <c>set-threshold</c> command); results below it are dropped after decoding.</summary>
    public VisionScoreFilter ScoreThreshold => _scoreThreshold;

    public void Write(Utf8JsonWriter writer)
    {
        writer.WriteStartArray(Detections);
        foreach (var d in Results)
        {
            writer.WriteStartObject();
            writer.WriteNumber(ClassId, d.ClassId);
            writer.WriteString(Label, labels[d.ClassId]);
            writer.WriteNumber(Score, Math.Round(d.Score, 4));
            writer.WriteStartObject(Box);
            writer.WriteNumber(X1, Math.Round(d.X1, 1));
            writer.WriteNumber(Y1, Math.Round(d.Y1, 1));
            writer.WriteNumber(X2, Math.Round(d.X2, 1));
            writer.WriteNumber(Y2, Math.Round(d.Y2, 1));
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {ModelId}: YOLOX {RawGridDecision}")]
    private static partial void LogRawGridInferred(ILogger logger, string modelId, string rawGridDecision);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {ModelId}: the {Decoder} decoder produced boxes without area (under 1 px wide or high) in {Frames} frames in a row ({Boxes} of {Detections} detections): the decoder does not fit the model's output (a raw YOLOX grid needs Detection:RawGrid=true), or its preprocessing is wrong. Repeats every 1000 such frames.")]
    private static partial void LogDegenerateBoxes(ILogger logger, string modelId, string decoder, long frames, long boxes, long detections);
}

/// <summary>
/// A head's run-time score threshold, set by the <c>set-threshold</c> command while the camera runs. It starts at
/// the decoder's own threshold and can only be raised above it (or lowered back to it): the decoder has already
/// dropped what scores lower, so a lower value would promise results that never come.
/// </summary>
internal sealed class VisionScoreFilter(float initial)
{
    // Written by the command, read once per decode by the inference loop: a float is read and written whole.
    private volatile float _value = initial;

    /// <summary>The threshold now.</summary>
    public float Value => _value;

    /// <summary>Sets the threshold (the caller checked it against the decoder's).</summary>
    public void Set(float value) => _value = value;

    /// <summary>
    /// How many of the first <paramref name="count"/> results (best first, as the decoders write them) score at
    /// least <paramref name="threshold"/>. No allocation: the selector is a static lambda, cached by the compiler.
    /// </summary>
    public static int CountAtOrAbove<T>(T[] results, int count, float threshold, Func<T, float> score)
    {
        var kept = 0;
        while (kept < count && score(results[kept]) >= threshold)
        {
            kept++;
        }

        return kept;
    }
}
