using System.Numerics.Tensors;

namespace EdgeRunner.Models.Audio;

/// <summary>
/// Turns raw audio samples into a model's features, a whole number of hops at a time: each hop of
/// samples gives one frame of <see cref="AudioFrontEndSpec.FeaturesPerFrame"/> values (STFT bins as
/// (real, imaginary) pairs, log-mel energies or MFCCs), written frame after frame (<c>[frames, features]</c>).
/// The last frame length − hop samples are carried to the next chunk in a buffer the caller owns
/// (it belongs to a stream's state: reset and checkpointed with it). The window, the FFT tables, the
/// mel filterbank (only its non-zero weights) and the DCT matrix are computed once; a chunk allocates
/// nothing. Not thread-safe: one instance per stream (it owns its scratch buffers).
/// </summary>
public sealed class AudioFrontEnd
{
    private readonly AudioFrontEndSpec _spec;
    private readonly RealFft _fft;
    private readonly float[] _window;
    private readonly float[] _frame;
    private readonly float[] _spectrum;
    private readonly float[] _magnitudes;
    private readonly float[] _mel;
    private readonly int[] _bandStart;
    private readonly int[] _bandWeightOffset;
    private readonly float[] _bandWeights;
    private readonly float[] _dct;
    private readonly int _frameLength;
    private readonly int _hop;
    private readonly int _history;

    /// <summary>Builds the front end's tables for <paramref name="spec"/>.</summary>
    public AudioFrontEnd(AudioFrontEndSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        _spec = spec;
        _frameLength = spec.FrameLength;
        _hop = spec.HopLength;
        _history = spec.HistoryLength;
        _fft = new RealFft(spec.FftSize);
        _window = Window(spec.Window, spec.FrameLength, spec.Periodic);
        _frame = new float[spec.FftSize];
        _spectrum = new float[2 * _fft.Bins];
        _magnitudes = new float[_fft.Bins];
        _mel = new float[spec.MelBands];
        (_bandStart, _bandWeightOffset, _bandWeights) = spec.Kind == AudioFeatureKind.Stft ? ([], [], []) : MelFilterbank(spec);
        _dct = spec.Kind == AudioFeatureKind.Mfcc ? DctMatrix(spec.MfccCount, spec.MelBands) : [];
    }

    /// <summary>The settings.</summary>
    public AudioFrontEndSpec Spec => _spec;

    /// <summary>Values per frame.</summary>
    public int FeaturesPerFrame => _spec.FeaturesPerFrame;

    /// <summary>Samples carried between chunks (the length of the caller's history buffer).</summary>
    public int HistoryLength => _history;

    /// <summary>
    /// Computes the frames of <paramref name="samples"/> (a whole number of hops) into
    /// <paramref name="features"/> (frames × <see cref="FeaturesPerFrame"/>), the first frame reaching back
    /// into <paramref name="history"/> (the previous chunks' last <see cref="HistoryLength"/> samples,
    /// zeros at the start), and leaves this chunk's end in <paramref name="history"/>. Returns the frames written.
    /// </summary>
    public int ProcessChunk(ReadOnlySpan<float> samples, Span<float> history, Span<float> features)
    {
        if (samples.Length % _hop != 0)
        {
            throw new ArgumentException($"a chunk must be a whole number of hops ({_hop} samples); got {samples.Length}", nameof(samples));
        }

        if (history.Length != _history)
        {
            throw new ArgumentException($"the history must hold {_history} samples; got {history.Length}", nameof(history));
        }

        var frames = samples.Length / _hop;
        var perFrame = FeaturesPerFrame;
        if (features.Length < frames * perFrame)
        {
            throw new ArgumentException($"{frames} frames need {frames * perFrame} values; got {features.Length}", nameof(features));
        }

        for (var t = 0; t < frames; t++)
        {
            // Frame t ends at the end of hop t; its start reaches back into the history for the first frames.
            var start = ((t + 1) * _hop) - _frameLength;
            var frame = _frame.AsSpan(0, _frameLength);
            if (start < 0)
            {
                history[(_history + start)..].CopyTo(frame);
                samples[..(_frameLength + start)].CopyTo(frame[(-start)..]);
            }
            else
            {
                samples.Slice(start, _frameLength).CopyTo(frame);
            }

            TensorPrimitives.Multiply(frame, _window, frame);
            _frame.AsSpan(_frameLength).Clear();
            Frame(features.Slice(t * perFrame, perFrame));
        }

        // The history becomes the last _history samples of (history ++ samples).
        if (samples.Length >= _history)
        {
            samples[^_history..].CopyTo(history);
        }
        else
        {
            history[samples.Length..].CopyTo(history);
            samples.CopyTo(history[(_history - samples.Length)..]);
        }

        return frames;
    }

    /// <summary>The window's coefficients, as scipy.signal.get_window computes them (periodic: sym=False).</summary>
    internal static float[] Window(AudioWindow window, int length, bool periodic)
    {
        var result = new float[length];
        var denominator = periodic ? length : length - 1;
        for (var n = 0; n < length; n++)
        {
            var c = Math.Cos(2 * Math.PI * n / denominator);
            result[n] = (float)(window switch
            {
                AudioWindow.Hann => 0.5 - (0.5 * c),
                AudioWindow.Hamming => 0.54 - (0.46 * c),
                _ => 1.0,
            });
        }

        return result;
    }

