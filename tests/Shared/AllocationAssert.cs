namespace EdgeRunner.Tests.Shared;

/// <summary>
/// Asserts that code allocates nothing per call in steady state: after <c>warmupCalls</c> unmeasured
/// calls (tier-0 → tier-1 JIT, on-stack replacement and lazy initialisation happen there), every one
/// of <c>rounds</c> measured rounds of <c>callsPerRound</c> calls must allocate exactly 0 bytes.
/// What it does not see: it reads <see cref="GC.GetAllocatedBytesForCurrentThread"/>, so allocations
/// made on other threads (thread-pool continuations, ONNX Runtime's native threads, which allocate
/// unmanaged memory the GC never counts) are invisible to it. Code whose work hops threads is
/// measured with a whole-process check instead (see the tests that use
/// <see cref="GC.GetTotalAllocatedBytes(bool)"/>).
/// </summary>
internal static class AllocationAssert
{
    public static void SteadyStateIsZero(Action call, int callsPerRound = 5, int rounds = 5, int warmupCalls = 50)
    {
        ArgumentNullException.ThrowIfNull(call);
        for (var i = 0; i < warmupCalls; i++)
        {
            call();
        }

        var seen = new long[rounds];
        for (var round = 0; round < rounds; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < callsPerRound; i++)
            {
                call();
            }

            seen[round] = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Assert.True(
            seen.All(bytes => bytes == 0),
            $"every measured round after {warmupCalls} warm-up calls must allocate 0 B; rounds of {callsPerRound} calls allocated: {string.Join(", ", seen)} bytes");
    }
}
