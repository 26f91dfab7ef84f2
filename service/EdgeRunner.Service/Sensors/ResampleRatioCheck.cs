using System.Globalization;
namespace EdgeRunner.Service.Sensors;

/// <summary>
/// Whether a stream's source rate is too far from its model's for the linear resampler: checked once per
/// stream at startup. Beyond <see cref="WarnRatio"/> either way the stream runs with a warning; a ratio
/// whose buffers for one source block would exceed <see cref="MaxBlockBufferBytes"/> is refused.
/// </summary>
/// <remarks>
/// Why 10: the resampler interpolates linearly. Upsampled 10×, nine model samples in ten are straight lines
/// between measured ones and the model sees nothing above a tenth of the band it was trained on; downsampled
/// 10×, everything above a twentieth of the source's rate aliases (no low-pass filter). Either way the model's
/// input no longer looks like its training data, and upsampled, every source block costs ratio× the steps
/// (a 1-sample-per-5-minutes CSV fed to a 200 Hz model is 60,000 steps per sample). Why a buffer limit rather
/// than a ratio: what breaks first on an edge device is memory (the resampled block and the samples waiting
/// for a chunk are held at once), and that depends on the block size and channels as much as on the ratio.
/// </remarks>
internal static class ResampleRatioCheck
{
    /// <summary>Ratio (model rate / source rate, or its inverse) above which a stream starts with a warning.</summary>
    public const double WarnRatio = 10;

    /// <summary>The most memory one source block's resampled samples and the samples waiting for a chunk may take.</summary>
    public const long MaxBlockBufferBytes = 256L * 1024 * 1024;

    /// <summary>The ratio of the two rates, at least 1 (how many times faster the faster one is).</summary>
    public static double Ratio(double sourceRateHz, double modelRateHz) =>
        sourceRateHz > 0 && modelRateHz > 0 ? Math.Max(modelRateHz / sourceRateHz, sourceRateHz / modelRateHz) : 1;

    /// <summary>
    /// The refusal for a stream whose block of <paramref name="blockSamples"/> source samples of <paramref name="channels"/>
    /// channels would need more than <see cref="MaxBlockBufferBytes"/> resampled, or null when it fits.
    /// </summary>
    public static string? Problem(string streamId, double sourceRateHz, double modelRateHz, int blockSamples, int channels)
    {
        if (!(sourceRateHz > 0) || !(modelRateHz > 0) || Math.Abs(sourceRateHz - modelRateHz) <= 1e-9)
        {
            return null;
        }

        // As ChunkAssembler sizes them (LinearResampler.MaxOutput, in doubles: an extreme ratio must not overflow): the resampled block, and as much again waiting for the next chunk.
        var resampled = (Math.Ceiling((blockSamples + 1) * modelRateHz / sourceRateHz) + 1) * channels;
        var bytes = 2 * resampled * sizeof(float);
        return bytes <= MaxBlockBufferBytes
            ? null
            : string.Create(
                CultureInfo.InvariantCulture,
                $"Sensors:{streamId}:Source:SampleRateHz: the source's {sourceRateHz:0.######} Hz resampled to the model's {modelRateHz:0.###} Hz is {modelRateHz / sourceRateHz:0.##}×: one block of {blockSamples} samples would need {bytes / (1024 * 1024):0} MiB of buffers (at most {MaxBlockBufferBytes / (1024 * 1024)} MiB); use a model trained at the source's rate, or a source at the model's");
    }
}
