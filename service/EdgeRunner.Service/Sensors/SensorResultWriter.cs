using System.Buffers;
using System.Text.Json;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Sequence;

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
    private static readonly JsonEncodedText Provider = JsonEncodedText.Encode("execution_provider");
    private static readonly JsonEncodedText Task = JsonEncodedText.Encode("task");
    private static readonly JsonEncodedText Values = JsonEncodedText.Encode("values");
    private static readonly JsonEncodedText Forecast = JsonEncodedText.Encode("forecast");
    private static readonly JsonEncodedText Active = JsonEncodedText.Encode("active");
    private static readonly JsonEncodedText Event = JsonEncodedText.Encode("event");
    private static readonly JsonEncodedText Raised = JsonEncodedText.Encode("raised");
    private static readonly JsonEncodedText Cleared = JsonEncodedText.Encode("cleared");
    private static readonly JsonEncodedText Threshold = JsonEncodedText.Encode("threshold");
    private static readonly JsonEncodedText ClearThreshold = JsonEncodedText.Encode("clear_threshold");
    private static readonly JsonEncodedText Time = JsonEncodedText.Encode("timestamp");
    private static readonly JsonEncodedText Label = JsonEncodedText.Encode("label");
    private static readonly JsonEncodedText Score = JsonEncodedText.Encode("score");
    private static readonly JsonEncodedText Probabilities = JsonEncodedText.Encode("probabilities");
    private static readonly JsonEncodedText Steps = JsonEncodedText.Encode("state_steps");
    private static readonly JsonEncodedText InvalidSamples = JsonEncodedText.Encode("invalid_samples");
    private static readonly JsonEncodedText StateResets = JsonEncodedText.Encode("state_resets");
    private static readonly JsonEncodedText NonFiniteOutputs = JsonEncodedText.Encode("non_finite_outputs");
    private static readonly JsonEncodedText Reason = JsonEncodedText.Encode("reason");
    private static readonly JsonEncodedText Latency = JsonEncodedText.Encode("latency_ms");
    private static readonly JsonEncodedText Preprocess = JsonEncodedText.Encode("preprocess");
    private static readonly JsonEncodedText Inference = JsonEncodedText.Encode("inference");
    private static readonly JsonEncodedText Output = JsonEncodedText.Encode("output");
    private static readonly JsonEncodedText Clock = JsonEncodedText.Encode("clock");
    private static readonly JsonEncodedText RecordingClock = JsonEncodedText.Encode("recording");
    private static readonly JsonEncodedText LiveClock = JsonEncodedText.Encode("live");
    private static readonly JsonEncodedText ReplayedAt = JsonEncodedText.Encode("replayed_at");

    /// <summary>Most output values published per step (manifest postprocess.publish_output): 4096 floats keep a result under about 64 KB.</summary>
    public const int MaxPublishedOutputValues = 4096;

    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private readonly Utf8JsonWriter _writer;
    private readonly JsonEncodedText _streamId;
    private readonly JsonEncodedText _modelId;
    private readonly JsonEncodedText _sha256;
    private readonly JsonEncodedText _executionProvider;
    private readonly JsonEncodedText[] _labels;
    private readonly JsonEncodedText _taskName;
    private readonly ModelTask _task;
    private readonly PayloadOrigin _origin;
    private readonly bool _publishOutput;

    public SensorResultWriter(PayloadOrigin origin, string streamId, string modelId, string sha256, IReadOnlyList<string> labels, ModelTask task = ModelTask.SequenceClassification, string executionProvider = "CPUExecutionProvider", bool publishOutput = false, bool recordingTime = false)
    {
        _publishOutput = publishOutput;
        RecordingTime = recordingTime;
        // The provider the model actually runs on (after any fallback), in every result and event, as in vision results.
        _executionProvider = JsonEncodedText.Encode(executionProvider);
        _origin = origin;
        _task = task;
        _taskName = JsonEncodedText.Encode(task switch
        {
            ModelTask.SequenceScore => "sequence_score",
            ModelTask.SequenceForecast => "sequence_forecast",
            ModelTask.SequenceReconstruction => "sequence_reconstruction",
            _ => "sequence_classification",
        });
        _writer = new Utf8JsonWriter(_buffer);
        _streamId = JsonEncodedText.Encode(streamId);
        _modelId = JsonEncodedText.Encode(modelId);
        _sha256 = JsonEncodedText.Encode(sha256);
        _labels = [.. labels.Select(l => JsonEncodedText.Encode(l))];
    }

    /// <summary>Whether the window times are a recording's own (a replay keeping its file's time) rather than when the samples were taken here.</summary>
    public bool RecordingTime { get; }

    public void Dispose() => _writer.Dispose();

    /// <summary>
    /// Writes the payload; valid until the next call. <paramref name="inferenceMs"/> is the model's run for this
    /// step (<see cref="SequenceStreamProcessor.StepAsync"/>'s result); the preprocessing time is the processor's own.
    /// </summary>
    /// <remarks><paramref name="replayedAt"/>: the daemon's clock when the step ran, written as <c>replayed_at</c> for a <see cref="RecordingTime"/> stream (whose window is the recording's time).</remarks>
    public ReadOnlySpan<byte> Write(long sequence, DateTimeOffset windowStart, DateTimeOffset windowEnd, int samples, SequenceStreamProcessor processor, double inferenceMs, long invalidSamples = 0, long stateResets = 0, long nonFiniteOutputs = 0, DateTimeOffset replayedAt = default)
    {
        _buffer.ResetWrittenCount();
        _writer.Reset(_buffer);
        var w = _writer;
        var result = processor.Result;
        w.WriteStartObject();
        _origin.WriteHeader(w, PayloadSchemas.SensorResult);
        w.WriteString(Stream, _streamId);
        w.WriteNumber(Seq, sequence);
        w.WriteStartObject(Window);
        w.WriteString(Start, windowStart);
        w.WriteString(End, windowEnd);
        w.WriteNumber(Samples, samples);

        // Which time the window is: the recording's (a replay with its timestamps) or the live samples' own.
        w.WriteString(Clock, RecordingTime ? RecordingClock : LiveClock);
        w.WriteEndObject();
        if (RecordingTime)
        {
            w.WriteString(ReplayedAt, replayedAt);
        }

        w.WriteStartObject(Model);
        w.WriteString(Id, _modelId);
        w.WriteString(Sha256, _sha256);
        w.WriteString(Provider, _executionProvider);
        w.WriteEndObject();
        w.WriteString(Task, _taskName);
        switch (_task)
        {
            case ModelTask.SequenceClassification:
                w.WriteString(Label, _labels[processor.TopClass]);
                w.WriteNumber(Score, Math.Round(result[processor.TopClass], 5));
                w.WriteStartObject(Probabilities);
                for (var i = 0; i < result.Length; i++)
                {
                    w.WriteNumber(_labels[i], Math.Round(result[i], 5));
                }

                w.WriteEndObject();
                break;
            case ModelTask.SequenceScore:
                WriteScore(w, processor);
                if (result.Length > 1)
                {
                    w.WriteStartObject(Values);
                    for (var i = 0; i < result.Length; i++)
                    {
                        w.WriteNumber(_labels[i], Math.Round(result[i], 5));
                    }

                    w.WriteEndObject();
                }

                break;
            case ModelTask.SequenceForecast:
                WriteScore(w, processor);
                w.WriteStartArray(Forecast);
                foreach (var v in result)
                {
                    w.WriteNumberValue(Math.Round(v, 5));
                }

                w.WriteEndArray();
                break;
            default:
                WriteScore(w, processor);
                break;
        }

        if (_publishOutput)
        {
            // The whole output tensor, flattened in row-major order; floats in their shortest round-trip form.
            w.WriteStartArray(Output);
            foreach (var v in result)
            {
                if (float.IsFinite(v))
                {
                    w.WriteNumberValue(v);
                }
                else
                {
                    w.WriteNullValue();
                }
            }

            w.WriteEndArray();
        }

        w.WriteNumber(Steps, processor.State.Steps);
        w.WriteNumber(InvalidSamples, invalidSamples);
        w.WriteNumber(StateResets, stateResets);
        if (nonFiniteOutputs > 0)
        {
            w.WriteNumber(NonFiniteOutputs, nonFiniteOutputs);
        }

        // The same shape as a vision result's (a bare number until schema edgerunner.sensor.result/1).
        w.WriteStartObject(Latency);
        w.WriteNumber(Preprocess, Math.Round(processor.PreprocessMilliseconds, 3));
        w.WriteNumber(Inference, Math.Round(inferenceMs, 3));
        w.WriteEndObject();
        w.WriteEndObject();
        w.Flush();
        return _buffer.WrittenSpan;
    }

    /// <summary>Writes the raise/clear event of the last step (<paramref name="processor"/>'s <see cref="SequenceStreamProcessor.Transition"/>); valid until the next call.</summary>
    public ReadOnlySpan<byte> WriteEvent(long sequence, DateTimeOffset time, SequenceStreamProcessor processor, TriggerTransition transition, string? reason = null)
    {
        _buffer.ResetWrittenCount();
        _writer.Reset(_buffer);
        var w = _writer;
        var trigger = processor.Trigger!;
        w.WriteStartObject();
        _origin.WriteHeader(w, PayloadSchemas.SensorEvent);
        w.WriteString(Stream, _streamId);
        w.WriteString(Event, transition == TriggerTransition.Raised ? Raised : Cleared);
        w.WriteNumber(Seq, sequence);
        w.WriteString(Time, time);
        WriteFinite(w, Score, processor.Score, 6);
        if (reason is not null)
        {
            w.WriteString(Reason, reason);
        }

        w.WriteNumber(Threshold, trigger.Threshold);
        w.WriteNumber(ClearThreshold, trigger.ClearThreshold);
        w.WriteStartObject(Model);
        w.WriteString(Id, _modelId);
        w.WriteString(Sha256, _sha256);
        w.WriteString(Provider, _executionProvider);
        w.WriteEndObject();
        w.WriteEndObject();
        w.Flush();
        return _buffer.WrittenSpan;
    }

    /// <summary>A number, or null when it is NaN or infinite (which JSON cannot carry).</summary>
    private static void WriteFinite(Utf8JsonWriter w, JsonEncodedText name, double value, int digits)
    {
        if (double.IsFinite(value))
        {
            w.WriteNumber(name, Math.Round(value, digits));
        }
        else
        {
            w.WriteNull(name);
        }
    }

    /// <summary>The retained state payload of a device-backed stream (rare: allocates).</summary>
    public static byte[] WriteState(PayloadOrigin origin, string streamId, string state, string reason, DateTimeOffset timestamp, Catalog.RunningModelStatus? model = null)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            origin.WriteHeader(w, PayloadSchemas.SensorState);
            w.WriteString(Stream, streamId);
            w.WriteString("state", state);
            w.WriteString("reason", reason);
            w.WriteString(Time, timestamp);
            model?.Write(w);
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteScore(Utf8JsonWriter w, SequenceStreamProcessor processor)
    {
        WriteFinite(w, Score, processor.Score, 6);
        if (processor.Trigger is { } trigger)
        {
            w.WriteBoolean(Active, trigger.Active);
        }
    }
}
