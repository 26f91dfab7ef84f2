using System.Diagnostics;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Sensors;

/// <summary>How a sequence model's per-step output is read.</summary>
/// <param name="Task">Classification (probabilities per label), score (a value per step), forecast (the next chunk; the prediction error is the score) or reconstruction (the input chunk; the reconstruction error is the score).</param>
/// <param name="Trigger">Raise/clear thresholds on the score, or <see langword="null"/> for none.</param>
internal sealed record SequenceOutputSpec(ModelTask Task, HysteresisSettings? Trigger)
{
    public static SequenceOutputSpec Classification { get; } = new(ModelTask.SequenceClassification, null);

    /// <summary>From a manifest's task and postprocess section.</summary>
    public static SequenceOutputSpec From(ModelTask task, ManifestPostprocess? post) =>
        new(task, post?.Threshold is { } threshold
            ? new HysteresisSettings(threshold, post.ClearThreshold ?? threshold, post.RaiseSteps, post.ClearSteps)
            : null);
}

/// <summary>Thresholds of a <see cref="HysteresisTrigger"/>.</summary>
internal sealed record HysteresisSettings(double Threshold, double ClearThreshold, int RaiseSteps, int ClearSteps);

/// <summary>
/// The per-step work for one stream, shared by the daemon and the <c>evaluate</c> command:
/// normalise one chunk of interleaved samples into the model's layout (after the context carried
/// from the previous chunk, when the model takes one), run one step with this stream's own state,
/// and read the result (class probabilities, a score, a forecast or a reconstruction, with
/// threshold events). The model may be shared by several streams (calls are serialised on a lock
/// shared by those streams); the state never is. The carried context and the last forecast live in
/// the stream's state, so they are reset and checkpointed with it.
/// </summary>
internal sealed class SensorStreamProcessor
{
    private readonly SequenceModel _model;
    private readonly object _modelLock;
    private readonly float[] _chunk;
    private readonly float[] _result;
    private readonly float[] _scale;
    private readonly float[] _offset;
    private readonly int _channels;
    private readonly int _chunkSamples;
    private readonly bool _channelMajor;

    private readonly StepBatcher? _batcher;
    private readonly StepRequest _request;
    private readonly int _contextSamples;
    private readonly int _modelSamples;
    private readonly int _contextIndex = -1;
    private readonly int _forecastIndex = -1;
    private readonly int _triggerIndex = -1;
    private readonly SequenceOutputSpec _output;

