using System.Diagnostics;
using EdgeRunner.Models.Audio;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Models.Sequence;

/// <summary>
/// The per-step work for one stream, shared by the daemon and the <c>evaluate</c> command:
/// normalise one chunk of interleaved samples into the model's layout (after the context carried
/// from the previous chunk, when the model takes one), run one step with this stream's own state,
/// and read the result (class probabilities, a score, a forecast or a reconstruction, with
/// threshold events). The model may be shared by several streams (calls are serialised on a lock
/// shared by those streams); the state never is. The carried context and the last forecast live in
/// the stream's state, so they are reset and checkpointed with it. A model that does not fit the
/// manifest's stream (sizes, labels) is refused with a <see cref="ManifestException"/> naming both.
/// </summary>
public sealed class SequenceStreamProcessor
{
    private readonly SequenceModel _model;
    private readonly object _modelLock;
    private readonly float[] _chunk;
    private readonly float[] _result;
    private readonly SequencePreprocessor _preprocessor;
    private readonly int _channels;
    private readonly int _chunkSamples;

    private readonly StepBatcher? _batcher;
    private readonly StepRequest _request;
    private readonly int _contextSamples;
    private readonly int _contextIndex = -1;
    private readonly int _forecastIndex = -1;
    private readonly int _triggerIndex = -1;
    private readonly SequenceOutputSpec _output;

    // Audio front end (manifest stream.frontend): features instead of raw samples; its carried frame overlap lives in the state.
    private readonly AudioFrontEnd? _frontEnd;
    private readonly int _frontEndHistoryIndex = -1;

