using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace EdgeRunner.Models.Preprocessing;

/// <summary>
/// Which vector code a preprocessing kernel runs. Every path computes bit-identical results (the unit
/// tests hold each one to the scalar reference); they differ only in speed.
/// </summary>
public enum SimdPath
{
    /// <summary>Plain loops: the reference, and the fallback on CPUs without usable vectors.</summary>
    Scalar,

    /// <summary>
    /// 128-bit vectors through the portable <see cref="Vector128"/> API: NEON (AdvSimd) on ARM — the
    /// Raspberry Pi 4/5 and Jetson path — and SSE on x86, which is how the ARM code is exercised on x64.
    /// </summary>
    Vector128,

    /// <summary>x86 with AVX2: 256-bit vectors and SSSE3 byte shuffles.</summary>
    Avx2,
}

/// <summary>Chooses and describes the vector path of this CPU.</summary>
public static class SimdPaths
{
    /// <summary>The fastest path this CPU runs: AVX2 on x86 that has it, else 128-bit vectors where accelerated (NEON, SSE), else scalar.</summary>
    public static SimdPath Best { get; } =
        Avx2.IsSupported ? SimdPath.Avx2 : Vector128.IsHardwareAccelerated ? SimdPath.Vector128 : SimdPath.Scalar;

    /// <summary>Whether <paramref name="path"/> can run on this CPU.</summary>
    public static bool IsSupported(SimdPath path) => path switch
    {
        SimdPath.Scalar => true,
        // Correct everywhere (software fallback without hardware vectors), but only worth choosing when accelerated.
        SimdPath.Vector128 => true,
        SimdPath.Avx2 => Avx2.IsSupported && Ssse3.IsSupported,
        _ => false,
    };

    /// <summary>
    /// Byte table lookup: lane i = <paramref name="source"/>[<paramref name="indices"/>[i]], 0 where the index is
    /// 16 or more (the masks use 0x80 for "no byte", which pshufb, TBL and the portable shuffle all read as 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<byte> ShuffleBytes(Vector128<byte> source, Vector128<byte> indices)
    {
        if (AdvSimd.Arm64.IsSupported)
        {
            return AdvSimd.Arm64.VectorTableLookup(source, indices);
        }

        if (Ssse3.IsSupported)
        {
            return Ssse3.Shuffle(source, indices);
        }

        return Vector128.Shuffle(source, indices);
    }
}
