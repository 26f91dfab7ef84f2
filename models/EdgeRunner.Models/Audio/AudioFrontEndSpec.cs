using EdgeRunner.Models.Manifests;

namespace EdgeRunner.Models.Audio;

/// <summary>What an audio front end outputs per frame.</summary>
public enum AudioFeatureKind
{
    /// <summary>The complex spectrum: FFT size / 2 + 1 bins as interleaved (real, imaginary) pairs.</summary>
    Stft,

    /// <summary>Logarithms of mel-band energies.</summary>
    LogMel,

    /// <summary>Mel-frequency cepstral coefficients: an orthonormal DCT-II of the log-mel energies.</summary>
    Mfcc,
}

/// <summary>The analysis window.</summary>
public enum AudioWindow
{
    /// <summary>0.5 − 0.5·cos(2πn/D).</summary>
    Hann,

    /// <summary>0.54 − 0.46·cos(2πn/D).</summary>
    Hamming,

    /// <summary>All ones.</summary>
    Rectangular,
}

/// <summary>The mel scale.</summary>
public enum MelScale
{
    /// <summary>2595·log10(1 + f/700).</summary>
    Htk,

    /// <summary>Slaney's (librosa's default): f/(200/3) below 1 kHz, 15 + ln(f/1000)/(ln 6.4/27) above.</summary>
    Slaney,
}

/// <summary>The logarithm taken of the mel energies.</summary>
public enum AudioLog
{
    /// <summary>Natural logarithm.</summary>
    Ln,

    /// <summary>Base-10 logarithm.</summary>
    Log10,

    /// <summary>Decibels: 10·log10.</summary>
    Db,
}

/// <summary>
/// A checked audio front end: framing, window, FFT, mel filterbank and logarithm, DCT. Frames are
/// <see cref="FrameLength"/> samples every <see cref="HopLength"/> samples; each frame ends at the newest
/// sample of its hop, and a stream starts with <see cref="FrameLength"/> − <see cref="HopLength"/>
/// samples of zeros before it (as if the signal were padded on the left), so every hop of samples
/// gives exactly one frame and the front end can stream chunk by chunk.
/// </summary>
public sealed record AudioFrontEndSpec
{
    /// <summary>What each frame gives.</summary>
    public required AudioFeatureKind Kind { get; init; }

    /// <summary>Samples per second of the input.</summary>
    public required double SampleRateHz { get; init; }

    /// <summary>Samples per frame.</summary>
    public required int FrameLength { get; init; }

    /// <summary>Samples between frames.</summary>
    public required int HopLength { get; init; }

    /// <summary>FFT size: a power of two, at least <see cref="FrameLength"/>.</summary>
    public required int FftSize { get; init; }

    /// <summary>The window.</summary>
    public AudioWindow Window { get; init; } = AudioWindow.Hann;

    /// <summary>Periodic (denominator N) rather than symmetric (N − 1) window.</summary>
    public bool Periodic { get; init; } = true;

    /// <summary>Power (|X|²) rather than magnitude (|X|) spectrum into the filterbank.</summary>
    public bool Power { get; init; } = true;

    /// <summary>Mel bands.</summary>
    public int MelBands { get; init; } = 40;

    /// <summary>Lowest filter edge, Hz.</summary>
    public double FminHz { get; init; }

    /// <summary>Highest filter edge, Hz.</summary>
    public double FmaxHz { get; init; }

    /// <summary>The mel scale.</summary>
    public MelScale MelScale { get; init; } = MelScale.Htk;

    /// <summary>Slaney area normalisation of the filters.</summary>
    public bool SlaneyNorm { get; init; }

    /// <summary>The logarithm.</summary>
    public AudioLog Log { get; init; } = AudioLog.Ln;

    /// <summary>Added to each energy before the logarithm.</summary>
    public double LogOffset { get; init; } = 1e-6;

    /// <summary>Smallest value taken the logarithm of.</summary>
    public double LogFloor { get; init; } = 1e-10;

    /// <summary>MFCCs kept.</summary>
    public int MfccCount { get; init; } = 13;

    /// <summary>Values per frame: 2 × (FFT size / 2 + 1) for STFT, mel bands for log-mel, the MFCC count for MFCC.</summary>
    public int FeaturesPerFrame => Kind switch
    {
        AudioFeatureKind.Stft => 2 * ((FftSize / 2) + 1),
        AudioFeatureKind.LogMel => MelBands,
        _ => MfccCount,
    };

    /// <summary>Samples carried from one chunk to the next (frame length − hop, or 0 when frames do not overlap).</summary>
    public int HistoryLength => Math.Max(0, FrameLength - HopLength);

    /// <summary>
    /// The front end of <paramref name="stream"/>, or null when it declares none. Throws
    /// <see cref="ManifestException"/> naming the key when a setting is unknown, out of range, or does
    /// not fit the stream (one channel, no context or normalisation, chunks a whole number of hops).
    /// </summary>
    public static AudioFrontEndSpec? From(ManifestStreamInput stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.Frontend is not { } f)
        {
            return null;
        }

        static ManifestException Bad(string message) => new($"stream.frontend.{message}");

        var kind = f.Kind switch
        {
            "stft" => AudioFeatureKind.Stft,
            "log_mel" => AudioFeatureKind.LogMel,
            "mfcc" => AudioFeatureKind.Mfcc,
            _ => throw Bad($"kind: unknown front end '{f.Kind}' (stft, log_mel, mfcc)"),
        };

