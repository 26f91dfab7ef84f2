using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
    private float[] _accumulator = [];
    private float[] _padRow = [];
    private float[] _pixelRow = [];
    private bool _horizontalIdentity;
    private int _identityFirst;
    private int _identityLength;
    private int _identitySource;
    private readonly Vector128<byte>[] _shuffleMasks = new Vector128<byte>[12];
    private readonly SimdPath _simd;
    private int _shuffleKey = -1;

    /// <summary>Creates a preprocessor for <paramref name="spec"/> on this CPU's fastest vector path.</summary>
    public ImagePreprocessor(ImagePreprocessingSpec spec)
        : this(spec, SimdPaths.Best)
    {
    }

    /// <summary>
    /// Creates a preprocessor for <paramref name="spec"/> that runs <paramref name="simd"/>: every path gives
    /// bit-identical output, so this only chooses speed (tests and benchmarks run each path on one machine).
    /// </summary>
    public ImagePreprocessor(ImagePreprocessingSpec spec, SimdPath simd)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!SimdPaths.IsSupported(simd))
        {
            throw new PlatformNotSupportedException($"SIMD path {simd} is not supported on this CPU.");
        }

        _simd = simd;
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

    /// <summary>The vector path this instance runs.</summary>
    public SimdPath Simd => _simd;

    /// <summary>Number of elements (floats, bytes or sbytes) written by any <c>Run</c> overload.</summary>
    public int TensorLength => _spec.Width * _spec.Height * 3;

    /// <summary>Fills <paramref name="destination"/> from <paramref name="image"/> and returns how to map model coordinates back to it.</summary>
    public SourceMapping Run(ImageView image, Span<float> destination)
    {
        CheckDestination(destination.Length, nameof(destination));
        var sink = new FloatSink(destination, _multiplier, _offset, _simd);
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
        var sink = new ByteSink(destination, _simd);
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
        var sink = new SByteSink(destination, _simd);
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

        var rowLength = outW * 3;
        if (_accumulator.Length < rowLength)
        {
            _accumulator = new float[rowLength];
            _padRow = new float[rowLength];
        }

        _padRow.AsSpan(0, rowLength).Fill(_spec.PadValue);
        // Source row widened to 4 floats a pixel for the vector horizontal filter.
        if (_pixelRow.Length < sourceWidth * 4)
        {
            _pixelRow = new float[sourceWidth * 4];
        }

        _horizontalIdentity = _horizontal.IsIdentity(out _identityFirst, out _identityLength, out _identitySource);

        _cachedWidth = sourceWidth;
        _cachedHeight = sourceHeight;
    }

    /// <summary>
    /// Filters the source rows that the vertical pass reads into <see cref="_rows"/>: one float row of
    /// <c>3 * Width</c> values per source row, planar (R row, G row, B row) for NCHW output so that the vertical
    /// pass and the final write run along contiguous single-channel runs, interleaved for NHWC.
    /// </summary>
    private void HorizontalPass(ImageView image)
    {
        var (r, g, b) = image.ChannelOffsets;
        // Tensor channel c reads source byte offset channel[c].
        int c0 = _spec.ChannelOrder == ChannelOrder.Rgb ? r : b, c1 = g, c2 = _spec.ChannelOrder == ChannelOrder.Rgb ? b : r;
        var bpp = image.BytesPerPixel;
        var outW = _spec.Width;
        var rowLength = outW * 3;
        var planar = _spec.Layout == TensorLayout.Nchw;
        // Row-buffer index of channel c of output pixel x: x * step + c * channelStride.
        var step = planar ? 1 : 3;
        var channelStride = planar ? outW : 1;
        var pixels = image.Pixels;
        var rows = _rows.AsSpan(0, _rowCount * rowLength);
        var useShuffle = _horizontalIdentity && _simd != SimdPath.Scalar && (bpp == 3 || bpp == 4) && _identityLength >= 16;
        if (useShuffle)
        {
            PrepareShuffleMasks(bpp, c0, c1, c2, planar);
        }

        for (var row = 0; row < _rowCount; row++)
        {
            var src = pixels.Slice((_firstRow + row) * image.Stride, image.Width * bpp);
            var dst = rows.Slice(row * rowLength, rowLength);
            if (_horizontalIdentity)
            {
                IdentityRow(src, dst, bpp, c0, c1, c2, step, channelStride, useShuffle);
            }
            else
            {
                FilterRow(src, dst, bpp, c0, c1, c2, step, channelStride);
            }
        }
    }

    /// <summary>
    /// General horizontal filter of one source row (per-output-pixel tap lists). With vectors the row is first widened to
    /// 4 floats per pixel (one 128-bit vector holding all channels), so each tap is one vector multiply-add; the sums
    /// are formed in the same order as the scalar loop (<c>s += v * w</c>, no fused multiply-add), so the results are
    /// bit-identical to it.
    /// </summary>
    private void FilterRow(ReadOnlySpan<byte> src, Span<float> dst, int bpp, int c0, int c1, int c2, int step, int channelStride)
    {
        var filter = _horizontal;
        var outW = _spec.Width;
        var pad = _spec.PadValue;
        ref var d = ref MemoryMarshal.GetReference(dst);
        ref var source = ref MemoryMarshal.GetReference(src);
        ref var weightsRef = ref MemoryMarshal.GetArrayDataReference(filter.Weights);
        var starts = filter.Start.AsSpan(0, outW);
        var counts = filter.Count.AsSpan(0, outW);
        var maxTaps = filter.MaxTaps;
        var maxChannel = Math.Max(Math.Max(c0, c1), c2);
        var width = src.Length / bpp;
        var vector = _simd != SimdPath.Scalar && (bpp == 3 || bpp == 4);
        if (vector)
        {
            if (_simd == SimdPath.Avx2)
            {
                WidenRowAvx2(src, _pixelRow.AsSpan(0, width * 4), bpp);
            }
            else
            {
                WidenRow128(src, _pixelRow.AsSpan(0, width * 4), bpp);
            }
        }

        ref var widened = ref MemoryMarshal.GetArrayDataReference(_pixelRow);
        Span<float> lanes = stackalloc float[4];
        for (var x = 0; x < outW; x++)
        {
            var count = counts[x];
            float s0 = 0, s1 = 0, s2 = 0;
            if (count == 0)
            {
                s0 = s1 = s2 = pad;
            }
            else
            {
                var start = starts[x];
                // Bounds of the row (checked once per output pixel, not per tap).
                if (start < 0 || (uint)(((start + count - 1) * bpp) + maxChannel + 1) > (uint)src.Length)
                {
                    throw new InvalidOperationException("Filter taps outside the source row.");
                }

                ref var w = ref Unsafe.Add(ref weightsRef, x * maxTaps);
                if (vector)
                {
                    ref var p = ref Unsafe.Add(ref widened, start * 4);
                    var sum = Vector128<float>.Zero;
                    for (var k = 0; k < count; k++)
                    {
                        sum += Vector128.LoadUnsafe(ref p, (nuint)(k * 4)) * Vector128.Create(Unsafe.Add(ref w, k));
                    }

                    sum.StoreUnsafe(ref MemoryMarshal.GetReference(lanes));
                    s0 = lanes[c0];
                    s1 = lanes[c1];
                    s2 = lanes[c2];
                }
                else
                {
                    ref var p = ref Unsafe.Add(ref source, start * bpp);
                    for (var k = 0; k < count; k++, p = ref Unsafe.Add(ref p, bpp))
                    {
                        var wk = Unsafe.Add(ref w, k);
                        s0 += Unsafe.Add(ref p, c0) * wk;
                        s1 += Unsafe.Add(ref p, c1) * wk;
                        s2 += Unsafe.Add(ref p, c2) * wk;
                    }
                }
            }

            var i = x * step;
            Unsafe.Add(ref d, i) = s0;
            Unsafe.Add(ref d, i + channelStride) = s1;
            Unsafe.Add(ref d, i + (2 * channelStride)) = s2;
        }
    }

    /// <summary>Widens a row of 3- or 4-byte pixels to 4 floats per pixel (lane j = byte j; lane 3 of a 3-byte pixel is 0). Needs AVX2.</summary>
    private static void WidenRowAvx2(ReadOnlySpan<byte> src, Span<float> dst, int bpp)
    {
        var width = dst.Length / 4;
        ref var s = ref MemoryMarshal.GetReference(src);
        ref var d = ref MemoryMarshal.GetReference(dst);
        var x = 0;
        if (bpp == 4)
        {
            for (; x + 2 <= width; x += 2)
            {
                var two = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref s, x * 4))).AsByte();
                Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(two)).StoreUnsafe(ref d, (nuint)(x * 4));
            }
        }
        else
        {
            // 4 pixels (12 bytes) from a 16-byte load: spread to 4 bytes each, then widen 2 pixels at a time.
            var spread = Vector128.Create((byte)0, 1, 2, 0x80, 3, 4, 5, 0x80, 6, 7, 8, 0x80, 9, 10, 11, 0x80);
            for (; (x * 3) + 16 <= src.Length && x + 4 <= width; x += 4)
            {
                var four = SimdPaths.ShuffleBytes(Vector128.LoadUnsafe(ref Unsafe.Add(ref s, x * 3)), spread);
                Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(four)).StoreUnsafe(ref d, (nuint)(x * 4));
                Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(four, 8)))
                    .StoreUnsafe(ref d, (nuint)((x * 4) + 8));
            }
        }

        for (; x < width; x++)
        {
            ref var p = ref Unsafe.Add(ref s, x * bpp);
            Unsafe.Add(ref d, x * 4) = p;
            Unsafe.Add(ref d, (x * 4) + 1) = Unsafe.Add(ref p, 1);
            Unsafe.Add(ref d, (x * 4) + 2) = Unsafe.Add(ref p, 2);
            Unsafe.Add(ref d, (x * 4) + 3) = bpp == 4 ? Unsafe.Add(ref p, 3) : 0;
        }
    }

    /// <summary>
    /// <see cref="WidenRowAvx2"/> with 128-bit vectors (NEON on ARM): 4 pixels per step, each pixel's bytes spread
    /// to 4 lanes and widened byte → ushort → uint → float (exact, as the scalar conversion).
    /// </summary>
    private static void WidenRow128(ReadOnlySpan<byte> src, Span<float> dst, int bpp)
    {
        var width = dst.Length / 4;
        ref var s = ref MemoryMarshal.GetReference(src);
        ref var d = ref MemoryMarshal.GetReference(dst);
        var x = 0;
        // 4-byte pixels are already in place; 3-byte pixels get a fourth lane of 0 (index 0x80).
        var spread = Vector128.Create((byte)0, 1, 2, 0x80, 3, 4, 5, 0x80, 6, 7, 8, 0x80, 9, 10, 11, 0x80);
        for (; (x * bpp) + 16 <= src.Length && x + 4 <= width; x += 4)
        {
            var four = Vector128.LoadUnsafe(ref Unsafe.Add(ref s, x * bpp));
            if (bpp == 3)
            {
                four = SimdPaths.ShuffleBytes(four, spread);
            }

            StoreWidened(four, ref Unsafe.Add(ref d, x * 4));
        }

        for (; x < width; x++)
        {
            ref var p = ref Unsafe.Add(ref s, x * bpp);
            Unsafe.Add(ref d, x * 4) = p;
            Unsafe.Add(ref d, (x * 4) + 1) = Unsafe.Add(ref p, 1);
            Unsafe.Add(ref d, (x * 4) + 2) = Unsafe.Add(ref p, 2);
            Unsafe.Add(ref d, (x * 4) + 3) = bpp == 4 ? Unsafe.Add(ref p, 3) : 0;
        }
    }

    /// <summary>
    /// Horizontal axis not resampled (scale 1, every output pixel one source pixel with weight 1): a byte → float
    /// convert of the covered run (16 pixels at a time with byte shuffles: pshufb on x86, TBL on ARM) plus padding.
    /// </summary>
    private void IdentityRow(ReadOnlySpan<byte> src, Span<float> dst, int bpp, int c0, int c1, int c2, int step, int channelStride, bool useShuffle)
    {
        var outW = _spec.Width;
        int first = _identityFirst, length = _identityLength;
        if (first > 0 || first + length < outW)
        {
            var pad = _spec.PadValue;
            for (var c = 0; c < 3; c++)
            {
                for (var x = 0; x < first; x++)
                {
                    dst[(x * step) + (c * channelStride)] = pad;
                }

                for (var x = first + length; x < outW; x++)
                {
                    dst[(x * step) + (c * channelStride)] = pad;
                }
            }
        }

        var run = src.Slice(_identitySource * bpp, length * bpp);
        ref var s = ref MemoryMarshal.GetReference(run);
        ref var d = ref MemoryMarshal.GetReference(dst);
        var x0 = 0;
        if (useShuffle)
        {
            var masks = _shuffleMasks;
            var m00 = masks[0]; var m01 = masks[1]; var m02 = masks[2]; var m03 = masks[3];
            var m10 = masks[4]; var m11 = masks[5]; var m12 = masks[6]; var m13 = masks[7];
            var m20 = masks[8]; var m21 = masks[9]; var m22 = masks[10]; var m23 = masks[11];
            // Chunk k of 16 output bytes goes to row-buffer offset k * chunkStride from the group's first value.
            var chunkStride = step == 1 ? channelStride : 16;
            for (; x0 + 16 <= length; x0 += 16)
            {
                ref var p = ref Unsafe.Add(ref s, x0 * bpp);
                var in0 = Vector128.LoadUnsafe(ref p);
                var in1 = Vector128.LoadUnsafe(ref p, 16);
                var in2 = Vector128.LoadUnsafe(ref p, 32);
                Vector128<byte> k0, k1, k2;
                if (bpp == 4)
                {
                    var in3 = Vector128.LoadUnsafe(ref p, 48);
                    k0 = SimdPaths.ShuffleBytes(in0, m00) | SimdPaths.ShuffleBytes(in1, m01) | SimdPaths.ShuffleBytes(in2, m02) | SimdPaths.ShuffleBytes(in3, m03);
                    k1 = SimdPaths.ShuffleBytes(in0, m10) | SimdPaths.ShuffleBytes(in1, m11) | SimdPaths.ShuffleBytes(in2, m12) | SimdPaths.ShuffleBytes(in3, m13);
                    k2 = SimdPaths.ShuffleBytes(in0, m20) | SimdPaths.ShuffleBytes(in1, m21) | SimdPaths.ShuffleBytes(in2, m22) | SimdPaths.ShuffleBytes(in3, m23);
                }
                else
                {
                    k0 = SimdPaths.ShuffleBytes(in0, m00) | SimdPaths.ShuffleBytes(in1, m01) | SimdPaths.ShuffleBytes(in2, m02);
                    k1 = SimdPaths.ShuffleBytes(in0, m10) | SimdPaths.ShuffleBytes(in1, m11) | SimdPaths.ShuffleBytes(in2, m12);
                    k2 = SimdPaths.ShuffleBytes(in0, m20) | SimdPaths.ShuffleBytes(in1, m21) | SimdPaths.ShuffleBytes(in2, m22);
                }

                ref var o = ref Unsafe.Add(ref d, step == 1 ? first + x0 : (first + x0) * 3);
                StoreWidened(k0, ref o);
                StoreWidened(k1, ref Unsafe.Add(ref o, chunkStride));
                StoreWidened(k2, ref Unsafe.Add(ref o, 2 * chunkStride));
            }
        }

        for (; x0 < length; x0++)
        {
            ref var p = ref Unsafe.Add(ref s, x0 * bpp);
            var i = (first + x0) * step;
            Unsafe.Add(ref d, i) = Unsafe.Add(ref p, c0);
            Unsafe.Add(ref d, i + channelStride) = Unsafe.Add(ref p, c1);
            Unsafe.Add(ref d, i + (2 * channelStride)) = Unsafe.Add(ref p, c2);
        }
    }

    /// <summary>Stores 16 bytes as 16 floats.</summary>
    private static void StoreWidened(Vector128<byte> bytes, ref float destination)
    {
        var lo = Vector128.WidenLower(bytes);
        var hi = Vector128.WidenUpper(bytes);
        Vector128.ConvertToSingle(Vector128.WidenLower(lo).AsInt32()).StoreUnsafe(ref destination);
        Vector128.ConvertToSingle(Vector128.WidenUpper(lo).AsInt32()).StoreUnsafe(ref destination, 4);
        Vector128.ConvertToSingle(Vector128.WidenLower(hi).AsInt32()).StoreUnsafe(ref destination, 8);
        Vector128.ConvertToSingle(Vector128.WidenUpper(hi).AsInt32()).StoreUnsafe(ref destination, 12);
    }

    /// <summary>
    /// pshufb masks for 16 pixels: output chunk k (16 bytes) = OR over input chunk j of shuffle(input j, mask[k * 4 + j]).
    /// Planar: chunk k is channel k of the 16 pixels. Interleaved: chunk k is bytes 16k..16k+15 of c0 c1 c2 c0 c1 c2 ….
    /// </summary>
    private void PrepareShuffleMasks(int bpp, int c0, int c1, int c2, bool planar)
    {
        var key = bpp | (c0 << 4) | (c1 << 8) | (c2 << 12) | (planar ? 1 << 16 : 0);
        if (key == _shuffleKey)
        {
            return;
        }

        Span<byte> mask = stackalloc byte[16];
        for (var k = 0; k < 3; k++)
        {
            for (var j = 0; j < 4; j++)
            {
                for (var lane = 0; lane < 16; lane++)
                {
                    var o = (k * 16) + lane;
                    int pixel, channel;
                    if (planar)
                    {
                        (pixel, channel) = (lane, k);
                    }
                    else
                    {
                        (pixel, channel) = (o / 3, o % 3);
                    }

                    var source = (pixel * bpp) + (channel == 0 ? c0 : channel == 1 ? c1 : c2) - (16 * j);
                    mask[lane] = source is >= 0 and < 16 ? (byte)source : (byte)0x80;
                }

                _shuffleMasks[(k * 4) + j] = Vector128.Create((ReadOnlySpan<byte>)mask);
            }
        }

        _shuffleKey = key;
    }

    /// <summary>
    /// For each output row: a padding row, one source row as is (single tap of weight 1: no filtering), or the
    /// weighted sum of whole rows of the row buffer (the taps are the same along a row), computed with vectors; then
    /// clamp, normalise/convert and write the row into the tensor.
    /// </summary>
    private void VerticalPass<TSink>(ref TSink sink)
        where TSink : IPixelSink, allows ref struct
    {
        int outW = _spec.Width, outH = _spec.Height;
        var rowLength = outW * 3;
        var plane = outW * outH;
        var nchw = _spec.Layout == TensorLayout.Nchw;
        var filter = _vertical;
        ReadOnlySpan<float> rows = _rows.AsSpan(0, _rowCount * rowLength);
        var acc = _accumulator.AsSpan(0, rowLength);
        ReadOnlySpan<float> padRow = _padRow.AsSpan(0, rowLength);
        for (var y = 0; y < outH; y++)
        {
            var count = filter.Count[y];
            ReadOnlySpan<float> line;
            if (count == 0)
            {
                line = padRow;
            }
            else
            {
                var weights = filter.Weights.AsSpan(y * filter.MaxTaps, count);
                var taps = rows.Slice((filter.Start[y] - _firstRow) * rowLength, count * rowLength);
                if (count == 1 && weights[0] == 1f)
                {
                    line = taps;
                }
                else
                {
                    Accumulate(taps, weights, acc, rowLength, _simd);
                    line = acc;
                }
            }

            if (nchw)
            {
                var i = y * outW;
                sink.WritePlane(line[..outW], i, 0);
                sink.WritePlane(line.Slice(outW, outW), plane + i, 1);
                sink.WritePlane(line.Slice(2 * outW, outW), (2 * plane) + i, 2);
            }
            else
            {
                sink.WriteInterleaved(line, y * rowLength);
            }
        }
    }

    /// <summary>
    /// <c>acc = Σ_k weights[k] * row_k</c> over whole rows (row k at <c>taps[k * rowLength]</c>), in the same order
    /// as a scalar loop (<c>((0 + r0*w0) + r1*w1) + …</c>, no fused multiply-add), so results are bit-identical.
    /// </summary>
    private static void Accumulate(ReadOnlySpan<float> taps, ReadOnlySpan<float> weights, Span<float> acc, int rowLength, SimdPath simd)
    {
        ref var t = ref MemoryMarshal.GetReference(taps);
        ref var a = ref MemoryMarshal.GetReference(acc);
        var n = weights.Length;
        var i = 0;
        if (simd == SimdPath.Vector128)
        {
            var w0 = Vector128.Create(weights[0]);
            for (; i + Vector128<float>.Count <= rowLength; i += Vector128<float>.Count)
            {
                var s = Vector128.LoadUnsafe(ref t, (nuint)i) * w0;
                for (var k = 1; k < n; k++)
                {
                    s += Vector128.LoadUnsafe(ref t, (nuint)((k * rowLength) + i)) * Vector128.Create(weights[k]);
                }

                s.StoreUnsafe(ref a, (nuint)i);
            }
        }
        else if (simd == SimdPath.Avx2)
        {
            var w0 = Vector256.Create(weights[0]);
            for (; i + Vector256<float>.Count <= rowLength; i += Vector256<float>.Count)
            {
                var s = Vector256.LoadUnsafe(ref t, (nuint)i) * w0;
                for (var k = 1; k < n; k++)
                {
                    s += Vector256.LoadUnsafe(ref t, (nuint)((k * rowLength) + i)) * Vector256.Create(weights[k]);
                }

                s.StoreUnsafe(ref a, (nuint)i);
            }
        }

        for (; i < rowLength; i++)
        {
            var s = 0f;
            for (var k = 0; k < n; k++)
            {
                s += Unsafe.Add(ref t, (k * rowLength) + i) * weights[k];
            }

            Unsafe.Add(ref a, i) = s;
        }
    }

    /// <summary>Writes rows of channel values (not yet clamped) into a typed tensor.</summary>
    private interface IPixelSink
    {
        /// <summary>Contiguous values of one channel to tensor indices <paramref name="index"/>…</summary>
        void WritePlane(ReadOnlySpan<float> values, int index, int channel);

        /// <summary>Interleaved c0 c1 c2 values (starting at channel 0) to tensor indices <paramref name="index"/>…</summary>
        void WriteInterleaved(ReadOnlySpan<float> values, int index);
    }

    /// <summary>float32 tensor: <c>(clamp(v, 0, 255) * Scale - Mean) / Std</c>.</summary>
    private readonly ref struct FloatSink(Span<float> destination, float[] multiplier, float[] offset, SimdPath simd) : IPixelSink
    {
        private readonly Span<float> _destination = destination;
        private readonly SimdPath _simd = simd;
        private readonly float _m0 = multiplier[0], _m1 = multiplier[1], _m2 = multiplier[2];
        private readonly float _o0 = offset[0], _o1 = offset[1], _o2 = offset[2];

        public void WritePlane(ReadOnlySpan<float> values, int index, int channel)
        {
            var (m, o) = channel switch { 0 => (_m0, _o0), 1 => (_m1, _o1), _ => (_m2, _o2) };
            var dst = _destination.Slice(index, values.Length);
            ref var s = ref MemoryMarshal.GetReference(values);
            ref var d = ref MemoryMarshal.GetReference(dst);
            var i = 0;
            if (_simd == SimdPath.Vector128)
            {
                Vector128<float> vm = Vector128.Create(m), vo = Vector128.Create(o), lo = Vector128<float>.Zero, hi = Vector128.Create(255f);
                for (; i + 4 <= values.Length; i += 4)
                {
                    var v = Vector128.Min(Vector128.Max(Vector128.LoadUnsafe(ref s, (nuint)i), lo), hi);
                    ((v * vm) + vo).StoreUnsafe(ref d, (nuint)i);
                }
            }
            else if (_simd == SimdPath.Avx2)
            {
                Vector256<float> vm = Vector256.Create(m), vo = Vector256.Create(o), lo = Vector256<float>.Zero, hi = Vector256.Create(255f);
                for (; i + 8 <= values.Length; i += 8)
                {
                    var v = Vector256.Min(Vector256.Max(Vector256.LoadUnsafe(ref s, (nuint)i), lo), hi);
                    ((v * vm) + vo).StoreUnsafe(ref d, (nuint)i);
                }
            }

            for (; i < values.Length; i++)
            {
                Unsafe.Add(ref d, i) = (Math.Clamp(Unsafe.Add(ref s, i), 0f, 255f) * m) + o;
            }
        }

        public void WriteInterleaved(ReadOnlySpan<float> values, int index)
        {
            var dst = _destination.Slice(index, values.Length);
            ref var s = ref MemoryMarshal.GetReference(values);
            ref var d = ref MemoryMarshal.GetReference(dst);
            var i = 0;
            if (_simd == SimdPath.Vector128)
            {
                // 12 floats = 4 pixels: the channel pattern repeats every 3 vectors.
                var ma = Vector128.Create(_m0, _m1, _m2, _m0);
                var mb = Vector128.Create(_m1, _m2, _m0, _m1);
                var mc = Vector128.Create(_m2, _m0, _m1, _m2);
                var oa = Vector128.Create(_o0, _o1, _o2, _o0);
                var ob = Vector128.Create(_o1, _o2, _o0, _o1);
                var oc = Vector128.Create(_o2, _o0, _o1, _o2);
                Vector128<float> lo = Vector128<float>.Zero, hi = Vector128.Create(255f);
                for (; i + 12 <= values.Length; i += 12)
                {
                    var a = Vector128.Min(Vector128.Max(Vector128.LoadUnsafe(ref s, (nuint)i), lo), hi);
                    var b = Vector128.Min(Vector128.Max(Vector128.LoadUnsafe(ref s, (nuint)(i + 4)), lo), hi);
                    var c = Vector128.Min(Vector128.Max(Vector128.LoadUnsafe(ref s, (nuint)(i + 8)), lo), hi);
                    ((a * ma) + oa).StoreUnsafe(ref d, (nuint)i);
                    ((b * mb) + ob).StoreUnsafe(ref d, (nuint)(i + 4));
                    ((c * mc) + oc).StoreUnsafe(ref d, (nuint)(i + 8));
                }
            }
            else if (_simd == SimdPath.Avx2)
            {
                // 24 floats = 8 pixels: the channel pattern repeats every 3 vectors.
                var ma = Vector256.Create(_m0, _m1, _m2, _m0, _m1, _m2, _m0, _m1);
                var mb = Vector256.Create(_m2, _m0, _m1, _m2, _m0, _m1, _m2, _m0);
                var mc = Vector256.Create(_m1, _m2, _m0, _m1, _m2, _m0, _m1, _m2);
                var oa = Vector256.Create(_o0, _o1, _o2, _o0, _o1, _o2, _o0, _o1);
                var ob = Vector256.Create(_o2, _o0, _o1, _o2, _o0, _o1, _o2, _o0);
                var oc = Vector256.Create(_o1, _o2, _o0, _o1, _o2, _o0, _o1, _o2);
                Vector256<float> lo = Vector256<float>.Zero, hi = Vector256.Create(255f);
                for (; i + 24 <= values.Length; i += 24)
                {
                    var a = Vector256.Min(Vector256.Max(Vector256.LoadUnsafe(ref s, (nuint)i), lo), hi);
                    var b = Vector256.Min(Vector256.Max(Vector256.LoadUnsafe(ref s, (nuint)(i + 8)), lo), hi);
                    var c = Vector256.Min(Vector256.Max(Vector256.LoadUnsafe(ref s, (nuint)(i + 16)), lo), hi);
                    ((a * ma) + oa).StoreUnsafe(ref d, (nuint)i);
                    ((b * mb) + ob).StoreUnsafe(ref d, (nuint)(i + 8));
                    ((c * mc) + oc).StoreUnsafe(ref d, (nuint)(i + 16));
                }
            }

            for (; i < values.Length; i += 3)
            {
                Unsafe.Add(ref d, i) = (Math.Clamp(Unsafe.Add(ref s, i), 0f, 255f) * _m0) + _o0;
                Unsafe.Add(ref d, i + 1) = (Math.Clamp(Unsafe.Add(ref s, i + 1), 0f, 255f) * _m1) + _o1;
                Unsafe.Add(ref d, i + 2) = (Math.Clamp(Unsafe.Add(ref s, i + 2), 0f, 255f) * _m2) + _o2;
            }
        }
    }

    /// <summary>uint8 tensor: the pixel value rounded.</summary>
    private readonly ref struct ByteSink(Span<byte> destination, SimdPath simd) : IPixelSink
    {
        private readonly Span<byte> _destination = destination;
        private readonly SimdPath _simd = simd;

        public void WritePlane(ReadOnlySpan<float> values, int index, int channel) =>
            ConvertToBytes(values, _destination.Slice(index, values.Length), 0, _simd);

        public void WriteInterleaved(ReadOnlySpan<float> values, int index) =>
            ConvertToBytes(values, _destination.Slice(index, values.Length), 0, _simd);
    }

    /// <summary>int8 tensor: the pixel value rounded, minus 128.</summary>
    private readonly ref struct SByteSink(Span<sbyte> destination, SimdPath simd) : IPixelSink
    {
        private readonly Span<byte> _destination = MemoryMarshal.AsBytes(destination);
        private readonly SimdPath _simd = simd;

        public void WritePlane(ReadOnlySpan<float> values, int index, int channel) =>
            ConvertToBytes(values, _destination.Slice(index, values.Length), 0x80, _simd);

        public void WriteInterleaved(ReadOnlySpan<float> values, int index) =>
            ConvertToBytes(values, _destination.Slice(index, values.Length), 0x80, _simd);
    }

    /// <summary>
    /// <c>destination[i] = ToByte(clamp(values[i], 0, 255)) ^ flip</c> (flip 0x80 turns a pixel byte into pixel − 128 as sbyte).
    /// The vector path rounds halves away from zero exactly like <see cref="ToByte"/>: trunc(v) + (v − trunc(v) ≥ 0.5).
    /// </summary>
    private static void ConvertToBytes(ReadOnlySpan<float> values, Span<byte> destination, byte flip, SimdPath simd)
    {
        ref var s = ref MemoryMarshal.GetReference(values);
        ref var d = ref MemoryMarshal.GetReference(destination);
        var n = values.Length;
        var i = 0;
        if (simd == SimdPath.Vector128)
        {
            var vflip = Vector128.Create(flip);
            for (; i + 16 <= n; i += 16)
            {
                var a = RoundToInt(Vector128.LoadUnsafe(ref s, (nuint)i));
                var b = RoundToInt(Vector128.LoadUnsafe(ref s, (nuint)(i + 4)));
                var c = RoundToInt(Vector128.LoadUnsafe(ref s, (nuint)(i + 8)));
                var e = RoundToInt(Vector128.LoadUnsafe(ref s, (nuint)(i + 12)));
                var bytes = Vector128.Narrow(Vector128.Narrow(a, b), Vector128.Narrow(c, e));
                (bytes ^ vflip).StoreUnsafe(ref d, (nuint)i);
            }
        }
        else if (simd == SimdPath.Avx2)
        {
            var vflip = Vector256.Create(flip);
            for (; i + 32 <= n; i += 32)
            {
                var a = RoundToInt(Vector256.LoadUnsafe(ref s, (nuint)i));
                var b = RoundToInt(Vector256.LoadUnsafe(ref s, (nuint)(i + 8)));
                var c = RoundToInt(Vector256.LoadUnsafe(ref s, (nuint)(i + 16)));
                var e = RoundToInt(Vector256.LoadUnsafe(ref s, (nuint)(i + 24)));
                var bytes = Vector256.Narrow(Vector256.Narrow(a, b), Vector256.Narrow(c, e));
                (bytes ^ vflip).StoreUnsafe(ref d, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref d, i) = (byte)(ToByte(Math.Clamp(Unsafe.Add(ref s, i), 0f, 255f)) ^ flip);
        }
    }

    private static Vector128<uint> RoundToInt(Vector128<float> value)
    {
        var v = Vector128.Min(Vector128.Max(value, Vector128<float>.Zero), Vector128.Create(255f));
        var t = Vector128.Truncate(v);
        var up = Vector128.GreaterThanOrEqual(v - t, Vector128.Create(0.5f)) & Vector128<float>.One;
        return Vector128.ConvertToInt32(t + up).AsUInt32();
    }

    private static Vector256<uint> RoundToInt(Vector256<float> value)
    {
        var v = Vector256.Min(Vector256.Max(value, Vector256<float>.Zero), Vector256.Create(255f));
        var t = Vector256.Truncate(v);
        var up = Vector256.GreaterThanOrEqual(v - t, Vector256.Create(0.5f)) & Vector256<float>.One;
        return Vector256.ConvertToInt32(t + up).AsUInt32();
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

        /// <summary>
        /// True when the axis is not resampled: outputs <paramref name="first"/>…+<paramref name="length"/> each read
        /// exactly one source pixel (consecutive from <paramref name="source"/>) with weight 1, and all others are padding.
        /// </summary>
        public bool IsIdentity(out int first, out int length, out int source)
        {
            first = -1;
            length = 0;
            source = 0;
            for (var i = 0; i < Start.Length; i++)
            {
                if (Count[i] == 0)
                {
                    continue;
                }

                if (Count[i] != 1 || Weights[i * MaxTaps] != 1f)
                {
                    return false;
                }

                if (first < 0)
                {
                    (first, source) = (i, Start[i]);
                }
                else if (i != first + length || Start[i] != source + length)
                {
                    return false;
                }

                length++;
            }

            if (first < 0)
            {
                first = 0;
            }

            return true;
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
