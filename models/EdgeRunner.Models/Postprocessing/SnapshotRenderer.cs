using System.Globalization;
using EdgeRunner.Models.Imaging;
using SkiaSharp;

namespace EdgeRunner.Models.Postprocessing;

/// <summary>One box to draw on a snapshot, in source-frame pixels.</summary>
/// <param name="X1">Left edge.</param>
/// <param name="Y1">Top edge.</param>
/// <param name="X2">Right edge.</param>
/// <param name="Y2">Bottom edge.</param>
/// <param name="ClassId">Picks the box colour (same class, same colour in every snapshot).</param>
/// <param name="Label">Text drawn with the score above the box.</param>
/// <param name="Score">Confidence, 0–1.</param>
public readonly record struct SnapshotBox(float X1, float Y1, float X2, float Y2, int ClassId, string Label, float Score);

/// <summary>
/// Draws boxes with "label score" captions on a copy of a frame and encodes it as JPEG with Skia.
/// Frames wider than the maximum width are scaled down first (boxes scaled with them). Post-processing of
/// detection results, so it reads the models library's <see cref="ImageView"/> and knows nothing of cameras.
/// </summary>
/// <remarks>
/// Skia's Linux "NoDependencies" build has no fontconfig: it finds typefaces only by scanning
/// <c>/usr/share/fonts</c>. On a device without fonts there the default typeface has no glyphs and
/// text would draw nothing; <see cref="CanDrawText"/> is then false and snapshots carry boxes only.
/// Not thread-safe: one renderer per camera, used by one snapshot at a time. Snapshots are rare, so
/// this reuses its bitmaps and stream but is not held to the zero-allocation rule of the frame path.
/// </remarks>
public sealed class SnapshotRenderer : IDisposable
{
    // Sans families tried before Skia's default (which, without fontconfig, is whatever it found first,
    // often a serif); all are common on Debian/Ubuntu/Alpine/Raspberry Pi OS images.
    private static readonly string[] PreferredFamilies = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans", "Roboto"];

    // Distinct, saturated colours that stay readable under white text; picked by class id.
    private static readonly SKColor[] Palette =
    [
        new(0xE6, 0x19, 0x4B), new(0x3C, 0xB4, 0x4B), new(0x43, 0x63, 0xD8), new(0xF5, 0x82, 0x31),
        new(0x91, 0x1E, 0xB4), new(0x00, 0x80, 0x80), new(0xF0, 0x32, 0xE6), new(0x9A, 0x63, 0x24),
        new(0x80, 0x00, 0x00), new(0x00, 0x00, 0x75), new(0x80, 0x80, 0x00), new(0x46, 0x99, 0x90),
    ];

    private readonly int _maxWidth;
    private readonly int _quality;
    private readonly SKTypeface? _typeface;
    private readonly SKPaint _boxPaint = new() { Style = SKPaintStyle.Stroke, IsAntialias = true };
    private readonly SKPaint _fillPaint = new() { Style = SKPaintStyle.Fill, IsAntialias = true };
    private readonly SKPaint _textPaint = new() { Color = SKColors.White, IsAntialias = true };
    private readonly MemoryStream _jpeg = new();
    private SKBitmap? _source;
    private SKBitmap? _output;

    /// <summary>Creates a renderer.</summary>
    /// <param name="maxWidth">Widest snapshot produced; wider frames are scaled down.</param>
    /// <param name="quality">JPEG quality, 1–100.</param>
    public SnapshotRenderer(int maxWidth, int quality)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(quality, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(quality, 100);
        _maxWidth = maxWidth;
        _quality = quality;
        _typeface = FindTypeface();
    }

    /// <summary>Whether a typeface with Latin glyphs was found, i.e. whether captions are drawn.</summary>
    public bool CanDrawText => _typeface is not null;

    /// <summary>Name of the typeface captions use, or null when <see cref="CanDrawText"/> is false.</summary>
    public string? TypefaceName => _typeface?.FamilyName;

