using EdgeRunner.Models.Imaging;

namespace EdgeRunner.Models.Preprocessing;

/// <summary>
/// Maps a point of the model input back to the source image: <c>sourceX = modelX * ScaleX + OffsetX</c>
/// (and the same for Y). Used to report boxes in original frame pixels.
/// </summary>
public readonly record struct SourceMapping(float ScaleX, float OffsetX, float ScaleY, float OffsetY)
{
    /// <summary>Source X for a model X.</summary>
    public float ToSourceX(float modelX) => (modelX * ScaleX) + OffsetX;

    /// <summary>Source Y for a model Y.</summary>
    public float ToSourceY(float modelY) => (modelY * ScaleY) + OffsetY;
}

/// <summary>
/// Resizes, crops or letterboxes 8-bit pixels into a float tensor with per-channel normalisation.
/// Resampling is separable with a triangle (bilinear) kernel widened by the downscale factor, as in
/// Pillow's and torchvision's antialiased bilinear resize, so results match how models are usually
/// evaluated. Filter tables are cached per source size: with a steady camera resolution nothing is
/// allocated per frame. Not thread-safe; use one instance per pipeline.
/// </summary>
public sealed class ImagePreprocessor
{
    private readonly ImagePreprocessingSpec _spec;
    private readonly float[] _multiplier = new float[3];
    private readonly float[] _offset = new float[3];
    private int _cachedWidth = -1;
    private int _cachedHeight = -1;
    private AxisFilter _horizontal;
    private AxisFilter _vertical;
    private SourceMapping _mapping;
    private int _firstRow;
    private int _rowCount;
    private float[] _rows = [];

    /// <summary>Creates a preprocessor for <paramref name="spec"/>.</summary>
    public ImagePreprocessor(ImagePreprocessingSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.Width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.Height, 1);
        if (spec.Mean.Count != 3 || spec.Std.Count != 3)
        {
            throw new ArgumentException("Mean and Std need exactly 3 values.", nameof(spec));
        }