    public SensorStreamProcessor(string streamId, SequenceModel model, object modelLock, ManifestStreamInput stream, IReadOnlyList<string> labels, StepBatcher? batcher = null, SequenceOutputSpec? output = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(stream);
        _model = model;
        _modelLock = modelLock;
        _output = output ?? SequenceOutputSpec.Classification;
        _channels = stream.Channels.Count;
        _chunkSamples = stream.ChunkSamples;
        _contextSamples = stream.ContextSamples;
        _modelSamples = _chunkSamples + _contextSamples;
        if (_channels * _modelSamples != model.ChunkLength)
        {
            var context = _contextSamples > 0 ? $" (+ {_contextSamples} context)" : string.Empty;
            throw new StartupException(
                $"Model '{model.Id}': manifest stream says {_channels} channels × {_chunkSamples} samples{context} but input '{model.StreamInput}' takes {model.ChunkLength} values per step",
                StartupException.ConfigError);
        }

        Labels = labels.Count > 0 ? labels : DefaultLabels(_output.Task, model.ResultLength);
        switch (_output.Task)
        {
            case ModelTask.SequenceClassification when Labels.Count != model.ResultLength:
            case ModelTask.SequenceScore when Labels.Count != model.ResultLength:
                throw new StartupException($"Model '{model.Id}': {Labels.Count} labels but output '{model.ResultOutput}' has {model.ResultLength} values per step", StartupException.ConfigError);
            case ModelTask.SequenceForecast or ModelTask.SequenceReconstruction when model.ResultLength != _channels * _chunkSamples || _contextSamples > 0:
                throw new StartupException(
                    $"Model '{model.Id}': a {_output.Task} model's output '{model.ResultOutput}' must have one value per input value ({_channels * _chunkSamples}, no context); it has {model.ResultLength}",
                    StartupException.ConfigError);
        }

        StreamId = streamId;

        // Extra state buffers only when used, so a plain model's state (and its checkpoints) is just its pairs.
        var extra = new List<int>();
        if (_contextSamples > 0)
        {
            _contextIndex = model.StatePairs.Count + extra.Count;
            extra.Add(_channels * _contextSamples);
        }

        if (_output.Task == ModelTask.SequenceForecast)
        {
            _forecastIndex = model.StatePairs.Count + extra.Count;
            extra.Add(model.ResultLength);
        }

        if (_output.Trigger is not null)
        {
            // [active, pending steps]: the raised condition is part of the stream's state, checkpointed with it.
            _triggerIndex = model.StatePairs.Count + extra.Count;
            extra.Add(2);
        }

        State = model.CreateState(streamId, [.. extra]);

        if (_output.Trigger is { } t)
        {
            Trigger = new HysteresisTrigger(t.Threshold, t.ClearThreshold, t.RaiseSteps, t.ClearSteps);
        }

        _chunk = new float[model.ChunkLength];
        _result = new float[model.ResultLength];
        _scale = new float[_channels];
        _offset = new float[_channels];
        for (var c = 0; c < _channels; c++)
        {
            var mean = c < stream.Mean.Count ? stream.Mean[c] : 0f;
            var std = c < stream.Std.Count && stream.Std[c] != 0 ? stream.Std[c] : 1f;
            _scale[c] = 1f / std;
            _offset[c] = -mean / std;
        }

        // [channels, samples] (the demo LSTM) or [samples, channels]: decided by the model's own input shape.
        _channelMajor = ChannelMajor(stream, model);
        _batcher = batcher;
        _request = new StepRequest(State, _chunk, _result);
    }

    public string StreamId { get; }

    public IReadOnlyList<string> Labels { get; }

    public StreamState State { get; }

    public SequenceModel Model => _model;

    /// <summary>Samples per channel in one step.</summary>
    public int ChunkSamples => _chunkSamples;

    /// <summary>Channels per sample.</summary>
    public int Channels => _channels;

    /// <summary>The last step's output (class probabilities, scores, forecast or reconstruction).</summary>
    public ReadOnlySpan<float> Result => _result;

    /// <summary>Index of the largest value of the last result.</summary>
    public int TopClass { get; private set; }

    /// <summary>How the output is read.</summary>
    public ModelTask Task => _output.Task;

    /// <summary>The last step's score: the first output (score models), the prediction or reconstruction error (mean square, normalised units); NaN when there is none yet (a forecast's first step) or for classification.</summary>
    public double Score { get; private set; } = double.NaN;

    /// <summary>Raise/clear events on <see cref="Score"/>, when thresholds are set.</summary>
    public HysteresisTrigger? Trigger { get; }

    /// <summary>What the last step did to <see cref="Trigger"/>.</summary>
    public TriggerTransition Transition { get; private set; }

    /// <summary>Takes the raised condition from the state just restored from a checkpoint.</summary>
    public void StateRestored()
    {
        if (Trigger is not null)
        {
            var saved = State.Tensor(_triggerIndex);
            Trigger.Restore(saved[0] > 0.5f, (int)saved[1]);
        }
    }

    /// <summary>Whether every value of the last result is finite (a model fed extreme input can overflow).</summary>
    public bool ResultIsFinite { get; private set; } = true;

    /// <summary>Starts the stream afresh: recurrent state, carried context, last forecast and raised events. Returns whether a raised event was active (it is now cleared).</summary>
    public bool Reset()
    {
        var wasActive = Trigger?.Active ?? false;
        State.Reset();
        Trigger?.Reset();
        Score = double.NaN;
        Transition = TriggerTransition.None;
        return wasActive;
    }

    /// <summary>Runs one step on <paramref name="interleaved"/> (exactly one chunk) right now; returns milliseconds spent in the model.</summary>
    public double Step(ReadOnlySpan<float> interleaved)
    {
        Normalize(interleaved);
        var start = Stopwatch.GetTimestamp();
        lock (_modelLock)
        {
            _model.Step(State, _chunk, _result);
        }

        var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        ReadResult();
        return elapsed;
    }

