using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Sequence;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service.Diagnostics;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// One sensor stream's loop: read blocks from the source, resample them to the model's rate when the
/// source runs at another, cut them into the model's chunks, step the model with this stream's state,
/// publish each step. Buffers are allocated once.
/// </summary>
internal sealed partial class StreamRunner : IAsyncDisposable
{
    // What it runs: the source, the model step, and where results go.
    private readonly string _streamId;
    private readonly ISensorSource _source;
    private SequenceStreamProcessor _processor;
    private SensorResultWriter _writer;
    private StreamModelSwap? _pendingSwap;
    private readonly IResultPublisher _publisher;
    private readonly string _topic;
    private readonly string _eventTopic;
    private readonly TimeProvider _timeProvider;
    private readonly EdgeRunnerMetrics? _metrics;

    // Samples in: the block read from the source, the invalid-sample policy, the chunks for the model, their times.
    private readonly float[] _block;
    private readonly SampleValidation _validation;
    private readonly float[] _lastGood;
    private readonly ChunkAssembler _chunks;
    private readonly StreamWindowClock _clock;
    private DateTimeOffset? _resumedAfter;
    private long _sourceSamples;
    private string? _requestedReset;

    // Checkpoints.
    private readonly StreamCheckpointing? _checkpointing;
    private long _lastCheckpoint;
    private int _lastCheckpointWritten;

    // Logging.
    private readonly ILogger _logger;
    private readonly TimeSpan _logInterval;
    private long _lastLog = long.MinValue / 2;

    // Counters (for tests and metrics) and runs of the loop.
    private long _steps;
    private long _invalidSamples;
    private long _stateResets;
    private long _nonFiniteOutputs;
    private long _checkpointFailures;
    private long _checkpointsWritten;
    private long _unexpectedErrors;
    private int _runs;
    private long _stepsBegun;
    private long _stepInProgress;

    public StreamRunner(
        string streamId,
        ISensorSource source,
        SequenceStreamProcessor processor,
        double modelRateHz,
        SensorResultWriter writer,
        IResultPublisher publisher,
        string topic,
        string eventTopic,
        TimeSpan logInterval,
        TimeProvider timeProvider,
        ILogger logger,
        StreamCheckpointing? checkpointing = null,
        SampleValidation? validation = null,
        EdgeRunnerMetrics? metrics = null)
    {
        _streamId = streamId;
        _metrics = metrics;
        _checkpointing = checkpointing;
        _validation = validation ?? SampleValidation.Default;
        _lastGood = new float[processor.Channels];
        _source = source;
        _processor = processor;
        _writer = writer;
        _publisher = publisher;
        _topic = topic;
        _eventTopic = eventTopic;
        _logInterval = logInterval;
        _timeProvider = timeProvider;
        _logger = logger;
        var blockSamples = processor.ChunkSamples;
        _block = new float[blockSamples * processor.Channels];
        _chunks = new ChunkAssembler(processor.Channels, processor.ChunkSamples, blockSamples, source.SampleRateHz, modelRateHz);
        _clock = new StreamWindowClock(modelRateHz);
    }

    public string StreamId => _streamId;

    public SequenceStreamProcessor Processor => Volatile.Read(ref _processor);

    /// <summary>
    /// Hands over a reloaded model's processor: the stream's own loop takes it before its next step (the step in
    /// flight finishes on the old model), carrying the state over or resetting it as <paramref name="swap"/> says.
    /// A swap offered before the last one was taken supersedes it.
    /// </summary>
    internal void OfferModel(StreamModelSwap swap)
    {
        if (Interlocked.Exchange(ref _pendingSwap, swap) is { } superseded)
        {
            superseded.Writer.Dispose();
            superseded.Taken(this, false);
        }
    }

    /// <summary>Takes an offered model swap. Only on the stream's loop, between steps.</summary>
    private void ApplyModelSwap()
    {
        if (Interlocked.Exchange(ref _pendingSwap, null) is not { } swap)
        {
            return;
        }

        var old = _processor;
        if (swap.ResetReason is { } reason)
        {
            // Published and counted like any other reset; the samples waiting for the next chunk stay.
            ResetStream($"a model reload ({reason})", dropPending: false);
        }
        else
        {
            old.State.CopyTo(swap.Processor.State);
            swap.Processor.StateRestored();
        }

        var oldWriter = _writer;
        Volatile.Write(ref _processor, swap.Processor);
        _writer = swap.Writer;
        oldWriter.Dispose();
        swap.Taken(this, true);
    }

