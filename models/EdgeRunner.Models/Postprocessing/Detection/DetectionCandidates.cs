using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Models.Postprocessing.Detection;

/// <summary>
/// The shared back half of every decoder: candidate storage in model-input pixels, top-K pre-selection,
/// sort, greedy class-aware NMS, and mapping to frame pixels. All arrays are sized once for the decoder's
/// maximum candidate count (one per anchor/cell), so a steady stream of frames allocates nothing.
/// </summary>
internal sealed class DetectionCandidates
{
    private readonly DetectionDecoderOptions _options;
    private readonly float[] _x1;
    private readonly float[] _y1;
    private readonly float[] _x2;
    private readonly float[] _y2;
    private readonly float[] _score;
    private readonly int[] _class;

    // Sort keys (negated scores, so an ascending sort puts the best first) and the candidate each belongs to.
    private readonly float[] _keys;
    private readonly int[] _order;
    private readonly int[] _kept;
    private int _count;

    public DetectionCandidates(DetectionDecoderOptions options, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _options = options;
        _x1 = new float[capacity];
        _y1 = new float[capacity];
        _x2 = new float[capacity];
        _y2 = new float[capacity];
        _score = new float[capacity];
        _class = new int[capacity];
        _keys = new float[capacity];
        _order = new int[capacity];
        _kept = new int[options.MaxDetections];
    }

    public int Capacity => _score.Length;

    public int Count => _count;

    public void Clear() => _count = 0;

    /// <summary>Adds a box given by its centre and size in model-input pixels.</summary>
    public void AddCenter(int classId, float score, float cx, float cy, float w, float h)
    {
        var hw = w * 0.5f;
        var hh = h * 0.5f;
        Add(classId, score, cx - hw, cy - hh, cx + hw, cy + hh);
    }

    /// <summary>Adds a box given by its corners in model-input pixels.</summary>
    public void Add(int classId, float score, float x1, float y1, float x2, float y2)
    {
        // Capacity is one per anchor and each anchor adds at most once, so this cannot overflow; guard anyway
        // rather than throw on a hot path.
        if (_count == _score.Length)
        {
            return;
        }

        var i = _count++;
        _x1[i] = x1;
        _y1[i] = y1;
        _x2[i] = x2;
        _y2[i] = y2;
        _score[i] = score;
        _class[i] = classId;
    }

