namespace EdgeRunner.Benchmarks;

/// <summary>
/// A deterministic, realistic YOLOv8 head output <c>[1, 4+C, N]</c> for a 640x640 input: anchors on the
/// stride 8/16/32 grids (80x80 + 40x40 + 20x20 = 8400), background class scores mostly tiny (as after the
/// sigmoid of a trained head), and for each of a dozen objects every anchor whose cell lies in the central
/// part of the object scoring high for the object's class (decaying away from the centre), with a box jittered
/// around the object's box: clusters of overlapping candidates that NMS reduces to about one box per object.
/// A few anchors also give the object a lower score for a second class (class-aware NMS keeps those apart).
/// </summary>
internal static class SyntheticYoloOutput
{
    public const int InputSize = 640;

    public static float[] Create(int classes, int objects, int seed, out int anchors)
    {
        int[] strides = [8, 16, 32];
        anchors = strides.Sum(s => (InputSize / s) * (InputSize / s));
        var n = anchors;
        var data = new float[(4 + classes) * n];
        var random = new Random(seed);

        // Background: every class score small, heavy towards 0 (cube of a uniform), rare 0.05-0.2 blips.
        for (var c = 0; c < classes; c++)
        {
            var row = data.AsSpan((4 + c) * n, n);
            for (var i = 0; i < n; i++)
            {
                var u = random.NextSingle();
                row[i] = random.Next(200) == 0 ? 0.05f + (0.15f * u) : 0.02f * u * u * u;
            }
        }

        // Anchor centres and a default (meaningless) box for background anchors.
        var ax = new float[n];
        var ay = new float[n];
        var astride = new int[n];
        var a = 0;
        foreach (var s in strides)
        {
            var g = InputSize / s;
            for (var y = 0; y < g; y++)
            {
                for (var x = 0; x < g; x++, a++)
                {
                    ax[a] = (x + 0.5f) * s;
                    ay[a] = (y + 0.5f) * s;
                    astride[a] = s;
                    data[a] = ax[a];
                    data[n + a] = ay[a];
                    data[(2 * n) + a] = s * (2 + (2 * random.NextSingle()));
                    data[(3 * n) + a] = s * (2 + (2 * random.NextSingle()));
                }
            }
        }

        for (var o = 0; o < objects; o++)
        {
            var size = 40 + (random.NextSingle() * 200);
            var aspect = 0.6f + (0.8f * random.NextSingle());
            float w = size * aspect, h = size / aspect;
            var cx = (w / 2) + (random.NextSingle() * (InputSize - w));
            var cy = (h / 2) + (random.NextSingle() * (InputSize - h));
            var cls = random.Next(classes);
            var other = (cls + 1 + random.Next(classes - 1)) % classes;
            var peak = 0.6f + (0.35f * random.NextSingle());
            for (var i = 0; i < n; i++)
            {
                // Normalised distance of the anchor from the object centre; assigned when inside the inner 40%
                // and the stride suits the object size (as a trained head's multi-scale assignment does).
                var dx = (ax[i] - cx) / (0.2f * w);
                var dy = (ay[i] - cy) / (0.2f * h);
                var d2 = (dx * dx) + (dy * dy);
                var s = astride[i];
                if (d2 > 1f || size < s * 3 || size > s * 24)
                {
                    continue;
                }

                var score = peak * (1f - (0.6f * d2)) * (0.9f + (0.1f * random.NextSingle()));
                var classRow = (4 + cls) * n;
                data[classRow + i] = Math.Max(data[classRow + i], score);
                if (random.Next(4) == 0)
                {
                    data[((4 + other) * n) + i] = Math.Max(data[((4 + other) * n) + i], score * 0.5f);
                }

                data[i] = cx + (w * 0.08f * (random.NextSingle() - 0.5f));
                data[n + i] = cy + (h * 0.08f * (random.NextSingle() - 0.5f));
                data[(2 * n) + i] = w * (0.92f + (0.16f * random.NextSingle()));
                data[(3 * n) + i] = h * (0.92f + (0.16f * random.NextSingle()));
            }
        }

        return data;
    }

    /// <summary>Anchors whose best class score reaches <paramref name="threshold"/>.</summary>
    public static int CountAbove(float[] data, int classes, int anchors, float threshold)
    {
        var count = 0;
        for (var i = 0; i < anchors; i++)
        {
            for (var c = 0; c < classes; c++)
            {
                if (data[((4 + c) * anchors) + i] >= threshold)
                {
                    count++;
                    break;
                }
            }
        }

        return count;
    }
}
