using EdgeRunner.Models.Imaging;

namespace EdgeRunner.Models.Preprocessing;

/// <summary>
/// Cheap frame-difference motion test used to skip inference on a still scene: each frame is reduced
/// to a small grey image (box average, so sensor noise and compression artefacts mostly cancel out),
/// compared pixel by pixel with the previous one, and counts as motion when enough pixels changed by
/// more than a threshold. Not thread-safe; one per camera.
/// </summary>
/// <remarks>
/// The grey buffers are allocated on the first frame and again only when the frame size changes, so
/// steady-state detection allocates nothing. Cost is one pass over the source pixels (a luma sum per
/// pixel) plus one pass over the small image.
/// </remarks>
public sealed class MotionDetector
{
    private readonly int _downscaleWidth;
    private readonly int _threshold;
    private readonly double _minAreaPercent;
    private byte[] _current = [];
    private byte[] _previous = [];
    private int[] _columnStart = [];
    private int[] _rowSums = [];
    private int _sourceWidth;
    private int _sourceHeight;
    private int _width;
    private int _height;
    private bool _hasPrevious;

    /// <summary>Creates a detector.</summary>
    /// <param name="downscaleWidth">Width of the grey image compared; its height keeps the frame's aspect ratio.</param>
    /// <param name="threshold">Grey-level difference (0–255) above which a small-image pixel counts as changed.</param>
    /// <param name="minAreaPercent">Percentage (0–100) of small-image pixels that must change to count as motion.</param>
    public MotionDetector(int downscaleWidth, int threshold, double minAreaPercent)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(downscaleWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(threshold, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threshold, 255);
        ArgumentOutOfRangeException.ThrowIfLessThan(minAreaPercent, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minAreaPercent, 100);
        _downscaleWidth = downscaleWidth;
        _threshold = threshold;
        _minAreaPercent = minAreaPercent;
    }

    /// <summary>Percentage of small-image pixels that changed in the last <see cref="Detect"/> (100 for a first frame).</summary>
    public double LastChangedPercent { get; private set; }

    /// <summary>Width of the grey image compared (known after the first frame).</summary>
    public int DownscaledWidth => _width;

    /// <summary>Height of the grey image compared (known after the first frame).</summary>
    public int DownscaledHeight => _height;

    /// <summary>
    /// Compares <paramref name="image"/> with the image passed to the previous call and keeps it for the
    /// next one. The first image, and the first after a size change or <see cref="Reset"/>, counts as motion:
    /// there is nothing to compare with, and a missed first inference would be worse than a spare one.
    /// </summary>
    public bool Detect(in ImageView image)
    {
        if (image.Width != _sourceWidth || image.Height != _sourceHeight)
        {
            Resize(image.Width, image.Height);
        }

        Downscale(image, _current);
        if (!_hasPrevious)
        {
            _hasPrevious = true;
            Swap();
            LastChangedPercent = 100;
            return true;
        }

        var changed = CountChanged(_current, _previous, _threshold);
        Swap();
        var total = _width * _height;
        LastChangedPercent = changed * 100.0 / total;

        // At least one pixel must change: with MinAreaPercent 0 an identical frame is still "no motion".
        return changed > 0 && LastChangedPercent >= _minAreaPercent;
    }

    /// <summary>Forgets the previous image: the next <see cref="Detect"/> counts as motion.</summary>
    public void Reset() => _hasPrevious = false;

    private void Swap() => (_current, _previous) = (_previous, _current);

    private void Resize(int sourceWidth, int sourceHeight)
    {
        _sourceWidth = sourceWidth;
        _sourceHeight = sourceHeight;
        _width = Math.Min(_downscaleWidth, sourceWidth);
        _height = Math.Clamp((int)Math.Round((double)sourceHeight * _width / sourceWidth), 1, sourceHeight);
        _current = new byte[_width * _height];
        _previous = new byte[_width * _height];
        _rowSums = new int[_width];

        // Column box boundaries in source pixels: box x covers [_columnStart[x], _columnStart[x + 1]).
        _columnStart = new int[_width + 1];
        for (var x = 0; x <= _width; x++)
        {
            _columnStart[x] = (int)((long)x * sourceWidth / _width);
        }

        _hasPrevious = false;
    }

    private void Downscale(in ImageView image, Span<byte> destination)
    {
        var pixels = image.Pixels;
        var bpp = image.BytesPerPixel;
        var (r, g, b) = image.ChannelOffsets;
        var columnStart = _columnStart;
        var sums = _rowSums;
        for (var y = 0; y < _height; y++)
        {
            var y0 = (int)((long)y * image.Height / _height);
            var y1 = (int)((long)(y + 1) * image.Height / _height);
            sums.AsSpan().Clear();
            for (var sy = y0; sy < y1; sy++)
            {
                var row = pixels.Slice(sy * image.Stride, image.Width * bpp);
                for (var x = 0; x < _width; x++)
                {
                    var sum = 0;
                    for (int sx = columnStart[x], end = columnStart[x + 1], i = sx * bpp; sx < end; sx++, i += bpp)
                    {
                        // BT.601 luma in 8-bit fixed point (weights sum to 256); alpha is ignored.
                        sum += (77 * row[i + r]) + (150 * row[i + g]) + (29 * row[i + b]);
                    }

                    sums[x] += sum >> 8;
                }
            }

            var rows = y1 - y0;
            var line = destination.Slice(y * _width, _width);
            for (var x = 0; x < _width; x++)
            {
                var count = rows * (columnStart[x + 1] - columnStart[x]);
                line[x] = (byte)(sums[x] / count);
            }
        }
    }

    private static int CountChanged(ReadOnlySpan<byte> current, ReadOnlySpan<byte> previous, int threshold)
    {
        var changed = 0;
        for (var i = 0; i < current.Length; i++)
        {
            if (Math.Abs(current[i] - previous[i]) > threshold)
            {
                changed++;
            }
        }

        return changed;
    }
}