    /// <summary>Hz to mel on <paramref name="scale"/>.</summary>
    internal static double HzToMel(double hz, MelScale scale)
    {
        if (scale == MelScale.Htk)
        {
            return 2595.0 * Math.Log10(1.0 + (hz / 700.0));
        }

        const double linearStep = 200.0 / 3;
        return hz < 1000 ? hz / linearStep : 15.0 + (Math.Log(hz / 1000.0) / (Math.Log(6.4) / 27.0));
    }

    /// <summary>Mel to Hz on <paramref name="scale"/>.</summary>
    internal static double MelToHz(double mel, MelScale scale)
    {
        if (scale == MelScale.Htk)
        {
            return 700.0 * (Math.Pow(10, mel / 2595.0) - 1.0);
        }

        const double linearStep = 200.0 / 3;
        return mel < 15 ? mel * linearStep : 1000.0 * Math.Exp((Math.Log(6.4) / 27.0) * (mel - 15.0));
    }

    /// <summary>
    /// Triangular filters (librosa's construction): band m rises from edge m to edge m+1 and falls to
    /// edge m+2, the edges equally spaced in mel from fmin to fmax; weights at the FFT bin frequencies
    /// k·rate/N. Only each band's non-zero run is kept.
    /// </summary>
    private static (int[] Start, int[] Offset, float[] Weights) MelFilterbank(AudioFrontEndSpec spec)
    {
        var bins = (spec.FftSize / 2) + 1;
        var bands = spec.MelBands;
        var edges = new double[bands + 2];
        var melMin = HzToMel(spec.FminHz, spec.MelScale);
        var melMax = HzToMel(spec.FmaxHz, spec.MelScale);
        for (var i = 0; i < edges.Length; i++)
        {
            edges[i] = MelToHz(melMin + ((melMax - melMin) * i / (bands + 1)), spec.MelScale);
        }

        var start = new int[bands];
        var offset = new int[bands + 1];
        var weights = new List<float>();
        for (var m = 0; m < bands; m++)
        {
            var (lower, centre, upper) = (edges[m], edges[m + 1], edges[m + 2]);
            var norm = spec.SlaneyNorm ? 2.0 / (upper - lower) : 1.0;
            var first = -1;
            var run = new List<float>();
            for (var k = 0; k < bins; k++)
            {
                var hz = (double)k * spec.SampleRateHz / spec.FftSize;
                var w = Math.Max(0, Math.Min((hz - lower) / (centre - lower), (upper - hz) / (upper - centre))) * norm;
                if (w > 0)
                {
                    if (first < 0)
                    {
                        first = k;
                    }

                    // Pad zeros inside the run (none for triangles, but the run must stay contiguous).
                    while (first + run.Count < k)
                    {
                        run.Add(0f);
                    }

                    run.Add((float)w);
                }
            }

            start[m] = Math.Max(0, first);
            offset[m] = weights.Count;
            weights.AddRange(run);
        }

        offset[bands] = weights.Count;
        return (start, offset, [.. weights]);
    }

    /// <summary>The first <paramref name="count"/> rows of the orthonormal DCT-II of size <paramref name="size"/> (scipy.fft.dct norm='ortho').</summary>
    private static float[] DctMatrix(int count, int size)
    {
        var matrix = new float[count * size];
        for (var k = 0; k < count; k++)
        {
            var scale = Math.Sqrt((k == 0 ? 1.0 : 2.0) / size);
            for (var n = 0; n < size; n++)
            {
                matrix[(k * size) + n] = (float)(scale * Math.Cos(Math.PI * k * ((2 * n) + 1) / (2.0 * size)));
            }
        }

        return matrix;
    }

    private void Frame(Span<float> output)
    {
        if (_spec.Kind == AudioFeatureKind.Stft)
        {
            _fft.Forward(_frame, output);
            return;
        }

        _fft.Forward(_frame, _spectrum);
        var spectrum = _spectrum.AsSpan();
        for (var k = 0; k < _magnitudes.Length; k++)
        {
            var re = spectrum[2 * k];
            var im = spectrum[(2 * k) + 1];
            var power = (re * re) + (im * im);
            _magnitudes[k] = _spec.Power ? power : MathF.Sqrt(power);
        }

        var offset = (float)_spec.LogOffset;
        var floor = (float)_spec.LogFloor;
        var mel = _spec.Kind == AudioFeatureKind.LogMel ? output : _mel;
        for (var m = 0; m < _bandStart.Length; m++)
        {
            var weights = _bandWeights.AsSpan(_bandWeightOffset[m], _bandWeightOffset[m + 1] - _bandWeightOffset[m]);
            var energy = TensorPrimitives.Dot(weights, _magnitudes.AsSpan(_bandStart[m], weights.Length));
            mel[m] = MathF.Max(energy + offset, floor);
        }

        switch (_spec.Log)
        {
            case AudioLog.Ln:
                TensorPrimitives.Log(mel, mel);
                break;
            case AudioLog.Log10:
                TensorPrimitives.Log10(mel, mel);
                break;
            default:
                TensorPrimitives.Log10(mel, mel);
                TensorPrimitives.Multiply(mel, 10f, mel);
                break;
        }

        if (_spec.Kind == AudioFeatureKind.Mfcc)
        {
            for (var k = 0; k < output.Length; k++)
            {
                output[k] = TensorPrimitives.Dot(_dct.AsSpan(k * _mel.Length, _mel.Length), mel);
            }
        }
    }
}
