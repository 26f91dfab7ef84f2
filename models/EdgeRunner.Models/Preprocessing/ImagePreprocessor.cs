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
/// Resizes, crops or letterboxes 8-bit pixels into a float tensor with per-channel normalisation, or into a
/// uint8/int8 tensor of plain pixel values for models that take integer input.
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

    /// <summary>Number of elements (floats, bytes or sbytes) written by any <c>Run</c> overload.</summary>
    public int TensorLength => _spec.Width * _spec.Height * 3;

    /// <summary>Fills <paramref name="destination"/> from <paramref name="image"/> and returns how to map model coordinates back to it.</summary>
    public SourceMapping Run(ImageView image, Span<float> destination)
    {
        CheckDestination(destination.Length, nameof(destination));
        var sink = new FloatSink(destination, _multiplier, _offset);
        return Run(image, ref sink);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with the resized/cropped/letterboxed pixels for a uint8-input model:
    /// the same resampling, layout and channel order as the float overload, each value rounded to the nearest
    /// integer in 0–255. <see cref="ImagePreprocessingSpec.Scale"/>, <see cref="ImagePreprocessingSpec.Mean"/> and
    /// <see cref="ImagePreprocessingSpec.Std"/> are ignored (the model normalises itself).
    /// </summary>
    public SourceMapping Run(ImageView image, Span<byte> destination)
    {
        CheckDestination(destination.Length, nameof(destination));
        var sink = new ByteSink(destination);
        return Run(image, ref sink);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> for an int8-input model: as the <see cref="byte"/> overload, minus 128
    /// (pixel 0 → −128, pixel 255 → 127). <see cref="ImagePreprocessingSpec.Scale"/>, <see cref="ImagePreprocessingSpec.Mean"/>
    /// and <see cref="ImagePreprocessingSpec.Std"/> are ignored.
    /// </summary>
    public SourceMapping Run(ImageView image, Span<sbyte> destination)
    {
        CheckDestination(destination.Length, nameof(destination));
        var sink = new SByteSink(destination);
        return Run(image, ref sink);
    }

    private void CheckDestination(int length, string paramName)
    {
        if (length < TensorLength)
        {
            throw new ArgumentException($"Destination holds {length} elements; {TensorLength} needed.", paramName);
        }
    }

    private SourceMapping Run<TSink>(ImageView image, ref TSink sink)
        where TSink : IPixelSink, allows ref struct
    {
        if (image.Width != _cachedWidth || image.Height != _cachedHeight)
        {
            Prepare(image.Width, image.Height);
        }

        HorizontalPass(image);
        VerticalPass(ref sink);
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

    private void VerticalPass<TSink>(ref TSink sink)
        where TSink : IPixelSink, allows ref struct
    {
        int outW = _spec.Width, outH = _spec.Height;
        var plane = outW * outH;
        var nchw = _spec.Layout == TensorLayout.Nchw;
        // Tensor indices of channels 0, 1, 2 of pixel i are i * step + channelStride * c.
        var step = nchw ? 1 : 3;
        var channelStride = nchw ? plane : 1;
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
                var i = ((y * outW) + x) * step;
                sink.Write(i, i + channelStride, i + (2 * channelStride), s0, s1, s2);
            }
        }
    }

    /// <summary>The final write of one output pixel (channel values already clamped to 0–255) into a typed tensor.</summary>
    private interface IPixelSink
    {
        void Write(int i0, int i1, int i2, float s0, float s1, float s2);
    }

    /// <summary>float32 tensor: <c>(v * Scale - Mean) / Std</c>.</summary>
    private readonly ref struct FloatSink(Span<float> destination, float[] multiplier, float[] offset) : IPixelSink
    {
        private readonly Span<float> _destination = destination;
        private readonly float _m0 = multiplier[0], _m1 = multiplier[1], _m2 = multiplier[2];
        private readonly float _o0 = offset[0], _o1 = offset[1], _o2 = offset[2];

        public void Write(int i0, int i1, int i2, float s0, float s1, float s2)
        {
            _destination[i0] = (s0 * _m0) + _o0;
            _destination[i1] = (s1 * _m1) + _o1;
            _destination[i2] = (s2 * _m2) + _o2;
        }
    }

    /// <summary>uint8 tensor: the pixel value rounded.</summary>
    private readonly ref struct ByteSink(Span<byte> destination) : IPixelSink
    {
        private readonly Span<byte> _destination = destination;

        public void Write(int i0, int i1, int i2, float s0, float s1, float s2)
        {
            _destination[i0] = ToByte(s0);
            _destination[i1] = ToByte(s1);
            _destination[i2] = ToByte(s2);
        }
    }

    /// <summary>int8 tensor: the pixel value rounded, minus 128.</summary>
    private readonly ref struct SByteSink(Span<sbyte> destination) : IPixelSink
    {
        private readonly Span<sbyte> _destination = destination;

        public void Write(int i0, int i1, int i2, float s0, float s1, float s2)
        {
            _destination[i0] = (sbyte)(ToByte(s0) - 128);
            _destination[i1] = (sbyte)(ToByte(s1) - 128);
            _destination[i2] = (sbyte)(ToByte(s2) - 128);
        }
    }

    /// <summary>Rounds a value already clamped to 0–255 to the nearest pixel value (halves away from zero).</summary>
    private static byte ToByte(float value) => (byte)MathF.Round(value, MidpointRounding.AwayFromZero);

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