    /// <summary>Steps run (results published).</summary>
    public long Steps => Interlocked.Read(ref _steps);

    /// <summary>
    /// The number (from 1) of the model step this stream's loop is in now; 0 while it is in none (waiting
    /// for samples, publishing). The same number on successive health checks is one step that has not
    /// finished: a hung model, told apart from a stream that merely has no input.
    /// </summary>
    public long StepInProgress => Interlocked.Read(ref _stepInProgress);

    /// <summary>Samples outside the stream's bounds or not finite (each then held, dropped or reset by the policy).</summary>
    public long InvalidSamples => Interlocked.Read(ref _invalidSamples);

    /// <summary>State resets so far (gaps, invalid samples, commands).</summary>
    public long StateResets => Interlocked.Read(ref _stateResets);

    /// <summary>Unexpected errors that ended a run of this stream's loop (each followed by a restart).</summary>
    public long UnexpectedErrors => Interlocked.Read(ref _unexpectedErrors);

    /// <summary>Counts an unexpected error of the loop; returns the count so far.</summary>
    internal long RecordUnexpectedError() => Interlocked.Increment(ref _unexpectedErrors);

    /// <summary>
    /// Before <see cref="RunAsync"/> runs again after an unexpected error: the state that error may have
    /// interrupted mid-step is not trusted, so it starts afresh (a reset, published like any other), and
    /// the samples waiting for the next chunk go with it.
    /// </summary>
    internal void PrepareRestart(string reason) => ResetStream(reason);

    /// <summary>Checkpoints that could not be written (each logged as an error with the file and the reason).</summary>
    public long CheckpointFailures => Interlocked.Read(ref _checkpointFailures);

    /// <summary>Checkpoints written.</summary>
    public long CheckpointsWritten => Interlocked.Read(ref _checkpointsWritten);

    /// <summary>Whether the latest checkpoint (the final one, once the loop has ended) was written; false when none was attempted.</summary>
    public bool LastCheckpointWritten => Volatile.Read(ref _lastCheckpointWritten) != 0;

    /// <summary>Called on the stream's loop once a <see cref="RequestReset"/> has been applied (to acknowledge it).</summary>
    public Action<StreamRunner, string>? ResetApplied { get; set; }

    /// <summary>Asks for a reset of the state and the pending partial chunk; applied by the stream's own loop before its next block.</summary>
    public void RequestReset(string reason) => Volatile.Write(ref _requestedReset, reason);

