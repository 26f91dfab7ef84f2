namespace EdgeRunner.Tests.Shared;

/// <summary>
/// Asserts that code allocates nothing per call in steady state. The runtime itself occasionally
/// allocates on the calling thread (tiered JIT, OSR), so one measured round may show a few bytes
/// that the code did not cause; a per-call allocation shows in every round. So: up to
/// <c>rounds</c> rounds of <c>callsPerRound</c> calls, and at least one must allocate 0 bytes.
/// </summary>
internal static class AllocationAssert
{
    public static void SteadyStateIsZero(Action call, int callsPerRound = 5, int rounds = 5)
    {
        var seen = new List<long>();
        for (var round = 0; round < rounds; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < callsPerRound; i++)
            {
                call();
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            if (allocated == 0)
            {
                return;
            }

            seen.Add(allocated);
        }

        Assert.Fail($"every round of {callsPerRound} calls allocated: {string.Join(", ", seen)} bytes");
    }
}
