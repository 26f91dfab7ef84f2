using System.Buffers;
using System.Text.Json;

namespace EdgeRunner.Service.Vision;

/// <summary>Where one result came from.</summary>
internal readonly record struct VisionResultContext(
    string CameraId,
    long Sequence,
    DateTimeOffset CapturedAt,
    string? Origin,
    int FrameWidth,
    int FrameHeight,
    FrameTimings Timings,
    long FramesDropped,
    long FramesSkippedRate = 0,
    long FramesSkippedMotion = 0,
    long FramesFailed = 0);

/// <summary>
/// Serialises a result to the JSON payload published on MQTT, reusing one buffer and one writer:
/// property names are pre-encoded and labels are preloaded strings, so nothing is allocated per result.
/// </summary>
internal sealed class VisionResultWriter : IDisposable
{
    private static readonly JsonEncodedText Camera = JsonEncodedText.Encode("camera");
    private static readonly JsonEncodedText Seq = JsonEncodedText.Encode("seq");
    private static readonly JsonEncodedText Timestamp = JsonEncodedText.Encode("timestamp");
    private static readonly JsonEncodedText Source = JsonEncodedText.Encode("source");
    private static readonly JsonEncodedText Frame = JsonEncodedText.Encode("frame");
    private static readonly JsonEncodedText Width = JsonEncodedText.Encode("width");
    private static readonly JsonEncodedText Height = JsonEncodedText.Encode("height");
    private static readonly JsonEncodedText Model = JsonEncodedText.Encode("model");
    private static readonly JsonEncodedText Id = JsonEncodedText.Encode("id");
    private static readonly JsonEncodedText Sha256 = JsonEncodedText.Encode("sha256");
    private static readonly JsonEncodedText Provider = JsonEncodedText.Encode("execution_provider");
    private static readonly JsonEncodedText Latency = JsonEncodedText.Encode("latency_ms");
    private static readonly JsonEncodedText Preprocess = JsonEncodedText.Encode("preprocess");
    private static readonly JsonEncodedText Inference = JsonEncodedText.Encode("inference");
    private static readonly JsonEncodedText Task = JsonEncodedText.Encode("task");
    private static readonly JsonEncodedText FramesDropped = JsonEncodedText.Encode("frames_dropped");
    private static readonly JsonEncodedText FramesSkippedRate = JsonEncodedText.Encode("frames_skipped_rate");
    private static readonly JsonEncodedText FramesSkippedMotion = JsonEncodedText.Encode("frames_skipped_motion");
    private static readonly JsonEncodedText FramesFailed = JsonEncodedText.Encode("frames_failed");

    private readonly ArrayBufferWriter<byte> _buffer = new(2048);
    private readonly Utf8JsonWriter _writer;
    private readonly JsonEncodedText _modelId;
    private readonly JsonEncodedText _modelSha256;
    private readonly JsonEncodedText _provider;
    private readonly PayloadOrigin _origin;

    public VisionResultWriter(PayloadOrigin origin, string modelId, string modelSha256, string executionProvider)
    {
        _origin = origin;
        _writer = new Utf8JsonWriter(_buffer);
        _modelId = JsonEncodedText.Encode(modelId);
        _modelSha256 = JsonEncodedText.Encode(modelSha256);
        _provider = JsonEncodedText.Encode(executionProvider);
    }

    public void Dispose() => _writer.Dispose();

    /// <summary>Writes the payload and returns it; valid until the next call.</summary>
    public ReadOnlySpan<byte> Write(in VisionResultContext context, IVisionHead head)
    {
        _buffer.ResetWrittenCount();
        _writer.Reset(_buffer);
        var w = _writer;
        w.WriteStartObject();
        _origin.WriteHeader(w, PayloadSchemas.VisionResult);
        w.WriteString(Camera, context.CameraId);
        w.WriteNumber(Seq, context.Sequence);
        w.WriteString(Timestamp, context.CapturedAt);
        if (context.Origin is not null)
        {
            w.WriteString(Source, context.Origin);
        }

        w.WriteStartObject(Frame);
        w.WriteNumber(Width, context.FrameWidth);
        w.WriteNumber(Height, context.FrameHeight);
        w.WriteEndObject();
        w.WriteStartObject(Model);
        w.WriteString(Id, _modelId);
        w.WriteString(Sha256, _modelSha256);
        w.WriteString(Provider, _provider);
        w.WriteEndObject();
        w.WriteStartObject(Latency);
        w.WriteNumber(Preprocess, Math.Round(context.Timings.PreprocessMilliseconds, 3));
        w.WriteNumber(Inference, Math.Round(context.Timings.InferenceMilliseconds, 3));
        w.WriteEndObject();
        w.WriteString(Task, head.Task);
        head.Write(w);
        w.WriteNumber(FramesDropped, context.FramesDropped);
        w.WriteNumber(FramesSkippedRate, context.FramesSkippedRate);
        w.WriteNumber(FramesSkippedMotion, context.FramesSkippedMotion);
        w.WriteNumber(FramesFailed, context.FramesFailed);
        w.WriteEndObject();
        w.Flush();
        return _buffer.WrittenSpan;
    }
}
