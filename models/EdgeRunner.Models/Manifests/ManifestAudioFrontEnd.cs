namespace EdgeRunner.Models.Manifests;

/// <summary>
/// An audio front end as declared in a manifest's <c>stream.frontend</c> (see docs/model-manifest.md,
/// "Audio front ends"): the raw samples of a one-channel stream are framed, windowed and transformed
/// into the features the model takes (STFT frames as complex pairs, log-mel energies or MFCCs).
/// Checked and turned into an <see cref="Audio.AudioFrontEndSpec"/> by <see cref="Audio.AudioFrontEndSpec.From"/>.
/// </summary>
public sealed record ManifestAudioFrontEnd
{
    /// <summary>stft, log_mel or mfcc.</summary>
    public required string Kind { get; init; }

    /// <summary>Samples per frame (the window's length).</summary>
    public int FrameLength { get; init; }

    /// <summary>Samples between the starts of two frames; the stream's chunk_samples must be a multiple of it.</summary>
    public int HopLength { get; init; }

    /// <summary>FFT size, a power of two at least <see cref="FrameLength"/> (frames are zero-padded at the end); 0 = the next power of two.</summary>
    public int FftSize { get; init; }

    /// <summary>hann, hamming or rectangular.</summary>
    public string Window { get; init; } = "hann";

    /// <summary>Periodic window (the FFT convention, scipy's <c>sym=False</c>) rather than symmetric.</summary>
    public bool Periodic { get; init; } = true;

    /// <summary>log_mel/mfcc: power (|X|²) or magnitude (|X|) spectrum into the mel filterbank.</summary>
    public string Spectrum { get; init; } = "power";

    /// <summary>log_mel/mfcc: number of mel bands.</summary>
    public int MelBands { get; init; } = 40;

    /// <summary>log_mel/mfcc: lowest filter edge in Hz.</summary>
    public double FminHz { get; init; }

    /// <summary>log_mel/mfcc: highest filter edge in Hz; absent = half the sample rate.</summary>
    public double? FmaxHz { get; init; }

    /// <summary>log_mel/mfcc: htk (2595·log10(1 + f/700)) or slaney (linear below 1 kHz, logarithmic above; librosa's default).</summary>
    public string MelScale { get; init; } = "htk";

    /// <summary>log_mel/mfcc: none (triangles of height 1) or slaney (each triangle scaled to unit area, 2/(f_high − f_low)).</summary>
    public string MelNorm { get; init; } = "none";

    /// <summary>log_mel/mfcc: ln, log10 or db (10·log10).</summary>
    public string Log { get; init; } = "ln";

    /// <summary>log_mel/mfcc: added to each band's energy before the logarithm.</summary>
    public double LogOffset { get; init; } = 1e-6;

    /// <summary>log_mel/mfcc: the smallest value taken the logarithm of (energy + offset is raised to it).</summary>
    public double LogFloor { get; init; } = 1e-10;

    /// <summary>mfcc: coefficients kept (the first ones of an orthonormal DCT-II of the log-mel energies).</summary>
    public int MfccCount { get; init; } = 13;
}
