using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service;

/// <summary>
/// Hosts independent units (camera pipelines, sensor streams): creates them all before anything
/// starts, so a bad model or source fails startup with one clear line; runs each on its own loop;
/// keeps one unit's crash from touching the others; on stop (or a dispose without stop) cancels the
/// loops, waits for them, and only then disposes the units and what they share.
/// </summary>
internal abstract class UnitHostService<TUnit> : IHostedService, IAsyncDisposable
    where TUnit : class, IAsyncDisposable
{
    private readonly List<TUnit> _units = [];
    private readonly List<Task> _running = [];
    private readonly CancellationTokenSource _stopping = new();
    private bool _prepared;
    private int _disposed;

    protected UnitHostService(ILogger logger) => Logger = logger;

    protected ILogger Logger { get; }

    /// <summary>The units (for tests and metrics).</summary>
    internal IReadOnlyList<TUnit> Units => _units;

    /// <summary>Creates every unit without starting any. Called by the daemon before the host starts; <see cref="StartAsync"/> calls it when nobody did.</summary>
    /// <exception cref="StartupException">A unit cannot be created.</exception>
    public void Prepare()
    {
        if (_prepared)
        {
            return;
        }

        // Units created before one fails are kept, so DisposeAsync releases them.
        foreach (var unit in CreateUnits())
        {
            _units.Add(unit);
        }

        _prepared = true;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Prepare();
        foreach (var unit in _units)
        {
            _running.Add(RunGuardedAsync(unit, _stopping.Token));
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await Task.WhenAll(_running).WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Disposed without a stop (the host failed or was torn down): stop the loops before their resources go.
        await _stopping.CancelAsync();
        await Task.WhenAll(_running);
        foreach (var unit in _units)
        {
            await unit.DisposeAsync();
        }

        await DisposeSharedAsync();
        _stopping.Dispose();
    }

    /// <summary>Creates the units (lazily is fine). Throws <see cref="StartupException"/> naming the configuration key.</summary>
    protected abstract IEnumerable<TUnit> CreateUnits();

    /// <summary>Runs one unit until <paramref name="cancellationToken"/> or its own end.</summary>
    protected abstract Task RunUnitAsync(TUnit unit, CancellationToken cancellationToken);

    /// <summary>The unit's name for logs ("camera front").</summary>
    protected abstract string Describe(TUnit unit);

    /// <summary>Releases what the units share (loaded models), after the units.</summary>
    protected virtual ValueTask DisposeSharedAsync() => ValueTask.CompletedTask;

    private async Task RunGuardedAsync(TUnit unit, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Run(() => RunUnitAsync(unit, cancellationToken), CancellationToken.None);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            UnitHostLog.UnitCrashed(Logger, Describe(unit), ex);
        }
    }
}

internal static partial class UnitHostLog
{
    [LoggerMessage(Level = LogLevel.Error, Message = "{Unit} stopped unexpectedly; the others keep running")]
    public static partial void UnitCrashed(ILogger logger, string unit, Exception exception);
}
