using System.Diagnostics;
using System.Threading.Channels;
using System.Threading.Tasks.Sources;
namespace EdgeRunner.Models.Sequence;

/// <summary>
/// One step of one stream, waiting to be batched. Each stream owns one request and reuses it for
/// every step (it awaits the previous step before submitting the next, so a stream is never twice in
/// a batch); the request is its own awaitable, so a step allocates nothing.
/// </summary>
public sealed class StepRequest(StreamState state, float[] chunk, float[] result) : IValueTaskSource<double>
{
    private ManualResetValueTaskSourceCore<double> _completion = new() { RunContinuationsAsynchronously = true };

    /// <summary>The stream's state, gathered into the batch and scattered back.</summary>
    public StreamState State => state;

    /// <summary>The model input of this step.</summary>
    public float[] Chunk => chunk;

    /// <summary>Where the step's output is copied.</summary>
    public float[] Result => result;

    /// <summary>Arms the request for one step; the returned task completes with the milliseconds of the run.</summary>
    public ValueTask<double> Start()
    {
        _completion.Reset();
        return new ValueTask<double>(this, _completion.Version);
    }

    /// <summary>Whether the step has been started and not yet completed or failed.</summary>
    public bool IsPending => _completion.GetStatus(_completion.Version) == ValueTaskSourceStatus.Pending;

    /// <summary>Completes the step with the milliseconds of its run.</summary>
    public void Complete(double milliseconds) => _completion.SetResult(milliseconds);

    /// <summary>Fails the step.</summary>
    public void Fail(Exception exception) => _completion.SetException(exception);

    /// <inheritdoc/>
    public double GetResult(short token) => _completion.GetResult(token);

    /// <inheritdoc/>
    public ValueTaskSourceStatus GetStatus(short token) => _completion.GetStatus(token);

    /// <inheritdoc/>
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _completion.OnCompleted(continuation, state, token, flags);
}

/// <summary>
/// Batches the steps of all streams of one model, as Triton's sequence batcher does: whatever steps
/// are waiting (up to <c>maxBatch</c>, after an optional short wait for more) run in one ONNX Runtime
/// call, each stream's state gathered along the model's batch axis and scattered back. Streams that
/// arrive alone run alone. One worker per model, so the session is never used concurrently.
/// </summary>
public sealed class StepBatcher : IAsyncDisposable
{
    private readonly SequenceModel _model;
    private readonly int _maxBatch;
    private readonly TimeSpan _maxWait;
    private readonly TimeProvider _timeProvider;
    private readonly Func<int, TimeSpan> _restartDelay;
    private readonly Channel<StepRequest> _requests = Channel.CreateUnbounded<StepRequest>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<StepRequest> _batch = [];
    private readonly List<StreamState> _states = [];
    private readonly float[] _chunks;
    private readonly float[] _results;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _worker;
    private long _runs;
    private long _workerFailures;
    private Exception? _failure;
    private long _steps;

