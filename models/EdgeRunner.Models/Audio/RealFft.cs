namespace EdgeRunner.Models.Audio;

/// <summary>
/// The forward FFT of real float32 input of a power-of-two length N, computed as a complex FFT of N/2
/// points (even samples as real parts, odd samples as imaginary parts) followed by the split that
/// separates the two, so a real transform costs about half a complex one. Iterative radix-2
/// decimation in time; the bit-reversal permutation and all twiddle factors are computed once (in
/// double precision) when the instance is made, so a transform does no trigonometry and allocates
/// nothing. Not thread-safe: the instance owns its scratch buffer.
/// </summary>
/// <remarks>
/// Written here rather than taken from a library: FftSharp 2.2 recomputes sin/cos in its innermost
/// butterfly loop (N·log N trigonometric calls per transform) and works in double-precision
/// <see cref="System.Numerics.Complex"/>; MathNet.Numerics allocates per call. Held to a direct
/// float64 DFT by AudioFrontEndTests.
/// </remarks>
public sealed class RealFft
{
    private readonly int _size;
    private readonly int _half;
    private readonly int[] _bitReverse;
    private readonly float[] _cos;
    private readonly float[] _sin;
    private readonly float[] _splitCos;
    private readonly float[] _splitSin;
    private readonly float[] _work;

    /// <summary>A transform of <paramref name="size"/> real samples (a power of two, 4 to 65536).</summary>
    public RealFft(int size)
    {
        if (size < 4 || size > 65536 || !int.IsPow2(size))
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "the FFT size must be a power of two from 4 to 65536");
        }

        _size = size;
        _half = size / 2;
        var bits = int.Log2(_half);
        _bitReverse = new int[_half];
        for (var i = 0; i < _half; i++)
        {
            var reversed = 0;
            for (var b = 0; b < bits; b++)
            {
                reversed |= ((i >> b) & 1) << (bits - 1 - b);
            }

            _bitReverse[i] = reversed;
        }

        // Twiddles of the N/2-point complex FFT: e^(-2πi·j/(N/2)), j < N/4.
        _cos = new float[Math.Max(1, _half / 2)];
        _sin = new float[_cos.Length];
        for (var j = 0; j < _cos.Length; j++)
        {
            var angle = -2.0 * Math.PI * j / _half;
            _cos[j] = (float)Math.Cos(angle);
            _sin[j] = (float)Math.Sin(angle);
        }

        // Twiddles of the split: e^(-2πi·k/N), k ≤ N/2.
        _splitCos = new float[_half + 1];
        _splitSin = new float[_half + 1];
        for (var k = 0; k <= _half; k++)
        {
            var angle = -2.0 * Math.PI * k / size;
            _splitCos[k] = (float)Math.Cos(angle);
            _splitSin[k] = (float)Math.Sin(angle);
        }

        _work = new float[size];
    }

    /// <summary>Real samples per transform (N).</summary>
    public int Size => _size;

    /// <summary>Frequency bins out (N/2 + 1: DC to Nyquist).</summary>
    public int Bins => _half + 1;

    /// <summary>
    /// Transforms <paramref name="input"/> (N real samples) into <paramref name="spectrum"/>: N/2 + 1
    /// bins as interleaved (real, imaginary) pairs, X[k] = Σ x[n]·e^(−2πi·kn/N), unscaled (numpy's rfft).
    /// </summary>
    public void Forward(ReadOnlySpan<float> input, Span<float> spectrum)
    {
        if (input.Length != _size)
        {
            throw new ArgumentException($"expected {_size} samples, got {input.Length}", nameof(input));
        }

        if (spectrum.Length < 2 * Bins)
        {
            throw new ArgumentException($"the spectrum needs {2 * Bins} floats, got {spectrum.Length}", nameof(spectrum));
        }

        // z[n] = x[2n] + i·x[2n+1], stored in bit-reversed order for the in-place butterflies.
        var z = _work.AsSpan();
        for (var n = 0; n < _half; n++)
        {
            var r = _bitReverse[n];
            z[2 * r] = input[2 * n];
            z[(2 * r) + 1] = input[(2 * n) + 1];
        }

        for (var length = 2; length <= _half; length <<= 1)
        {
            var halfLength = length >> 1;
            var stride = _half / length;
            for (var start = 0; start < _half; start += length)
            {
                for (var j = 0; j < halfLength; j++)
                {
                    var wr = _cos[j * stride];
                    var wi = _sin[j * stride];
                    var a = 2 * (start + j);
                    var b = 2 * (start + j + halfLength);
                    var br = z[b];
                    var bi = z[b + 1];
                    var tr = (br * wr) - (bi * wi);
                    var ti = (br * wi) + (bi * wr);
                    var ar = z[a];
                    var ai = z[a + 1];
                    z[b] = ar - tr;
                    z[b + 1] = ai - ti;
                    z[a] = ar + tr;
                    z[a + 1] = ai + ti;
                }
            }
        }

        // Split: with Z = FFT(z), E[k] = (Z[k] + conj Z[M−k]) / 2 is the even samples' spectrum and
        // O[k] = (Z[k] − conj Z[M−k]) / 2i the odd ones'; X[k] = E[k] + e^(−2πi·k/N)·O[k] (M = N/2, Z[M] = Z[0]).
        for (var k = 0; k <= _half; k++)
        {
            var p = k == _half ? 0 : k;
            var q = k == 0 ? 0 : _half - k;
            var zr = z[2 * p];
            var zi = z[(2 * p) + 1];
            var cr = z[2 * q];
            var ci = -z[(2 * q) + 1];
            var er = 0.5f * (zr + cr);
            var ei = 0.5f * (zi + ci);

            // (Z − conj) / 2i = (dr + i·di) / 2i = (di − i·dr) / 2.
            var or = 0.5f * (zi - ci);
            var oi = -0.5f * (zr - cr);
            var wr = _splitCos[k];
            var wi = _splitSin[k];
            spectrum[2 * k] = er + ((or * wr) - (oi * wi));
            spectrum[(2 * k) + 1] = ei + ((or * wi) + (oi * wr));
        }
    }
}
