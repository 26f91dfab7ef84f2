using System.Diagnostics;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Sequence;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// The per-step work for one stream, shared by the daemon and the <c>evaluate</c> command:
/// normalise one chunk of interleaved samples into the model's layout, run one step with this
/// stream's own state, and keep the result. The model may be shared by several streams (calls are
/// serialised on a lock shared by those streams); the state never is.
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

    public SensorStreamProcessor(string streamId, SequenceModel model, object modelLock, ManifestStreamInput stream, IReadOnlyList<string> labels, StepBatcher? batcher = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(stream);
        _model = model;
        _modelLock = modelLock;
        _channels = stream.Channels.Count;
        _chunkSamples = stream.ChunkSamples;
        if (_channels * _chunkSamples != model.ChunkLength)
        {
            throw new StartupException(
                $"Model '{model.Id}': manifest stream says {_channels} channels × {_chunkSamples} samples but input '{model.StreamInput}' takes {model.ChunkLength} values per step",
                StartupException.ConfigError);
        }

        if (labels.Count != model.ResultLength)
        {
            throw new StartupException($"Model '{model.Id}': {labels.Count} labels but output '{model.ResultOutput}' has {model.ResultLength} values per step", StartupException.ConfigError);
        }

        StreamId = streamId;
        Labels = labels;
        State = model.CreateState(streamId);
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

    /// <summary>The last step's output (class probabilities).</summary>
    public ReadOnlySpan<float> Result => _result;

    /// <summary>Index of the largest value of the last result.</summary>
    public int TopClass { get; private set; }

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
        FindTop();
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
        FindTop();
        return milliseconds;
    }

    private void Normalize(ReadOnlySpan<float> interleaved)
    {
        for (var s = 0; s < _chunkSamples; s++)
        {
            for (var c = 0; c < _channels; c++)
            {
                var v = (interleaved[(s * _channels) + c] * _scale[c]) + _offset[c];
                _chunk[_channelMajor ? (c * _chunkSamples) + s : (s * _channels) + c] = v;
            }
        }
    }

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
        return !(shape.Count >= 2 && stream.ChunkSamples != stream.Channels.Count
            && shape[^2] == stream.ChunkSamples && shape[^1] == stream.Channels.Count);
    }
}