    /// <summary>
    /// Creates the processor of stream <paramref name="streamId"/> on <paramref name="model"/> (shared with
    /// the other streams that lock <paramref name="modelLock"/>), with its own fresh state. Throws
    /// <see cref="ManifestException"/> when the model does not fit <paramref name="stream"/> or
    /// <paramref name="labels"/>, and <see cref="ArgumentOutOfRangeException"/> for bad trigger settings.
    /// </summary>
    public SequenceStreamProcessor(string streamId, SequenceModel model, object modelLock, ManifestStreamInput stream, IReadOnlyList<string> labels, StepBatcher? batcher = null, SequenceOutputSpec? output = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(stream);
        _model = model;
        _modelLock = modelLock;
        _output = output ?? SequenceOutputSpec.Classification;
        _channels = stream.Channels.Count;
        _chunkSamples = stream.ChunkSamples;
        _contextSamples = stream.ContextSamples;
        try
        {
            _preprocessor = new SequencePreprocessor(SequenceInputSpec.From(stream), model.ChunkShape);
        }
        catch (ManifestException ex)
        {
            throw new ManifestException($"Model '{model.Id}': input '{model.StreamInput}': {ex.Message}", ex);
        }

        _frontEnd = AudioFrontEndSpec.From(stream) is { } frontEndSpec ? new AudioFrontEnd(frontEndSpec) : null;
        if (_frontEnd is not null && AudioFrontEndSpec.ValuesPerStep(stream) != model.ChunkLength)
        {
            var spec = _frontEnd.Spec;
            throw new ManifestException(
                $"Model '{model.Id}': manifest stream gives {_chunkSamples / spec.HopLength} frames × {spec.FeaturesPerFrame} {spec.Kind} features per step but input '{model.StreamInput}' takes {model.ChunkLength} values per step");
        }

        if (_frontEnd is null && _preprocessor.InputLength != model.ChunkLength)
        {
            var context = _contextSamples > 0 ? $" (+ {_contextSamples} context)" : string.Empty;
            throw new ManifestException(
                $"Model '{model.Id}': manifest stream says {_channels} channels × {_chunkSamples} samples{context} but input '{model.StreamInput}' takes {model.ChunkLength} values per step");
        }

        ArgumentNullException.ThrowIfNull(labels);
        Labels = labels.Count > 0 ? labels : SequenceScores.DefaultLabels(_output.Task, model.ResultLength);
        switch (_output.Task)
        {
            case ModelTask.SequenceClassification when Labels.Count != model.ResultLength:
            case ModelTask.SequenceScore when Labels.Count != model.ResultLength:
                throw new ManifestException($"Model '{model.Id}': {Labels.Count} labels but output '{model.ResultOutput}' has {model.ResultLength} values per step");
            case ModelTask.SequenceForecast or ModelTask.SequenceReconstruction when model.ResultLength != (_frontEnd is null ? _channels * _chunkSamples : model.ChunkLength) || _contextSamples > 0:
                throw new ManifestException(
                    $"Model '{model.Id}': a {_output.Task} model's output '{model.ResultOutput}' must have one value per input value ({_channels * _chunkSamples}, no context); it has {model.ResultLength}");
        }

        if (_output.Softmax && _output.Task is ModelTask.SequenceForecast or ModelTask.SequenceReconstruction)
        {
            throw new ManifestException($"Model '{model.Id}': postprocess.softmax applies to classification and score models; a {_output.Task} model's output is compared with its input");
        }

        StreamId = streamId;

        // Extra state buffers only when used, so a plain model's state (and its checkpoints) is just its pairs.
        var extra = new List<int>();
        if (_contextSamples > 0)
        {
            _contextIndex = model.StatePairs.Count + extra.Count;
            extra.Add(_preprocessor.ContextLength);
        }

        if (_frontEnd is { HistoryLength: > 0 })
        {
            _frontEndHistoryIndex = model.StatePairs.Count + extra.Count;
            extra.Add(_frontEnd.HistoryLength);
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
        _batcher = batcher;
        _request = new StepRequest(State, _chunk, _result);
    }

    /// <summary>The stream this processor steps.</summary>
    public string StreamId { get; }

    /// <summary>One label per output value (the manifest's, else <see cref="SequenceScores.DefaultLabels"/>).</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>This stream's own state (recurrent state, carried context, last forecast, raised condition).</summary>
    public StreamState State { get; }

    /// <summary>How this stream's samples are laid out in the model's input (declared or guessed).</summary>
    public StreamLayout Layout => _preprocessor.Layout;

    /// <summary>Whether <see cref="Layout"/> was guessed from the input's shape (the manifest declares none).</summary>
    public bool LayoutGuessed => _preprocessor.LayoutGuessed;

    /// <summary>The model, possibly shared with other streams.</summary>
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

    /// <summary>Milliseconds the last step spent preparing the model's input (scaling, carried context), before the model ran.</summary>
    public double PreprocessMilliseconds { get; private set; }

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
        var start = Stopwatch.GetTimestamp();
        if (_frontEnd is not null)
        {
            _frontEnd.ProcessChunk(interleaved, _frontEndHistoryIndex >= 0 ? State.Tensor(_frontEndHistoryIndex) : [], _chunk);
        }
        else
        {
            _preprocessor.Process(interleaved, _contextSamples > 0 ? State.Tensor(_contextIndex) : [], _chunk);
        }

        PreprocessMilliseconds = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    private void ReadResult()
    {
        ResultIsFinite = SequenceScores.IsAllFinite(_result);
        if (!ResultIsFinite)
        {
            Score = double.NaN;
            Transition = TriggerTransition.None;
            return;
        }

        if (_output.Softmax)
        {
            // Logits in, probabilities out: what is published as probabilities and score is a probability.
            SequenceScores.SoftmaxInPlace(_result);
        }

        TopClass = SequenceScores.TopIndex(_result);
        switch (_output.Task)
        {
            case ModelTask.SequenceScore:
                Score = _result[0];
                break;
            case ModelTask.SequenceReconstruction:
                Score = SequenceScores.MeanSquareError(_result, _chunk);
                break;
            case ModelTask.SequenceForecast:
                // The forecast made at the previous step against what came; then keep this step's forecast for the next.
                var previous = State.Tensor(_forecastIndex);
                Score = State.Steps > 1 ? SequenceScores.MeanSquareError(previous, _chunk) : double.NaN;
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
}