    /// <summary>
    /// Runs one step, batched with the other streams of the model when a batcher is set; completes
    /// with the milliseconds of the run it was part of.
    /// </summary>
    public ValueTask<double> StepAsync(ReadOnlySpan<float> interleaved)
    {
        if (_batcher is null)
        {
            return new ValueTask<double>(Step(interleaved));
        }

        Normalize(interleaved);
        return AwaitBatchedAsync(_batcher.StepAsync(_request));
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<double> AwaitBatchedAsync(ValueTask<double> pending)
    {
        var milliseconds = await pending;
        ReadResult();
        return milliseconds;
    }

    private void Normalize(ReadOnlySpan<float> interleaved)
    {
        // Model sample m of channel c sits at [c, m] (channel-major) or [m, c]; the first
        // _contextSamples of them are the end of the previous chunk, kept in the state.
        var context = _contextSamples > 0 ? State.Tensor(_contextIndex) : [];
        for (var c = 0; c < _channels; c++)
        {
            for (var k = 0; k < _contextSamples; k++)
            {
                _chunk[Index(c, k)] = context[(c * _contextSamples) + k];
            }
        }

        for (var s = 0; s < _chunkSamples; s++)
        {
            for (var c = 0; c < _channels; c++)
            {
                var v = (interleaved[(s * _channels) + c] * _scale[c]) + _offset[c];
                _chunk[Index(c, _contextSamples + s)] = v;
            }
        }

        for (var c = 0; c < _channels; c++)
        {
            for (var k = 0; k < _contextSamples; k++)
            {
                context[(c * _contextSamples) + k] = _chunk[Index(c, _chunkSamples + k)];
            }
        }
    }

    private int Index(int channel, int sample) => _channelMajor ? (channel * _modelSamples) + sample : (sample * _channels) + channel;

    private void ReadResult()
    {
        ResultIsFinite = IsAllFinite(_result);
        if (!ResultIsFinite)
        {
            Score = double.NaN;
            Transition = TriggerTransition.None;
            return;
        }

        FindTop();
        switch (_output.Task)
        {
            case ModelTask.SequenceScore:
                Score = _result[0];
                break;
            case ModelTask.SequenceReconstruction:
                Score = MeanSquareError(_result, _chunk);
                break;
            case ModelTask.SequenceForecast:
                // The forecast made at the previous step against what came; then keep this step's forecast for the next.
                var previous = State.Tensor(_forecastIndex);
                Score = State.Steps > 1 ? MeanSquareError(previous, _chunk) : double.NaN;
                _result.CopyTo(previous);
                break;
            default:
                return;
        }

        Transition = Trigger is null || double.IsNaN(Score) ? TriggerTransition.None : Trigger.Update(Score);
        if (Trigger is not null)
        {
            var saved = State.Tensor(_triggerIndex);
            saved[0] = Trigger.Active ? 1 : 0;
            saved[1] = Trigger.PendingSteps;
        }
    }

    private static bool IsAllFinite(ReadOnlySpan<float> values)
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

    private static double MeanSquareError(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double sum = 0;
        for (var i = 0; i < a.Length; i++)
        {
            double d = a[i] - b[i];
            sum += d * d;
        }

        return sum / a.Length;
    }

    private static string[] DefaultLabels(ModelTask task, int values) => task switch
    {
        ModelTask.SequenceScore when values == 1 => ["score"],
        _ => [.. Enumerable.Range(0, values).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))],
    };

    private void FindTop()
    {
        var best = 0;
        for (var i = 1; i < _result.Length; i++)
        {
            if (_result[i] > _result[best])
            {
                best = i;
            }
        }

        TopClass = best;
    }

    private static bool ChannelMajor(ManifestStreamInput stream, SequenceModel model)
    {
        // Chunk dims are the input's last two: [channels, samples] unless they read [samples, channels].
        var shape = model.ChunkShape;
        var samples = stream.ChunkSamples + stream.ContextSamples;
        return !(shape.Count >= 2 && samples != stream.Channels.Count
            && shape[^2] == samples && shape[^1] == stream.Channels.Count);
    }
}