        if (f.FrameLength < 2 || f.FrameLength > 65536)
        {
            throw Bad($"frame_length must be 2 to 65536 samples (got {f.FrameLength})");
        }

        if (f.HopLength < 1)
        {
            throw Bad($"hop_length must be at least 1 sample (got {f.HopLength})");
        }

        var fftSize = f.FftSize == 0 ? (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(4, f.FrameLength)) : f.FftSize;
        if (fftSize < 4 || fftSize > 65536 || !int.IsPow2(fftSize) || fftSize < f.FrameLength)
        {
            throw Bad($"fft_size must be a power of two from 4 to 65536, at least frame_length {f.FrameLength} (got {f.FftSize})");
        }

        var window = f.Window switch
        {
            "hann" => AudioWindow.Hann,
            "hamming" => AudioWindow.Hamming,
            "rectangular" => AudioWindow.Rectangular,
            _ => throw Bad($"window: unknown window '{f.Window}' (hann, hamming, rectangular)"),
        };

        var power = f.Spectrum switch
        {
            "power" => true,
            "magnitude" => false,
            _ => throw Bad($"spectrum: unknown spectrum '{f.Spectrum}' (power, magnitude)"),
        };

        var melScale = f.MelScale switch
        {
            "htk" => MelScale.Htk,
            "slaney" => MelScale.Slaney,
            _ => throw Bad($"mel_scale: unknown mel scale '{f.MelScale}' (htk, slaney)"),
        };

        var slaneyNorm = f.MelNorm switch
        {
            "none" => false,
            "slaney" => true,
            _ => throw Bad($"mel_norm: unknown normalisation '{f.MelNorm}' (none, slaney)"),
        };

        var log = f.Log switch
        {
            "ln" => AudioLog.Ln,
            "log10" => AudioLog.Log10,
            "db" => AudioLog.Db,
            _ => throw Bad($"log: unknown logarithm '{f.Log}' (ln, log10, db)"),
        };

        var nyquist = stream.SampleRateHz / 2;
        var fmax = f.FmaxHz ?? nyquist;
        if (kind != AudioFeatureKind.Stft)
        {
            if (f.MelBands < 1 || f.MelBands > fftSize / 2)
            {
                throw Bad($"mel_bands must be 1 to fft_size / 2 = {fftSize / 2} (got {f.MelBands})");
            }

            if (!(f.FminHz >= 0) || !(fmax > f.FminHz) || fmax > nyquist)
            {
                throw Bad($"fmin_hz/fmax_hz must satisfy 0 ≤ fmin < fmax ≤ sample_rate_hz / 2 = {nyquist} (got {f.FminHz}, {fmax})");
            }

            if (!(f.LogOffset >= 0) || !double.IsFinite(f.LogOffset) || !(f.LogFloor > 0) || !double.IsFinite(f.LogFloor))
            {
                throw Bad($"log_offset must be ≥ 0 and log_floor > 0, both finite (got {f.LogOffset}, {f.LogFloor})");
            }

            if (kind == AudioFeatureKind.Mfcc && (f.MfccCount < 1 || f.MfccCount > f.MelBands))
            {
                throw Bad($"mfcc_count must be 1 to mel_bands = {f.MelBands} (got {f.MfccCount})");
            }
        }

        // The front end takes one channel of raw samples: normalisation and context are its own business.
        if (stream.Channels.Count != 1)
        {
            throw new ManifestException($"stream.frontend needs a one-channel stream; stream.channels has {stream.Channels.Count}");
        }

        if (stream.ContextSamples != 0 || stream.Mean.Count > 0 || stream.Std.Count > 0)
        {
            throw new ManifestException("stream.frontend: stream.context_samples, stream.mean and stream.std do not apply to a front end (it carries frame_length − hop_length samples itself)");
        }

        if (stream.ChunkSamples < f.HopLength || stream.ChunkSamples % f.HopLength != 0)
        {
            throw new ManifestException($"stream.chunk_samples ({stream.ChunkSamples}) must be a whole number of stream.frontend.hop_length ({f.HopLength}): each step takes chunk_samples / hop_length frames");
        }

        return new AudioFrontEndSpec
        {
            Kind = kind,
            SampleRateHz = stream.SampleRateHz,
            FrameLength = f.FrameLength,
            HopLength = f.HopLength,
            FftSize = fftSize,
            Window = window,
            Periodic = f.Periodic,
            Power = power,
            MelBands = f.MelBands,
            FminHz = f.FminHz,
            FmaxHz = fmax,
            MelScale = melScale,
            SlaneyNorm = slaneyNorm,
            Log = log,
            LogOffset = f.LogOffset,
            LogFloor = f.LogFloor,
            MfccCount = f.MfccCount,
        };
    }

    /// <summary>
    /// Values one model step takes from <paramref name="stream"/>: frames per chunk × features per frame
    /// with a front end, channels × (chunk + context) samples without. Throws <see cref="ManifestException"/> as <see cref="From"/>.
    /// </summary>
    public static int ValuesPerStep(ManifestStreamInput stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return From(stream) is { } spec
            ? stream.ChunkSamples / spec.HopLength * spec.FeaturesPerFrame
            : stream.Channels.Count * (stream.ChunkSamples + stream.ContextSamples);
    }
}
