using System.Buffers;
using System.Text.Json;

namespace EdgeRunner.Service.Sensors;

/// <summary>Serialises one step's result to the JSON published on MQTT, reusing one buffer and writer.</summary>
internal sealed class SensorResultWriter : IDisposable
{
    private static readonly JsonEncodedText Stream = JsonEncodedText.Encode("stream");
    private static readonly JsonEncodedText Seq = JsonEncodedText.Encode("seq");
    private static readonly JsonEncodedText Window = JsonEncodedText.Encode("window");
    private static readonly JsonEncodedText Start = JsonEncodedText.Encode("start");
    private static readonly JsonEncodedText End = JsonEncodedText.Encode("end");
    private static readonly JsonEncodedText Samples = JsonEncodedText.Encode("samples");
    private static readonly JsonEncodedText Model = JsonEncodedText.Encode("model");
    private static readonly JsonEncodedText Id = JsonEncodedText.Encode("id");
    private static readonly JsonEncodedText Sha256 = JsonEncodedText.Encode("sha256");
    private static readonly JsonEncodedText Task = JsonEncodedText.Encode("task");
    private static readonly JsonEncodedText TaskName = JsonEncodedText.Encode("sequence_classification");
    private static readonly JsonEncodedText Label = JsonEncodedText.Encode("label");
    private static readonly JsonEncodedText Score = JsonEncodedText.Encode("score");
    private static readonly JsonEncodedText Probabilities = JsonEncodedText.Encode("probabilities");
    private static readonly JsonEncodedText Steps = JsonEncodedText.Encode("state_steps");
    private static readonly JsonEncodedText InvalidSamples = JsonEncodedText.Encode("invalid_samples");
    private static readonly JsonEncodedText StateResets = JsonEncodedText.Encode("state_resets");
    private static readonly JsonEncodedText Latency = JsonEncodedText.Encode("latency_ms");

    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private readonly Utf8JsonWriter _writer;
    private readonly JsonEncodedText _streamId;
    private readonly JsonEncodedText _modelId;
    private readonly JsonEncodedText _sha256;
    private readonly JsonEncodedText[] _labels;

    public SensorResultWriter(string streamId, string modelId, string sha256, IReadOnlyList<string> labels)
    {
        _writer = new Utf8JsonWriter(_buffer);
        _streamId = JsonEncodedText.Encode(streamId);
        _modelId = JsonEncodedText.Encode(modelId);
        _sha256 = JsonEncodedText.Encode(sha256);
        _labels = [.. labels.Select(l => JsonEncodedText.Encode(l))];
    }

    public void Dispose() => _writer.Dispose();

    /// <summary>Writes the payload; valid until the next call.</summary>
    public ReadOnlySpan<byte> Write(long sequence, DateTimeOffset windowStart, DateTimeOffset windowEnd, int samples, SensorStreamProcessor processor, double latencyMs, long invalidSamples = 0, long stateResets = 0)
    {
        _buffer.ResetWrittenCount();
        _writer.Reset(_buffer);
        var w = _writer;
        var result = processor.Result;
        w.WriteStartObject();
        w.WriteString(Stream, _streamId);
        w.WriteNumber(Seq, sequence);
        w.WriteStartObject(Window);
        w.WriteString(Start, windowStart);
        w.WriteString(End, windowEnd);
        w.WriteNumber(Samples, samples);
        w.WriteEndObject();
        w.WriteStartObject(Model);
        w.WriteString(Id, _modelId);
        w.WriteString(Sha256, _sha256);
        w.WriteEndObject();
        w.WriteString(Task, TaskName);
        w.WriteString(Label, _labels[processor.TopClass]);
        w.WriteNumber(Score, Math.Round(result[processor.TopClass], 5));
        w.WriteStartObject(Probabilities);
        for (var i = 0; i < result.Length; i++)
        {
            w.WriteNumber(_labels[i], Math.Round(result[i], 5));
        }

        w.WriteEndObject();
        w.WriteNumber(Steps, processor.State.Steps);
        w.WriteNumber(InvalidSamples, invalidSamples);
        w.WriteNumber(StateResets, stateResets);
        w.WriteNumber(Latency, Math.Round(latencyMs, 3));
        w.WriteEndObject();
        w.Flush();
        return _buffer.WrittenSpan;
    }
}
