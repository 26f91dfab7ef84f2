using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using EdgeRunner.Hardware.Imaging;

namespace EdgeRunner.Hardware.Cameras;

/// <summary>Shape classes drawn by <see cref="SyntheticScene"/>; the value is the class id.</summary>
public enum SyntheticShape
{
    /// <summary>A filled circle.</summary>
    Circle = 0,

    /// <summary>A filled axis-aligned square.</summary>
    Square = 1,

    /// <summary>A filled upward triangle.</summary>
    Triangle = 2,
}

/// <summary>One object's ground truth in a synthetic frame: its class and its box in pixels (x1,y1 inclusive; x2,y2 exclusive).</summary>
public readonly record struct SyntheticObject(SyntheticShape Shape, float X1, float Y1, float X2, float Y2);

/// <summary>
/// A deterministic scene of moving shapes on a lit, noisy, cluttered background. Frame <c>n</c> is a
/// pure function of (seed, n), so any frame can be rendered again and its ground truth is exact.
/// The ground truth is for tests and evaluation only; it never reaches a model.
/// </summary>
public sealed class SyntheticScene
{
    private readonly SceneObject[] _objects;
    private readonly Clutter[] _clutter;
    private readonly int _seed;
    private readonly byte[] _background;

    // Independent noise runs stepped side by side (two 4-lane vectors), see RenderNoisyBackground.
    private const int NoiseLanes = 8;

    // Written once per frame size; a race only computes the same table twice.
    private JumpTable? _jumps;

    /// <summary>
    /// Creates a scene of <paramref name="width"/> × <paramref name="height"/> from <paramref name="seed"/>
    /// with <paramref name="objectCount"/> objects (null: 1 to 6, chosen by the seed).
    /// </summary>
    public SyntheticScene(int width, int height, int seed, int? objectCount = null)
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

    /// <summary>Frames in one full lighting cycle (the light follows sin(index / 60)).</summary>
    public const int LightingPeriodFrames = 377;

    /// <summary>
    /// A deterministic frame index in [0, <see cref="LightingPeriodFrames"/>) for scene <paramref name="seed"/>:
    /// datasets that take a few frames per scene start there, so together they cover every lighting
    /// level a long-running camera goes through, not only the first seconds.
    /// </summary>
    public static long StartIndex(int seed) => NoiseSeed(seed, -1) % LightingPeriodFrames;

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

        // Every output byte is clamp((int)(background * light) + noise - 8) with a 4-bit noise value: one
        // table of the 256 × 16 possible results per frame turns the per-byte arithmetic into a lookup.
        Span<byte> lit = stackalloc byte[256 * 16];
        for (var v = 0; v < 256; v++)
        {
            var scaled = (int)(v * light);
            for (var noise = 0; noise < 16; noise++)
            {
                lit[(v << 4) | noise] = ClampToByte(scaled + noise - 8);
            }
        }

        // Not HashCode.Combine: it is randomised per process, and frames must be identical across runs.
        RenderNoisyBackground(NoiseSeed(_seed, index), lit, rgb[..needed]);

