using System.Runtime.CompilerServices;
using EdgeRunner.Service;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeRunner.UnitTests;

/// <summary>
/// Unit creation in <see cref="UnitHostService{TUnit}"/> is asynchronous: units are created (and a failed one's
/// resources released) without blocking a thread, before anything starts, and the caller's token stops it.
/// </summary>
public sealed class UnitHostServiceTests
{
    private sealed class Unit(string name) : IAsyncDisposable
    {
        public string Name { get; } = name;

        public bool Disposed { get; private set; }

        public async ValueTask DisposeAsync()
        {
            await Task.Yield();
            Disposed = true;
        }
    }

    /// <summary>Creates one unit per name, each after an asynchronous step; a name "fail" throws as a bad configuration would.</summary>
    private sealed class Units(params string[] names) : UnitHostService<Unit>(NullLogger.Instance)
    {
        public List<Unit> Created { get; } = [];

        public int Ran { get; private set; }

        protected override async IAsyncEnumerable<Unit> CreateUnitsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            foreach (var name in names)
            {
                await Task.Yield();
                cancellationToken.ThrowIfCancellationRequested();
                if (name == "fail")
                {
                    throw new StartupException($"Units:{name}: cannot be created", StartupException.ConfigError);
                }

                var unit = new Unit(name);
                Created.Add(unit);
                yield return unit;
            }
        }

        protected override Task RunUnitAsync(Unit unit, CancellationToken cancellationToken)
        {
            Ran++;
            return Task.CompletedTask;
        }

        protected override string Describe(Unit unit) => unit.Name;
    }

    [Fact]
    public async Task Prepare_creates_every_unit_without_running_any_and_start_runs_them_once()
    {
        await using var host = new Units("a", "b");

        await host.PrepareAsync(TestContext.Current.CancellationToken);
        Assert.Equal(["a", "b"], host.Units.Select(u => u.Name));
        Assert.Equal(0, host.Ran);

        await host.StartAsync(TestContext.Current.CancellationToken);
        await host.StopAsync(TestContext.Current.CancellationToken);
        Assert.Equal(2, host.Created.Count);
        Assert.Equal(2, host.Ran);
    }

    [Fact]
    public async Task Units_created_before_one_fails_are_kept_and_released_at_dispose()
    {
        var host = new Units("a", "fail", "c");

        var ex = await Assert.ThrowsAsync<StartupException>(() => host.PrepareAsync(TestContext.Current.CancellationToken));
        Assert.StartsWith("Units:fail:", ex.Message, StringComparison.Ordinal);
        var created = Assert.Single(host.Created);
        Assert.False(created.Disposed);

        await host.DisposeAsync();
        Assert.True(created.Disposed);
    }

    [Fact]
    public async Task A_cancelled_prepare_creates_nothing()
    {
        await using var host = new Units("a", "b");
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => host.PrepareAsync(cancelled.Token));
        Assert.Empty(host.Created);
        Assert.Empty(host.Units);
    }
}
