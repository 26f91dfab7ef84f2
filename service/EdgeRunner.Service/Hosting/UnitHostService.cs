using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service;

/// <summary>
/// Hosts independent units (camera pipelines, sensor streams): creates them all before anything
/// starts, so a bad model or source fails startup with one clear line; runs each on its own loop;
/// keeps one unit's crash from touching the others; on stop (or a dispose without stop) cancels the
/// loops, waits for them, and only then disposes the units and what they share. Units may also be
/// added while running (streams that appear at run time) and removed when their loop ends.
/// Units supervise themselves (a frame or sample that throws is dropped and counted; a source that fails
/// is restarted with backoff), so an exception that still escapes a unit's loop is a bug the unit could
/// not contain: the daemon then stops with <see cref="SupervisionFailedExitCode"/>, and systemd
/// (<c>Restart=on-failure</c>) starts it again from a clean state, rather than running on with a unit
/// silently gone.
/// </summary>
internal abstract class UnitHostService<TUnit> : IHostedService, IAsyncDisposable
    where TUnit : class, IAsyncDisposable
{
    private readonly List<TUnit> _units = [];
    private readonly List<Task> _running = [];
    private readonly CancellationTokenSource _stopping = new();
    // Guards _units and _running: units come and go at run time (dynamic sensor streams).
    private readonly Lock _lock = new();
    private bool _started;
    private bool _prepared;
    private readonly IHostApplicationLifetime? _lifetime;
    private int _disposed;

    /// <summary>EX_SOFTWARE: a unit's loop failed in a way its own supervision could not handle.</summary>
    public const int SupervisionFailedExitCode = 70;

    protected UnitHostService(ILogger logger, IHostApplicationLifetime? lifetime = null)
    {
        Logger = logger;
        _lifetime = lifetime;
    }

    protected ILogger Logger { get; }

    /// <summary>The units (for tests and metrics).</summary>
    internal IReadOnlyList<TUnit> Units
    {
        get
        {
            lock (_lock)
            {
                return [.. _units];
            }
        }
    }

    /// <summary>Creates every unit without starting any. Called by the daemon before the host starts; <see cref="StartAsync"/> calls it when nobody did.</summary>
    /// <exception cref="StartupException">A unit cannot be created.</exception>
    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (_prepared)
        {
            return;
        }

        // Units created before one fails are kept, so DisposeAsync releases them.
        await foreach (var unit in CreateUnitsAsync(cancellationToken))
        {
            lock (_lock)
            {
                _units.Add(unit);
            }
        }

        _prepared = true;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await PrepareAsync(cancellationToken);
        lock (_lock)
        {
            foreach (var unit in _units)
            {
                _running.Add(RunGuardedAsync(unit, _stopping.Token));
            }

            _started = true;
        }

        OnStarted();
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await Task.WhenAll(Running()).WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Disposed without a stop (the host failed or was torn down): stop the loops before their resources go.
        await _stopping.CancelAsync();
        await Task.WhenAll(Running());
        List<TUnit> units;
        lock (_lock)
        {
            // Taken out under the lock: a unit removed at the same moment (TryRemoveUnit) is disposed by its remover.
            units = [.. _units];
            _units.Clear();
        }

        foreach (var unit in units)
        {
            await unit.DisposeAsync();
        }

        await DisposeSharedAsync();
        _stopping.Dispose();
    }

    /// <summary>
    /// Creates the units (lazily is fine), asynchronously: releasing what a failed unit had opened (a source,
    /// a capture process) is asynchronous, and startup must not block a thread on it. Throws
    /// <see cref="StartupException"/> naming the configuration key.
    /// </summary>
    protected abstract IAsyncEnumerable<TUnit> CreateUnitsAsync(CancellationToken cancellationToken);

    /// <summary>Runs one unit until <paramref name="cancellationToken"/> or its own end.</summary>
    protected abstract Task RunUnitAsync(TUnit unit, CancellationToken cancellationToken);

    /// <summary>The unit's name for logs ("camera front").</summary>
    protected abstract string Describe(TUnit unit);

    /// <summary>Called once every unit created up front runs; units added from here on start at once.</summary>
    protected virtual void OnStarted()
    {
    }

    /// <summary>
    /// Adds a unit after start and runs it like the others. Returns the task of its guarded loop
    /// (never faults), or null when the service is not running (the caller keeps and disposes the unit).
    /// </summary>
    protected Task? TryRunUnit(TUnit unit)
    {
        lock (_lock)
        {
            if (!_started || _stopping.IsCancellationRequested)
            {
                return null;
            }

            // Finished loops of units that came and went are not kept forever.
            _running.RemoveAll(t => t.IsCompleted);
            _units.Add(unit);
            var running = RunGuardedAsync(unit, _stopping.Token);
            _running.Add(running);
            return running;
        }
    }

    /// <summary>Takes a unit whose loop has ended out of the list; true when the caller now owns (and must dispose) it.</summary>
    protected bool TryRemoveUnit(TUnit unit)
    {
        lock (_lock)
        {
            return _units.Remove(unit);
        }
    }

    /// <summary>Releases what the units share (loaded models), after the units.</summary>
    protected virtual ValueTask DisposeSharedAsync() => ValueTask.CompletedTask;

    private Task[] Running()
    {
        lock (_lock)
        {
            return [.. _running];
        }
    }

    private async Task RunGuardedAsync(TUnit unit, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Run(() => RunUnitAsync(unit, cancellationToken), CancellationToken.None);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            var name = Describe(unit);
            UnitHostLog.UnitCrashed(Logger, name, SupervisionFailedExitCode, ex);
            if (_lifetime is not null && !cancellationToken.IsCancellationRequested)
            {
                Environment.ExitCode = SupervisionFailedExitCode;
                _lifetime.StopApplication();
            }
        }
    }
}

internal static partial class UnitHostLog
{
    [LoggerMessage(Level = LogLevel.Critical, Message = "{Unit} failed beyond its own supervision; stopping the daemon with exit code {ExitCode} so that it is restarted clean")]
    public static partial void UnitCrashed(ILogger logger, string unit, int exitCode, Exception exception);
}
