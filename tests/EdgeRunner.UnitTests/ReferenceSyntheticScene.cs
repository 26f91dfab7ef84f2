using EdgeRunner.Hardware.Cameras;

namespace EdgeRunner.UnitTests;

/// <summary>
/// <see cref="SyntheticScene"/> as it was before its renderer was made fast (commit 65c1858): one serial
/// xorshift stream and a per-byte multiply. Kept verbatim as the reference the fast renderer must match byte
/// for byte, because the bundled detector was trained on these frames.
/// </summary>
internal sealed class ReferenceSyntheticScene
{
    private readonly SceneObject[] _objects;
    private readonly Clutter[] _clutter;
    private readonly int _seed;
    private readonly byte[] _background;

    /// <summary>
    /// Creates a scene of <paramref name="width"/> × <paramref name="height"/> from <paramref name="seed"/>
    /// with <paramref name="objectCount"/> objects (null: 1 to 6, chosen by the seed).
    /// </summary>
    public ReferenceSyntheticScene(int width, int height, int seed, int? objectCount = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 32);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 32);
        Width = width;
        Height = height;
        _seed = seed;
        var random = new Random(seed);
        var count = objectCount ?? random.Next(1, 7);
        ArgumentOutOfRangeException.ThrowIfNegative(count, nameof(objectCount));

        var minSide = Math.Min(width, height);
        _objects = new SceneObject[count];
        for (var i = 0; i < count; i++)
        {
            var size = (float)(minSide * (0.08 + (random.NextDouble() * 0.22)));
            _objects[i] = new SceneObject(
                (SyntheticShape)random.Next(3),
                size,
                X: (float)(random.NextDouble() * (width - size)),
                Y: (float)(random.NextDouble() * (height - size)),
                Vx: (float)((random.NextDouble() - 0.5) * 8),
                Vy: (float)((random.NextDouble() - 0.5) * 8),
                R: (byte)random.Next(40, 256),
                G: (byte)random.Next(40, 256),
                B: (byte)random.Next(40, 256));
        }

        // Clutter: small specks and elongated bars (never square) that a detector must learn to ignore.
        _clutter = new Clutter[random.Next(4, 12)];
        for (var i = 0; i < _clutter.Length; i++)
        {
            var shortSide = random.Next(3, 16);
            var longSide = shortSide * random.Next(3, 8);
            var horizontal = random.Next(2) == 0;
            _clutter[i] = new Clutter(
                random.Next(width),
                random.Next(height),
                horizontal ? longSide : shortSide,
                horizontal ? shortSide : longSide,
                (byte)random.Next(40, 230),
                (byte)random.Next(40, 230),
                (byte)random.Next(40, 230));
        }

        // Static background (gradient plus clutter), rendered once; lighting and noise vary per frame.
        _background = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var o = ((y * width) + x) * 3;
                _background[o] = (byte)(40 + (60 * x / width));
                _background[o + 1] = (byte)(50 + (50 * y / height));
                _background[o + 2] = (byte)(70 + (30 * (x + y) / (width + height)));
            }
        }

        foreach (var c in _clutter)
        {
            for (var y = c.Y; y < Math.Min(height, c.Y + c.H); y++)
            {
                for (var x = c.X; x < Math.Min(width, c.X + c.W); x++)
                {
                    var o = ((y * width) + x) * 3;
                    _background[o] = c.R;
                    _background[o + 1] = c.G;
                    _background[o + 2] = c.B;
                }
            }
        }
    }

    /// <summary>Frame width in pixels.</summary>
    public int Width { get; }

    /// <summary>Frame height in pixels.</summary>
    public int Height { get; }

    /// <summary>Number of objects in every frame.</summary>
    public int ObjectCount => _objects.Length;

    /// <summary>Writes the ground truth of frame <paramref name="index"/> into <paramref name="destination"/> (length ≥ <see cref="ObjectCount"/>).</summary>
    public void GetTruth(long index, Span<SyntheticObject> destination)
    {
        for (var i = 0; i < _objects.Length; i++)
        {
            var (x, y) = Position(_objects[i], index);
            destination[i] = new SyntheticObject(_objects[i].Shape, x, y, x + _objects[i].Size, y + _objects[i].Size);
        }
    }

    /// <summary>Renders frame <paramref name="index"/> as RGB24 into <paramref name="rgb"/> (Width × Height × 3 bytes).</summary>
    public void Render(long index, Span<byte> rgb)
    {
        var needed = Width * Height * 3;
        if (rgb.Length < needed)
        {
            throw new ArgumentException($"Destination holds {rgb.Length} bytes; {needed} needed.", nameof(rgb));
        }

        // Slow lighting drift, as a camera sees over a day compressed into a minute.
        var light = 0.75 + (0.25 * Math.Sin(index / 60.0));
        // Not HashCode.Combine: it is randomised per process, and frames must be identical across runs.
        var noiseState = NoiseSeed(_seed, index);
        for (var i = 0; i < needed; i++)
        {
            noiseState ^= noiseState << 13;
            noiseState ^= noiseState >> 17;
            noiseState ^= noiseState << 5;
            var noise = (int)(noiseState & 15) - 8;
            rgb[i] = ClampToByte((int)(_background[i] * light) + noise);
        }

        foreach (var obj in _objects)
        {
            var (x0, y0) = Position(obj, index);
            DrawShape(rgb, obj, x0, y0, light);
        }
    }

    private void DrawShape(Span<byte> rgb, in SceneObject obj, float x0, float y0, double light)
    {
        var size = obj.Size;
        var r = ClampToByte((int)(obj.R * light));
        var g = ClampToByte((int)(obj.G * light));
        var b = ClampToByte((int)(obj.B * light));
        var xStart = Math.Max(0, (int)x0);
        var yStart = Math.Max(0, (int)y0);
        var xEnd = Math.Min(Width, (int)MathF.Ceiling(x0 + size));
        var yEnd = Math.Min(Height, (int)MathF.Ceiling(y0 + size));
        var half = size / 2;
        var cx = x0 + half;
        var cy = y0 + half;
        for (var y = yStart; y < yEnd; y++)
        {
            var py = y + 0.5f;
            for (var x = xStart; x < xEnd; x++)
            {
                var px = x + 0.5f;
                var inside = obj.Shape switch
                {
                    SyntheticShape.Circle => ((px - cx) * (px - cx)) + ((py - cy) * (py - cy)) <= half * half,
                    SyntheticShape.Square => true,
                    SyntheticShape.Triangle => MathF.Abs(px - cx) <= half * (py - y0) / size,
                    _ => false,
                };
                if (inside)
                {
                    var o = ((y * Width) + x) * 3;
                    rgb[o] = r;
                    rgb[o + 1] = g;
                    rgb[o + 2] = b;
                }
            }
        }
    }

    private (float X, float Y) Position(in SceneObject obj, long index) =>
        (Bounce(obj.X + (obj.Vx * index), Width - obj.Size), Bounce(obj.Y + (obj.Vy * index), Height - obj.Size));

    // Reflects a coordinate into [0, max] as if the object bounced off the frame edges.
    private static float Bounce(float value, float max)
    {
        if (max <= 0)
        {
            return 0;
        }

        var period = 2 * max;
        var v = value % period;
        if (v < 0)
        {
            v += period;
        }

        return v <= max ? v : period - v;
    }

    // SplitMix64 finaliser over (seed, index): a well-mixed, process-independent, non-zero xorshift state.
    private static uint NoiseSeed(int seed, long index)
    {
        var z = ((ulong)(uint)seed << 32) ^ (ulong)index;
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (uint)z | 1u;
    }

    private static byte ClampToByte(int value) => (byte)Math.Clamp(value, 0, 255);

    private readonly record struct SceneObject(SyntheticShape Shape, float Size, float X, float Y, float Vx, float Vy, byte R, byte G, byte B);

    private readonly record struct Clutter(int X, int Y, int W, int H, byte R, byte G, byte B);
}