    /// <summary>Applies a requested reset. Only on the stream's loop (or from its source's ReadAsync, which that loop is awaiting).</summary>
    internal void ApplyRequestedReset()
    {
        if (Interlocked.Exchange(ref _requestedReset, null) is { } reason)
        {
            ResetStream($"a reset command ({reason})");
            ResetApplied?.Invoke(this, reason);
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        LogStarted(_logger, _streamId, _source.Description, _processor.Model.Id, _topic);
        var channels = _processor.Channels;
        var chunk = _processor.ChunkSamples;
        _lastCheckpoint = _timeProvider.GetTimestamp();
        // Only the first run resumes from the checkpoint: a run after an unexpected error goes on from where the loop was.
        if (_runs++ == 0 && _checkpointing is { ResumeSourceSamples: > 0 } resume)
        {
            // Continue where the checkpoint left off: the same step numbers, and for a replayable
            // source the same samples (a live sensor simply goes on).
            _steps = _processor.State.Steps;
            _clock.Resume(_steps * chunk);
            _sourceSamples = resume.ResumeSourceSamples;
            _chunks.RestoreState(resume.RunnerState);
            if (_source is IResumableSensorSource resumable)
            {
                await resumable.SeekAsync(resume.ResumeSourceSamples, cancellationToken);
            }
            else
            {
                // A live source goes on from now: the time since the checkpoint is a gap like any other.
                _resumedAfter = resume.LastSampleTime;
            }
        }

        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var block = await _source.ReadAsync(_block, cancellationToken);
                ApplyRequestedReset();
                if (Volatile.Read(ref _pendingSwap) is not null)
                {
                    ApplyModelSwap();
                }

                if (block.Samples == 0)
                {
                    LogSourceEnded(_logger, _streamId);
                    return;
                }

                if (!_clock.Started)
                {
                    // Window stamps follow the model-rate sample clock; a resumed stream's clock started
                    // its sample index before this block, not at it.
                    _clock.Anchor(block.FirstSampleTime);
                    if (_resumedAfter is { } last && IsGap(block.FirstSampleTime - last))
                    {
                        // Before the clock has started: an event this reset publishes is stamped with the checkpoint's last sample.
                        ResetStream($"a {(block.FirstSampleTime - last).TotalSeconds:0.0} s gap since the checkpoint");
                    }
                }
                else if (IsGap(block.FirstSampleTime - _clock.ExpectedNextSample))
                {
                    // The window clock jumps with the samples (re-anchored at this block by the reset).
                    ResetStream($"a {(block.FirstSampleTime - _clock.ExpectedNextSample).TotalSeconds:0.0} s gap in the samples");
                }

                _clock.BlockRead(block.FirstSampleTime, TimeSpan.FromSeconds(block.Samples / _source.SampleRateHz));
                var kept = Sanitize(_block.AsSpan(0, block.Samples * channels), block.FirstSampleTime);
                _clock.ApplyRestart();
                _chunks.Append(_block.AsSpan(0, kept * channels));
                _sourceSamples += block.Samples;
                while (_chunks.HasChunk)
                {
                    // One block can hold thousands of steps (a slow source upsampled to a fast model): a stop
                    // is honoured between steps, not after the block, so shutdown stays prompt under any load.
                    cancellationToken.ThrowIfCancellationRequested();
                    Interlocked.Exchange(ref _stepInProgress, ++_stepsBegun);
                    var latency = await _processor.StepAsync(_chunks.Chunk);
                    Interlocked.Exchange(ref _stepInProgress, 0);
                    if (_processor.ResultIsFinite)
                    {
                        Publish(latency);
                    }
                    else
                    {
                        // NaN/Inf out of the model (overflowed on extreme input): its state is poisoned too.
                        // Nothing is published for this chunk; the state starts afresh and the stream says
                        // so, keeping the samples after the chunk and the window clock.
                        _nonFiniteOutputs++;
                        _clock.SkipWindow(chunk);
                        ResetStream("a non-finite model output", dropPending: false);
                    }

                    _chunks.ConsumeChunk();
                }

                if (_checkpointing is not null && _timeProvider.GetElapsedTime(_lastCheckpoint) >= _checkpointing.Interval)
                {
                    Checkpoint();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
        finally
        {
            // A step that threw is over too.
            Interlocked.Exchange(ref _stepInProgress, 0);
            // On stop or end: the state survives a restart.
            if (_checkpointing is not null)
            {
                Checkpoint();
            }
        }
    }

    /// <summary>Applies the invalid-sample policy in place; returns how many samples remain.</summary>
    private int Sanitize(Span<float> samples, DateTimeOffset firstSampleTime)
    {
        var channels = _processor.Channels;
        var count = samples.Length / channels;
        var kept = 0;
        for (var i = 0; i < count; i++)
        {
            var sample = samples.Slice(i * channels, channels);
            var valid = true;
            foreach (var v in sample)
            {
                valid &= float.IsFinite(v) && v >= _validation.MinValue && v <= _validation.MaxValue;
            }

            if (!valid)
            {
                // Interlocked: read by the metrics while the loop writes it (a long can tear on a 32-bit board).
                Interlocked.Increment(ref _invalidSamples);
                if (_invalidSamples <= 10 || _invalidSamples % 1000 == 0)
                {
                    LogInvalidSample(_logger, _streamId, _invalidSamples, _validation.Policy.ToString());
                }

                switch (_validation.Policy)
                {
                    case Configuration.InvalidSamplePolicy.Drop:
                        // The samples after it are one period later than the clock would say.
                        _clock.SampleDropped(TimeSpan.FromSeconds(1 / _source.SampleRateHz));
                        continue;
                    case Configuration.InvalidSamplePolicy.Reset:
                        // Everything before the bad sample goes, this block's kept samples included:
                        // the fresh state starts at the sample after it, and so does the window clock.
                        ResetStream("an invalid sample");
                        kept = 0;
                        _clock.RestartAt(firstSampleTime + TimeSpan.FromSeconds((i + 1) / _source.SampleRateHz));
                        continue;
                    default:
                        // Hold: each bad channel repeats its last good value (0 before the first).
                        for (var c = 0; c < channels; c++)
                        {
                            var v = sample[c];
                            if (!(float.IsFinite(v) && v >= _validation.MinValue && v <= _validation.MaxValue))
                            {
                                sample[c] = _lastGood[c];
                            }
                        }

                        break;
                }
            }

            sample.CopyTo(_lastGood);
            if (kept != i)
            {
                sample.CopyTo(samples.Slice(kept * channels, channels));
            }

            kept++;
        }

        return kept;
    }

    /// <summary>A jump in the sample times, either way (a clock stepped back is as stale as one that jumped ahead), beyond the stream's limit.</summary>
    private bool IsGap(TimeSpan jump) => _validation.GapResetSeconds > 0 && Math.Abs(jump.TotalSeconds) > _validation.GapResetSeconds;

    /// <summary>The time to stamp an event with: the last sample's, else the restored checkpoint's, else now.</summary>
    private DateTimeOffset LastKnownSampleTime => _clock.Started ? _clock.ExpectedNextSample : _checkpointing?.LastSampleTime ?? _timeProvider.GetUtcNow();

    private void ResetStream(string reason, bool dropPending = true)
    {
        if (_processor.Reset())
        {
            // A raised condition must not stay latched at the subscriber: the reset clears it.
            _publisher.TryPublish(_eventTopic, _writer.WriteEvent(Interlocked.Read(ref _steps) - 1, LastKnownSampleTime, _processor, TriggerTransition.Cleared, $"reset: {reason}"));
        }

        if (dropPending)
        {
            _chunks.Clear();
            _clock.RestartAtNextBlock();
        }

        Interlocked.Increment(ref _stateResets);
        LogStateReset(_logger, _streamId, reason, _stateResets);
    }

    private void Checkpoint()
    {
        _lastCheckpoint = _timeProvider.GetTimestamp();
        // The samples waiting for the next chunk and the resampler's grid go into the checkpoint, so
        // the source resumes after the last sample consumed and a resampled stream continues exactly.
        var position = _sourceSamples;
        var runnerState = _chunks.SaveState();
        try
        {
            // Not started since a restore: keep the restored time, so the gap rule still applies after another restart.
            StreamCheckpoint.Write(_checkpointing!.Path, _processor.Model.Sha256, _processor.State, position, _clock.Started ? _clock.ExpectedNextSample : _checkpointing.LastSampleTime, runnerState);
            Interlocked.Increment(ref _checkpointsWritten);
            Volatile.Write(ref _lastCheckpointWritten, 1);
        }
#pragma warning disable CA1031 // A checkpoint that cannot be written (full disk, name too long, a folder in the way, a bad path) is reported and counted; the stream goes on and tries again next interval.
        catch (Exception ex) when (ex is not (OutOfMemoryException or StackOverflowException or AccessViolationException))
#pragma warning restore CA1031
        {
            Volatile.Write(ref _lastCheckpointWritten, 0);
            var failures = Interlocked.Increment(ref _checkpointFailures);
            if (failures <= 10 || failures % 100 == 0)
            {
                LogCheckpointFailed(_logger, _streamId, _checkpointing!.Path, ex.Message, failures);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _source.DisposeAsync();
        _writer.Dispose();
        if (Interlocked.Exchange(ref _pendingSwap, null) is { } untaken)
        {
            untaken.Writer.Dispose();
            untaken.Taken(this, false);
        }
    }

    private void Publish(double latency)
    {
        var sequence = Interlocked.Increment(ref _steps) - 1;
        _metrics?.RecordInference(EdgeRunnerMetrics.StreamTag, _streamId, latency);
        var (start, end) = _clock.NextWindow(_processor.ChunkSamples);
        var replayedAt = _writer.RecordingTime ? _timeProvider.GetUtcNow() : default;
        _publisher.TryPublish(_topic, _writer.Write(sequence, start, end, _processor.ChunkSamples, _processor, latency, _invalidSamples, _stateResets, _nonFiniteOutputs, replayedAt));
        if (_processor.Transition != TriggerTransition.None)
        {
            _publisher.TryPublish(_eventTopic, _writer.WriteEvent(sequence, end, _processor, _processor.Transition));
            LogTransition(_logger, _streamId, _processor.Transition == TriggerTransition.Raised ? "raised" : "cleared", sequence, _processor.Score);
        }

        MaybeLog(sequence, latency);
    }

    private void MaybeLog(long sequence, double latencyMs)
    {
        var now = _timeProvider.GetTimestamp();
        if ((now - _lastLog) < (long)(_logInterval.TotalSeconds * _timeProvider.TimestampFrequency) || !_logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        _lastLog = now;
        if (_processor.Task == ModelTask.SequenceClassification)
        {
            LogResult(_logger, _streamId, sequence, _processor.Labels[_processor.TopClass], _processor.Result[_processor.TopClass], latencyMs);
        }
        else
        {
            LogScore(_logger, _streamId, sequence, _processor.Score, _processor.Trigger?.Active ?? false, latencyMs);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: event {Event} at step {Sequence}, score {Score:0.000}")]
    private static partial void LogTransition(ILogger logger, string streamId, string @event, long sequence, double score);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: {Source} → model {ModelId} → {Topic}")]
    private static partial void LogStarted(ILogger logger, string streamId, string source, string modelId, string topic);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId} step {Sequence}: {Label} {Score:0.000} ({LatencyMs:0.00} ms)")]
    private static partial void LogResult(ILogger logger, string streamId, long sequence, string label, float score, double latencyMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId} step {Sequence}: score {Score:0.000}, active {Active} ({LatencyMs:0.00} ms)")]
    private static partial void LogScore(ILogger logger, string streamId, long sequence, double score, bool active, double latencyMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor {StreamId}: invalid sample ({Count} so far), policy {Policy}")]
    private static partial void LogInvalidSample(ILogger logger, string streamId, long count, string policy);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor {StreamId}: state reset after {Reason} ({Count} resets so far)")]
    private static partial void LogStateReset(ILogger logger, string streamId, string reason, long count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sensor {StreamId}: cannot write checkpoint {Path}: {Reason} ({Failures} checkpoint writes failed so far)")]
    private static partial void LogCheckpointFailed(ILogger logger, string streamId, string path, string reason, long failures);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {StreamId}: source ended")]
    private static partial void LogSourceEnded(ILogger logger, string streamId);
}

/// <summary>Where and how often a stream checkpoints its state, and where a restored checkpoint resumes.</summary>
/// <param name="Path">The checkpoint file.</param>
/// <param name="Interval">Time between periodic checkpoints.</param>
/// <param name="ResumeSourceSamples">Source position of a restored checkpoint (0: none restored).</param>
/// <param name="LastSampleTime">Time of the last sample the restored state had seen, when known.</param>
/// <param name="RunnerState">The runner's own state from the checkpoint (resampler grid, samples waiting for the next chunk), when it has one.</param>
internal sealed record StreamCheckpointing(string Path, TimeSpan Interval, long ResumeSourceSamples, DateTimeOffset? LastSampleTime = null, double[]? RunnerState = null);

/// <summary>What counts as a valid sample and what happens to the others.</summary>
internal sealed record SampleValidation(Configuration.InvalidSamplePolicy Policy, float MinValue, float MaxValue, double GapResetSeconds)
{
    public static SampleValidation Default { get; } = new(Configuration.InvalidSamplePolicy.Hold, float.MinValue, float.MaxValue, 0);
}

/// <summary>A reloaded model's processor for one stream, handed to <see cref="StreamRunner.OfferModel"/>.</summary>
/// <param name="Processor">The stream's processor on the new model (fresh state).</param>
/// <param name="Writer">The result writer naming the new model.</param>
/// <param name="ResetReason">Null: the state carries over (the new manifest declares it compatible and the tensors match); else why it is reset.</param>
/// <param name="Taken">Called once on the stream's loop with true when the swap took effect, or false when it never will (superseded, stream disposed).</param>
internal sealed record StreamModelSwap(SequenceStreamProcessor Processor, SensorResultWriter Writer, string? ResetReason, Action<StreamRunner, bool> Taken);