    /// <summary>
    /// Starts the batcher's worker for <paramref name="model"/>: at most <paramref name="maxBatch"/> steps a
    /// run, waiting up to <paramref name="maxWait"/> for more; after the n-th unexpected failure of its loop
    /// in a row it waits <paramref name="restartDelay"/>(n) (the host's backoff rule) before running again.
    /// </summary>
    public StepBatcher(SequenceModel model, int maxBatch, TimeSpan maxWait, TimeProvider timeProvider, Func<int, TimeSpan> restartDelay)
    {
        ArgumentNullException.ThrowIfNull(model);
        _restartDelay = restartDelay;
        _model = model;
        _maxBatch = maxBatch;
        _maxWait = maxWait;
        _timeProvider = timeProvider;
        _chunks = new float[maxBatch * model.ChunkLength];
        _results = new float[maxBatch * model.ResultLength];
        _worker = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>ONNX Runtime calls made.</summary>
    public long Runs => Interlocked.Read(ref _runs);

    /// <summary>Stream steps run (Steps / Runs is the mean batch size).</summary>
    public long Steps => Interlocked.Read(ref _steps);

    /// <summary>Queues a step; completes with the milliseconds of the batched run it went into.</summary>
    public ValueTask<double> StepAsync(StepRequest request)
    {
        var pending = request.Start();
        if (!_requests.Writer.TryWrite(request))
        {
            // Stopping: the stream stops with it. Failed: the stream fails loudly, never waits forever.
            request.Fail(_failure is { } failure
                ? new InvalidOperationException($"The step batcher of model '{_model.Id}' failed: {failure.Message}", failure)
                : new OperationCanceledException("The model's step batcher has stopped."));
        }

        return pending;
    }

    /// <summary>Stops the worker and waits for it to end.</summary>
    public async ValueTask DisposeAsync()
    {
        _requests.Writer.TryComplete();
        await _stopping.CancelAsync();
        try
        {
            await _worker;
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }

        _stopping.Dispose();
    }

    /// <summary>Unexpected failures of the worker loop itself (not of a model run), each followed by a restart of the loop.</summary>
    public long WorkerFailures => Interlocked.Read(ref _workerFailures);

    /// <summary>
    /// The worker, supervised: an unexpected error of the loop (outside a model run, which only fails its
    /// own steps) fails the steps taken into the batch, whose streams report it and restart, and the loop
    /// runs again after the restart delay (the code base's one backoff rule, given by the host); the queued steps wait for it. Only the fatal
    /// runtime errors end it, and then no stream is left waiting on a dead worker.
    /// </summary>
    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var failuresInARow = 0;
        while (true)
        {
            var runsBefore = Runs;
            try
            {
                await BatchLoopAsync(cancellationToken);
                return;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex) when (ex is OutOfMemoryException or StackOverflowException or AccessViolationException)
            {
                // Never leave a stream waiting on a dead worker: refuse new steps, fail the taken and the queued ones.
                _failure = ex;
                _requests.Writer.TryComplete(ex);
                FailTaken(ex);
                while (_requests.Reader.TryRead(out var request))
                {
                    request.Fail(new InvalidOperationException($"The step batcher of model '{_model.Id}' failed: {ex.Message}", ex));
                }

                throw;
            }
#pragma warning disable CA1031 // Supervision of the model's one worker: any other error restarts it, or every stream of the model would stop.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Interlocked.Increment(ref _workerFailures);
                FailTaken(ex);
                failuresInARow = Runs > runsBefore ? 1 : failuresInARow + 1;
                await Task.Delay(_restartDelay(failuresInARow), _timeProvider, cancellationToken);
            }
        }
    }

    private void FailTaken(Exception ex)
    {
        var failure = new InvalidOperationException($"The step batcher of model '{_model.Id}' failed: {ex.Message}", ex);
        foreach (var request in _batch)
        {
            if (request.IsPending)
            {
                request.Fail(failure);
            }
        }

        _batch.Clear();
        _states.Clear();
    }

    private async Task BatchLoopAsync(CancellationToken cancellationToken)
    {
        var reader = _requests.Reader;
        while (await reader.WaitToReadAsync(cancellationToken))
        {
            if (_maxWait > TimeSpan.Zero && !(reader.CanCount && reader.Count >= _maxBatch))
            {
                // Give streams that are about to submit a moment to join this batch.
                await Task.Delay(_maxWait, _timeProvider, cancellationToken);
            }

            _batch.Clear();
            _states.Clear();
            while (_batch.Count < _maxBatch && reader.TryRead(out var request))
            {
                // Taken into the batch first: should anything below throw, the supervision fails it instead of losing it.
                _batch.Add(request);
                _states.Add(request.State);
                request.Chunk.CopyTo(_chunks, (_batch.Count - 1) * _model.ChunkLength);
            }

            var count = _batch.Count;
            var start = Stopwatch.GetTimestamp();
            try
            {
                _model.StepBatch(_states, _chunks.AsSpan(0, count * _model.ChunkLength), _results.AsSpan(0, count * _model.ResultLength));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One bad run fails the steps in it (their streams report it); the batcher goes on for the next.
                foreach (var request in _batch)
                {
                    request.Fail(ex);
                }

                continue;
            }

            var milliseconds = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            Interlocked.Increment(ref _runs);
            Interlocked.Add(ref _steps, count);
            for (var i = 0; i < count; i++)
            {
                _results.AsSpan(i * _model.ResultLength, _model.ResultLength).CopyTo(_batch[i].Result);
                _batch[i].Complete(milliseconds);
            }
        }
    }
}