        _spec = spec;
        for (var c = 0; c < 3; c++)
        {
            if (spec.Std[c] == 0)
            {
                throw new ArgumentException("Std values must not be zero.", nameof(spec));
            }

            // (v * scale - mean) / std == v * (scale / std) + (-mean / std)
            _multiplier[c] = spec.Scale / spec.Std[c];
            _offset[c] = -spec.Mean[c] / spec.Std[c];
        }
    }

    /// <summary>The spec this instance applies.</summary>
    public ImagePreprocessingSpec Spec => _spec;

    /// <summary>Number of floats written by <see cref="Run"/>.</summary>
    public int TensorLength => _spec.Width * _spec.Height * 3;

    /// <summary>Fills <paramref name="destination"/> from <paramref name="image"/> and returns how to map model coordinates back to it.</summary>
    public SourceMapping Run(ImageView image, Span<float> destination)
    {
        if (destination.Length < TensorLength)
        {
            throw new ArgumentException($"Destination holds {destination.Length} floats; {TensorLength} needed.", nameof(destination));
        }

        if (image.Width != _cachedWidth || image.Height != _cachedHeight)
        {
            Prepare(image.Width, image.Height);
        }

        HorizontalPass(image);
        VerticalPass(destination);
        return _mapping;
    }

    private void Prepare(int sourceWidth, int sourceHeight)
    {
        int outW = _spec.Width, outH = _spec.Height;
        double resizedW, resizedH, cropX = 0, cropY = 0;
        switch (_spec.Resize)
        {
            case ResizeMode.Stretch:
                resizedW = outW;
                resizedH = outH;
                break;
            case ResizeMode.CenterCrop:
                {
                    var shorter = _spec.ResizeShorterSide > 0 ? _spec.ResizeShorterSide : Math.Max(outW, outH);
                    var s = (double)shorter / Math.Min(sourceWidth, sourceHeight);
                    // torchvision: the longer side is truncated to an integer after scaling.
                    resizedW = sourceWidth <= sourceHeight ? shorter : Math.Floor(sourceWidth * s);
                    resizedH = sourceHeight < sourceWidth ? shorter : Math.Floor(sourceHeight * s);
                    resizedW = Math.Max(resizedW, outW);
                    resizedH = Math.Max(resizedH, outH);
                    cropX = Math.Round((resizedW - outW) / 2.0);
                    cropY = Math.Round((resizedH - outH) / 2.0);
                    break;
                }

            case ResizeMode.Letterbox:
                {
                    var s = Math.Min((double)outW / sourceWidth, (double)outH / sourceHeight);
                    resizedW = Math.Round(sourceWidth * s);
                    resizedH = Math.Round(sourceHeight * s);
                    // Negative crop = padding before the image.
                    cropX = -Math.Floor((outW - resizedW) / 2.0);
                    cropY = -Math.Floor((outH - resizedH) / 2.0);
                    break;
                }

            default:
                throw new InvalidOperationException($"Unknown resize mode {_spec.Resize}.");
        }

        _horizontal = AxisFilter.Create(sourceWidth, resizedW, cropX, outW);
        _vertical = AxisFilter.Create(sourceHeight, resizedH, cropY, outH);
        var scaleX = (float)(sourceWidth / resizedW);
        var scaleY = (float)(sourceHeight / resizedH);
        _mapping = new SourceMapping(scaleX, (float)(cropX * scaleX), scaleY, (float)(cropY * scaleY));

        // Only source rows that some output row reads are filtered horizontally.
        (_firstRow, var lastRow) = _vertical.SourceRange();
        _rowCount = Math.Max(0, lastRow - _firstRow);
        var needed = _rowCount * outW * 3;
        if (_rows.Length < needed)
        {
            _rows = new float[needed];
        }

        _cachedWidth = sourceWidth;
        _cachedHeight = sourceHeight;
    }

    private void HorizontalPass(ImageView image)
    {
        var (r, g, b) = image.ChannelOffsets;
        // Tensor channel c reads source byte offset channel[c].
        int c0 = _spec.ChannelOrder == ChannelOrder.Rgb ? r : b, c1 = g, c2 = _spec.ChannelOrder == ChannelOrder.Rgb ? b : r;
        var bpp = image.BytesPerPixel;
        var outW = _spec.Width;
        var filter = _horizontal;
        var pixels = image.Pixels;
        var rows = _rows.AsSpan();
        for (var row = 0; row < _rowCount; row++)
        {
            var src = pixels.Slice((_firstRow + row) * image.Stride);
            var dst = rows.Slice(row * outW * 3, outW * 3);
            for (var x = 0; x < outW; x++)
            {
                var start = filter.Start[x];
                var count = filter.Count[x];
                var weights = filter.Weights.AsSpan(x * filter.MaxTaps, count);
                float s0 = 0, s1 = 0, s2 = 0;
                var p = start * bpp;
                for (var k = 0; k < weights.Length; k++, p += bpp)
                {
                    var w = weights[k];
                    s0 += src[p + c0] * w;
                    s1 += src[p + c1] * w;
                    s2 += src[p + c2] * w;
                }

                if (count == 0)
                {
                    s0 = s1 = s2 = _spec.PadValue;
                }

                dst[x * 3] = s0;
                dst[(x * 3) + 1] = s1;
                dst[(x * 3) + 2] = s2;
            }
        }
    }

    private void VerticalPass(Span<float> destination)
    {
        int outW = _spec.Width, outH = _spec.Height;
        var plane = outW * outH;
        var nchw = _spec.Layout == TensorLayout.Nchw;
        float m0 = _multiplier[0], m1 = _multiplier[1], m2 = _multiplier[2];
        float o0 = _offset[0], o1 = _offset[1], o2 = _offset[2];
        var filter = _vertical;
        ReadOnlySpan<float> rows = _rows;
        var pad = _spec.PadValue;
        for (var y = 0; y < outH; y++)
        {
            var count = filter.Count[y];
            var weights = filter.Weights.AsSpan(y * filter.MaxTaps, count);
            var firstRow = filter.Start[y] - _firstRow;
            for (var x = 0; x < outW; x++)
            {
                float s0 = 0, s1 = 0, s2 = 0;
                var p = ((firstRow * outW) + x) * 3;
                for (var k = 0; k < weights.Length; k++, p += outW * 3)
                {
                    var w = weights[k];
                    s0 += rows[p] * w;
                    s1 += rows[p + 1] * w;
                    s2 += rows[p + 2] * w;
                }

                if (count == 0)
                {
                    s0 = s1 = s2 = pad;
                }

                // Clamp like an 8-bit resize would, so ringing-free values stay in the pixel range.
                s0 = Math.Clamp(s0, 0f, 255f);
                s1 = Math.Clamp(s1, 0f, 255f);
                s2 = Math.Clamp(s2, 0f, 255f);
                var i = (y * outW) + x;
                if (nchw)
                {
                    destination[i] = (s0 * m0) + o0;
                    destination[plane + i] = (s1 * m1) + o1;
                    destination[(2 * plane) + i] = (s2 * m2) + o2;
                }
                else
                {
                    destination[i * 3] = (s0 * m0) + o0;
                    destination[(i * 3) + 1] = (s1 * m1) + o1;
                    destination[(i * 3) + 2] = (s2 * m2) + o2;
                }
            }
        }
    }

    /// <summary>Per-output-pixel taps along one axis: which source pixels and with which weights.</summary>
    private readonly struct AxisFilter
    {
        public int[] Start { get; init; }

        public int[] Count { get; init; }

        public float[] Weights { get; init; }

        public int MaxTaps { get; init; }

        /// <summary>
        /// Output i covers resized coordinate (i + crop); the resized axis of length
        /// <paramref name="resized"/> spans the whole source axis. Outputs outside the resized image get no taps (padding).
        /// </summary>
        public static AxisFilter Create(int sourceLength, double resized, double crop, int outputLength)
        {
            var scale = sourceLength / resized;
            var support = Math.Max(scale, 1.0);
            var maxTaps = (int)Math.Ceiling(support) * 2 + 1;
            var start = new int[outputLength];
            var count = new int[outputLength];
            var weights = new float[outputLength * maxTaps];
            for (var i = 0; i < outputLength; i++)
            {
                var resizedPos = i + crop;
                if (resizedPos < 0 || resizedPos >= resized)
                {
                    continue; // padding
                }

                var center = (resizedPos + 0.5) * scale;
                var first = Math.Max(0, (int)Math.Floor(center - support));
                var last = Math.Min(sourceLength, (int)Math.Ceiling(center + support));
                double total = 0;
                var n = 0;
                for (var j = first; j < last && n < maxTaps; j++)
                {
                    var w = 1.0 - Math.Abs((j + 0.5 - center) / support);
                    if (w <= 0)
                    {
                        if (n == 0)
                        {
                            first = j + 1;
                        }

                        continue;
                    }

                    weights[(i * maxTaps) + n] = (float)w;
                    total += w;
                    n++;
                }

                if (n == 0)
                {
                    // Degenerate (should not happen): take the nearest pixel.
                    first = Math.Clamp((int)center, 0, sourceLength - 1);
                    weights[i * maxTaps] = 1;
                    n = 1;
                    total = 1;
                }

                for (var k = 0; k < n; k++)
                {
                    weights[(i * maxTaps) + k] = (float)(weights[(i * maxTaps) + k] / total);
                }

                start[i] = first;
                count[i] = n;
            }

            return new AxisFilter { Start = start, Count = count, Weights = weights, MaxTaps = maxTaps };
        }

        /// <summary>The half-open range of source indices any output reads.</summary>
        public (int First, int Last) SourceRange()
        {
            int first = int.MaxValue, last = 0;
            for (var i = 0; i < Start.Length; i++)
            {
                if (Count[i] == 0)
                {
                    continue;
                }

                first = Math.Min(first, Start[i]);
                last = Math.Max(last, Start[i] + Count[i]);
            }

            return first == int.MaxValue ? (0, 0) : (first, last);
        }
    }
}