    /// <summary>
    /// Renders the annotated JPEG of a frame and returns its bytes, valid until the next call.
    /// </summary>
    /// <param name="image">The source pixels (their geometry is checked when the view is made).</param>
    /// <param name="boxes">Boxes in source pixels.</param>
    public ReadOnlySpan<byte> Render(in ImageView image, ReadOnlySpan<SnapshotBox> boxes)
    {
        var width = image.Width;
        var height = image.Height;
        var source = Reuse(ref _source, width, height);
        CopyToRgba(image, source);

        var scale = width > _maxWidth ? (float)_maxWidth / width : 1f;
        var outWidth = Math.Max(1, (int)Math.Round(width * scale));
        var outHeight = Math.Max(1, (int)Math.Round(height * scale));
        var output = Reuse(ref _output, outWidth, outHeight);
        using (var canvas = new SKCanvas(output))
        {
            using (var copy = SKImage.FromBitmap(source))
            {
                canvas.DrawImage(copy, new SKRect(0, 0, outWidth, outHeight), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
            }

            Annotate(canvas, boxes, scale, outWidth, outHeight);
        }

        _jpeg.SetLength(0);
        if (!output.Encode(_jpeg, SKEncodedImageFormat.Jpeg, _quality))
        {
            throw new InvalidOperationException("Skia could not encode the snapshot as JPEG.");
        }

        return _jpeg.GetBuffer().AsSpan(0, (int)_jpeg.Length);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _source?.Dispose();
        _output?.Dispose();
        _typeface?.Dispose();
        _boxPaint.Dispose();
        _fillPaint.Dispose();
        _textPaint.Dispose();
        _jpeg.Dispose();
    }

    private static SKTypeface? FindTypeface()
    {
        foreach (var family in PreferredFamilies)
        {
            var match = SKFontManager.Default.MatchFamily(family);
            if (Usable(match))
            {
                return match;
            }

            match?.Dispose();
        }

        var fallback = SKTypeface.CreateDefault();
        if (Usable(fallback))
        {
            return fallback;
        }

        fallback.Dispose();
        return null;

        // An empty typeface (no fonts found) reports zero glyphs; a symbol font lacks the letters.
        static bool Usable(SKTypeface? typeface)
        {
            if (typeface is null || typeface.GlyphCount == 0)
            {
                return false;
            }

            using var font = new SKFont(typeface);
            return font.ContainsGlyphs("Aa0.");
        }
    }

    private static SKBitmap Reuse(ref SKBitmap? bitmap, int width, int height)
    {
        if (bitmap is null || bitmap.Width != width || bitmap.Height != height)
        {
            bitmap?.Dispose();
            bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        }

        return bitmap;
    }

    private static void CopyToRgba(in ImageView image, SKBitmap destination)
    {
        var target = destination.GetPixelSpan();
        var targetStride = destination.RowBytes;
        var width = image.Width;
        var bpp = image.BytesPerPixel;
        var (red, green, blue) = image.ChannelOffsets;
        for (var y = 0; y < image.Height; y++)
        {
            var src = image.Pixels.Slice(y * image.Stride, width * bpp);
            var dst = target.Slice(y * targetStride, width * 4);
            if (image.Format == ImagePixelFormat.Rgba32)
            {
                src.CopyTo(dst);
                continue;
            }

            for (int x = 0, s = 0, d = 0; x < width; x++, s += bpp, d += 4)
            {
                dst[d] = src[s + red];
                dst[d + 1] = src[s + green];
                dst[d + 2] = src[s + blue];

                // The snapshot is opaque whatever the source's alpha says (JPEG has none anyway).
                dst[d + 3] = 255;
            }
        }
    }

    private void Annotate(SKCanvas canvas, ReadOnlySpan<SnapshotBox> boxes, float scale, int outWidth, int outHeight)
    {
        // Line width and text size follow the snapshot size so a 320 px and a 1280 px snapshot look alike.
        var stroke = Math.Max(2f, outWidth / 320f);
        _boxPaint.StrokeWidth = stroke;
        using var font = _typeface is null ? null : new SKFont(_typeface, Math.Max(11f, outWidth / 45f));
        foreach (var box in boxes)
        {
            var color = Palette[(int)((uint)box.ClassId % (uint)Palette.Length)];
            var rect = new SKRect(
                Math.Clamp(box.X1 * scale, 0, outWidth - 1),
                Math.Clamp(box.Y1 * scale, 0, outHeight - 1),
                Math.Clamp(box.X2 * scale, 0, outWidth - 1),
                Math.Clamp(box.Y2 * scale, 0, outHeight - 1));
            _boxPaint.Color = color;
            canvas.DrawRect(rect, _boxPaint);

            if (font is null)
            {
                continue;
            }

            var caption = string.Create(CultureInfo.InvariantCulture, $"{box.Label} {box.Score:0.00}");
            if (!font.ContainsGlyphs(caption))
            {
                // A label in a script the typeface lacks would draw as nothing; show the score alone then.
                caption = box.Score.ToString("0.00", CultureInfo.InvariantCulture);
            }

            var textWidth = font.MeasureText(caption);
            var metrics = font.Metrics;
            var textHeight = metrics.Descent - metrics.Ascent;
            var pad = stroke;

            // Caption above the box, or inside its top edge when the box touches the top of the image.
            var top = rect.Top - textHeight - (2 * pad) >= 0 ? rect.Top - textHeight - (2 * pad) : rect.Top;
            var left = Math.Clamp(rect.Left - (stroke / 2), 0, Math.Max(0, outWidth - textWidth - (2 * pad)));
            _fillPaint.Color = color;
            canvas.DrawRect(new SKRect(left, top, left + textWidth + (2 * pad), top + textHeight + (2 * pad)), _fillPaint);
            canvas.DrawText(caption, left + pad, top + pad - metrics.Ascent, SKTextAlign.Left, font, _textPaint);
        }
    }
}