        foreach (var obj in _objects)
        {
            var (x0, y0) = Position(obj, index);
            DrawShape(rgb, obj, x0, y0, light);
        }
    }

    /// <summary>Renders frame <paramref name="index"/> into a pooled RGB24 frame.</summary>
    public Frame RenderFrame(FramePool pool, long index)
    {
        ArgumentNullException.ThrowIfNull(pool);
        var frame = pool.Rent(Width, Height, FramePixelFormat.Rgb24);
        Render(index, frame.Pixels);
        frame.Sequence = index;
        return frame;
    }

    // The noise is one xorshift32 stream over every byte of the frame, a chain of dependent operations
    // that ran at one byte per ~6 cycles. xorshift is linear over GF(2), so the state n steps ahead is a
    // fixed 32×32 bit matrix times the state: the frame is cut into NoiseLanes equal runs whose start
    // states are jumped to, and the runs are stepped side by side in vector lanes. Same stream, same bytes.
    private void RenderNoisyBackground(uint state, ReadOnlySpan<byte> lit, Span<byte> rgb)
    {
        var background = _background.AsSpan(0, rgb.Length);
        var run = rgb.Length / NoiseLanes;
        Span<uint> starts = stackalloc uint[NoiseLanes];
        var jumps = JumpTables(run);
        starts[0] = state;
        for (var lane = 1; lane < NoiseLanes; lane++)
        {
            starts[lane] = Apply(jumps.AsSpan((lane - 1) * 32, 32), state);
        }

        ref var output = ref MemoryMarshal.GetReference(rgb);
        ref readonly var source = ref MemoryMarshal.GetReference(background);
        ref readonly var table = ref MemoryMarshal.GetReference(lit);
        var low = Vector128.Create(starts[0], starts[1], starts[2], starts[3]);
        var high = Vector128.Create(starts[4], starts[5], starts[6], starts[7]);
        var mask = Vector128.Create(15u);
        for (var i = 0; i < run; i++)
        {
            low ^= low << 13;
            low ^= low >> 17;
            low ^= low << 5;
            high ^= high << 13;
            high ^= high >> 17;
            high ^= high << 5;
            var noiseLow = low & mask;
            var noiseHigh = high & mask;
            Emit(ref output, in source, in table, i, noiseLow.GetElement(0));
            Emit(ref output, in source, in table, run + i, noiseLow.GetElement(1));
            Emit(ref output, in source, in table, (2 * run) + i, noiseLow.GetElement(2));
            Emit(ref output, in source, in table, (3 * run) + i, noiseLow.GetElement(3));
            Emit(ref output, in source, in table, (4 * run) + i, noiseHigh.GetElement(0));
            Emit(ref output, in source, in table, (5 * run) + i, noiseHigh.GetElement(1));
            Emit(ref output, in source, in table, (6 * run) + i, noiseHigh.GetElement(2));
            Emit(ref output, in source, in table, (7 * run) + i, noiseHigh.GetElement(3));
        }

        // The bytes after the last whole run continue the last lane's stream.
        var tail = high.GetElement(3);
        for (var i = NoiseLanes * run; i < rgb.Length; i++)
        {
            tail ^= tail << 13;
            tail ^= tail >> 17;
            tail ^= tail << 5;
            Emit(ref output, in source, in table, i, tail & 15);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Emit(ref byte output, ref readonly byte background, ref readonly byte lit, int offset, uint noise) =>
        Unsafe.Add(ref output, offset) = Unsafe.Add(ref Unsafe.AsRef(in lit), (int)(((uint)Unsafe.Add(ref Unsafe.AsRef(in background), offset) << 4) | noise));

    // Columns of the xorshift32 step matrix raised to run × lane, for lanes 1 to NoiseLanes - 1 (32 per lane):
    // depends only on the run length, so it is computed once per frame size.
    private uint[] JumpTables(int run)
    {
        var cached = _jumps;
        if (cached is not null && cached.Run == run)
        {
            return cached.Columns;
        }

        var step = new uint[32];
        for (var bit = 0; bit < 32; bit++)
        {
            var x = 1u << bit;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            step[bit] = x;
        }

        // step^run by squaring.
        var power = new uint[32];
        for (var bit = 0; bit < 32; bit++)
        {
            power[bit] = 1u << bit;
        }

        var square = step;
        for (var n = run; n > 0; n >>= 1)
        {
            if ((n & 1) != 0)
            {
                power = Multiply(square, power);
            }

            square = Multiply(square, square);
        }

        var columns = new uint[(NoiseLanes - 1) * 32];
        var lanePower = power;
        for (var lane = 1; lane < NoiseLanes; lane++)
        {
            lanePower.CopyTo(columns, (lane - 1) * 32);
            lanePower = Multiply(power, lanePower);
        }

        _jumps = new JumpTable(run, columns);
        return columns;
    }

    // (a · b) in column form: column i of the product is a applied to column i of b.
    private static uint[] Multiply(uint[] a, uint[] b)
    {
        var product = new uint[32];
        for (var bit = 0; bit < 32; bit++)
        {
            product[bit] = Apply(a, b[bit]);
        }

        return product;
    }

    private static uint Apply(ReadOnlySpan<uint> columns, uint state)
    {
        var result = 0u;
        for (var bit = 0; bit < 32; bit++)
        {
            if ((state & (1u << bit)) != 0)
            {
                result ^= columns[bit];
            }
        }

        return result;
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

    private sealed record JumpTable(int Run, uint[] Columns);

    private readonly record struct Clutter(int X, int Y, int W, int H, byte R, byte G, byte B);
}