    /// <summary>
    /// Whether every candidate's box lies within <paramref name="limit"/> pixels of the input's origin on both axes
    /// (false when there are none). YOLOX raw-grid values read as pixels look like this: cell offsets around 0…1 and
    /// log sizes around −2…4 make boxes of a few pixels at the top-left corner, where a decoded detector never puts all of its finds.
    /// </summary>
    public bool AllNearOrigin(float limit)
    {
        if (_count == 0)
        {
            return false;
        }

        for (var i = 0; i < _count; i++)
        {
            if (!(MathF.Abs(_x1[i]) <= limit && MathF.Abs(_y1[i]) <= limit && MathF.Abs(_x2[i]) <= limit && MathF.Abs(_y2[i]) <= limit))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Selects, sorts and suppresses the candidates, maps the survivors to frame pixels and writes them best first.</summary>
    public int Finish(in SourceMapping mapping, int frameWidth, int frameHeight, Span<Detection> destination)
    {
        var limit = Math.Min(_options.MaxDetections, destination.Length);
        var n = _count;
        if (limit <= 0 || n == 0)
        {
            return 0;
        }

        var keys = _keys.AsSpan(0, n);
        var order = _order.AsSpan(0, n);
        for (var i = 0; i < n; i++)
        {
            keys[i] = -_score[i];
            order[i] = i;
        }

        // Top-K pre-selection: an O(n) quickselect moves the K best to the front, so only K are sorted
        // (a full sort of 8400 anchors at a low threshold would dominate the decode time).
        var k = Math.Min(n, _options.PreNmsTopK);
        if (k < n)
        {
            SelectSmallest(keys, order, k);
            keys = keys[..k];
            order = order[..k];
        }

        keys.Sort(order);

        // Greedy NMS. A candidate only needs comparing with the boxes already kept (at most `limit` of them):
        // that is the same result as the textbook "suppress everything overlapping each kept box" loop, costs
        // O(K·limit) and lets us stop as soon as `limit` boxes are kept.
        var kept = 0;
        var agnostic = _options.ClassAgnostic;
        var iouThreshold = _options.IouThreshold;
        for (var o = 0; o < order.Length && kept < limit; o++)
        {
            var c = order[o];
            var suppressed = false;
            for (var j = 0; j < kept; j++)
            {
                var other = _kept[j];
                if ((agnostic || _class[other] == _class[c]) && Iou(c, other) > iouThreshold)
                {
                    suppressed = true;
                    break;
                }
            }

            if (!suppressed)
            {
                _kept[kept++] = c;
            }
        }

        for (var j = 0; j < kept; j++)
        {
            var c = _kept[j];
            // NMS ran in model space: the mapping is a per-axis scale and offset, which leaves IoU unchanged.
            var x1 = Math.Clamp(mapping.ToSourceX(_x1[c]), 0f, frameWidth);
            var y1 = Math.Clamp(mapping.ToSourceY(_y1[c]), 0f, frameHeight);
            var x2 = Math.Clamp(mapping.ToSourceX(_x2[c]), 0f, frameWidth);
            var y2 = Math.Clamp(mapping.ToSourceY(_y2[c]), 0f, frameHeight);
            destination[j] = new Detection(_class[c], _score[c], Math.Min(x1, x2), Math.Min(y1, y2), Math.Max(x1, x2), Math.Max(y1, y2));
        }

        return kept;
    }

    private float Iou(int a, int b)
    {
        var iw = MathF.Min(_x2[a], _x2[b]) - MathF.Max(_x1[a], _x1[b]);
        var ih = MathF.Min(_y2[a], _y2[b]) - MathF.Max(_y1[a], _y1[b]);
        if (iw <= 0f || ih <= 0f)
        {
            return 0f;
        }

        var inter = iw * ih;
        var areaA = MathF.Max(0f, _x2[a] - _x1[a]) * MathF.Max(0f, _y2[a] - _y1[a]);
        var areaB = MathF.Max(0f, _x2[b] - _x1[b]) * MathF.Max(0f, _y2[b] - _y1[b]);
        var union = areaA + areaB - inter;
        return union > 0f ? inter / union : 0f;
    }

    /// <summary>
    /// Hoare quickselect: afterwards keys[0..k) are the k smallest keys (in no particular order), with
    /// <paramref name="items"/> moved alongside. Keys are never NaN (NaN scores fail the threshold test).
    /// </summary>
    internal static void SelectSmallest(Span<float> keys, Span<int> items, int k)
    {
        var target = k - 1;
        int lo = 0, hi = keys.Length - 1;
        while (hi > lo)
        {
            var pivot = keys[lo + ((hi - lo) >> 1)];
            int i = lo, j = hi;
            while (i <= j)
            {
                while (keys[i] < pivot)
                {
                    i++;
                }

                while (keys[j] > pivot)
                {
                    j--;
                }

                if (i <= j)
                {
                    (keys[i], keys[j]) = (keys[j], keys[i]);
                    (items[i], items[j]) = (items[j], items[i]);
                    i++;
                    j--;
                }
            }

            // Now keys[lo..j] <= pivot <= keys[i..hi] and anything between equals the pivot.
            if (target <= j)
            {
                hi = j;
            }
            else if (target >= i)
            {
                lo = i;
            }
            else
            {
                break;
            }
        }
    }

    /// <summary>Throws when output <paramref name="index"/> does not hold <paramref name="expected"/> floats.</summary>
    internal static ReadOnlySpan<float> Read(IModelOutputs outputs, int index, int expected, string kind)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        if ((uint)index >= (uint)outputs.OutputCount)
        {
            throw new ArgumentException($"{kind} decoder reads output {index} but the model has {outputs.OutputCount}.", nameof(outputs));
        }

        var data = outputs.Output(index);
        if (data.Length != expected)
        {
            throw new ArgumentException($"{kind} decoder was built for {expected} floats in output {index} ('{outputs.OutputName(index)}'), got {data.Length}.", nameof(outputs));
        }

        return data;
    }

    internal static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));
}
