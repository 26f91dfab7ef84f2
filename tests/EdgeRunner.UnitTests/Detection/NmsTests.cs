using EdgeRunner.Models.Postprocessing.Detection;
using static EdgeRunner.UnitTests.DetectionDecoding.DetectionTensors;

namespace EdgeRunner.UnitTests.DetectionDecoding;

/// <summary>Greedy class-aware NMS, score threshold, max detections and the top-K pre-selection.</summary>
public sealed class NmsTests
{
    // A = (0,0)-(100,100). B shifted 10 px: IoU = 9000 / 11000 = 0.818. C shifted 60 px: IoU = 4000 / 16000 = 0.25.
    private static readonly Box A = new(0, 0.9f, 0, 0, 100, 100);
    private static readonly Box B = new(0, 0.8f, 10, 0, 110, 100);
    private static readonly Box C = new(0, 0.7f, 60, 0, 160, 100);

    private static Detection[] Decode(DetectionDecoderOptions options, int classes, params Box[] boxes) =>
        Run(new YoloV8Decoder(options, [1, 4 + classes, boxes.Length]), YoloV8(classes, boxes.Length, boxes));

    [Fact]
    public void Same_class_overlapping_above_the_threshold_is_suppressed_and_below_it_kept()
    {
        var found = Decode(new DetectionDecoderOptions { IouThreshold = 0.5f }, 1, C, B, A);

        Assert.Equal([0.9f, 0.7f], found.Select(d => d.Score));
        AssertBox(found[0], 0, 0, 100, 100);
        AssertBox(found[1], 60, 0, 160, 100);
    }

    [Fact]
    public void A_box_overlapping_only_a_suppressed_box_survives()
    {
        // D = (20,0)-(120,100): IoU(A, D) = 8000 / 12000 = 0.667, IoU(B, D) = 0.818. With threshold 0.7, B is
        // suppressed by A (0.818), and D survives although it overlaps B: greedy NMS only compares with kept boxes.
        var d = new Box(0, 0.75f, 20, 0, 120, 100);

        var found = Decode(new DetectionDecoderOptions { IouThreshold = 0.7f }, 1, A, B, d);

        Assert.Equal([0.9f, 0.75f], found.Select(x => x.Score));
    }

    [Fact]
    public void Different_classes_do_not_suppress_each_other_unless_class_agnostic()
    {
        var otherClass = B with { ClassId = 1 };

        var aware = Decode(new DetectionDecoderOptions { IouThreshold = 0.5f }, 2, A, otherClass);
        var agnostic = Decode(new DetectionDecoderOptions { IouThreshold = 0.5f, ClassAgnostic = true }, 2, A, otherClass);

        Assert.Equal([0, 1], aware.Select(d => d.ClassId));
        Assert.Equal(0, Assert.Single(agnostic).ClassId);
    }

    [Fact]
    public void Score_threshold_keeps_scores_at_it_and_drops_those_below()
    {
        var at = new Box(0, 0.5f, 0, 0, 10, 10);
        var below = new Box(0, 0.4999f, 100, 100, 110, 110);

        var found = Decode(new DetectionDecoderOptions { ScoreThreshold = 0.5f }, 1, below, at);

        Assert.Equal(0.5f, Assert.Single(found).Score);
    }

    [Fact]
    public void Max_detections_and_destination_length_both_cap_the_result_keeping_the_best()
    {
        var boxes = Enumerable.Range(0, 6).Select(i => new Box(0, 0.3f + (0.1f * i), i * 20, 0, (i * 20) + 10, 10)).ToArray();
        var decoder = new YoloV8Decoder(new DetectionDecoderOptions { MaxDetections = 3 }, [1, 5, 6]);
        var outputs = YoloV8(1, 6, boxes);

        var capped = Run(decoder, outputs);
        var buffer = new Detection[2];
        var written = decoder.Decode(outputs, Identity, 1000, 1000, buffer);

        Assert.Equal([0.8f, 0.7f, 0.6f], capped.Select(d => MathF.Round(d.Score, 4)));
        Assert.Equal(2, written);
        Assert.Equal(0.8f, buffer[0].Score, 5);
    }

    [Fact]
    public void Top_k_preselection_over_8400_candidates_returns_the_best_in_order()
    {
        // 8403 disjoint 4x4 boxes on a grid, all distinct scores above the threshold: NMS removes nothing, so the
        // result must be exactly the MaxDetections best scores, best first, even though only PreNmsTopK are sorted.
        // 8403 is not a multiple of any SIMD width, so both the vector and the scalar-tail argmax run.
        const int anchors = 8403;
        var random = new Random(42);
        var scores = Enumerable.Range(0, anchors).Select(i => 0.3f + (0.7f * i / anchors)).OrderBy(_ => random.Next()).ToArray();
        var boxes = new Box[anchors];
        for (var i = 0; i < anchors; i++)
        {
            float x = (i % 100) * 10, y = (i / 100) * 10;
            boxes[i] = new Box(i % 3, scores[i], x, y, x + 4, y + 4);
        }

        var decoder = new YoloV8Decoder(new DetectionDecoderOptions { ScoreThreshold = 0.25f, PreNmsTopK = 64, MaxDetections = 50 }, [1, 7, anchors]);

        var found = Run(decoder, YoloV8(3, anchors, boxes));

        Assert.Equal(scores.OrderDescending().Take(50), found.Select(d => d.Score));
        var classOf = Enumerable.Range(0, anchors).ToDictionary(i => scores[i], i => i % 3);
        Assert.All(found, d => Assert.Equal(classOf[d.Score], d.ClassId));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(100)]
    [InlineData(999)]
    [InlineData(1000)]
    public void Quickselect_moves_the_k_smallest_keys_to_the_front(int k)
    {
        var random = new Random(k);
        // Many duplicates: the partition must handle runs equal to the pivot.
        var keys = Enumerable.Range(0, 1000).Select(_ => (float)random.Next(50)).ToArray();
        var items = Enumerable.Range(0, 1000).ToArray();
        var original = keys.ToArray();

        DetectionCandidates.SelectSmallest(keys, items, k);

        Assert.Equal(original.Order().Take(k), keys.Take(k).Order());
        Assert.All(Enumerable.Range(0, 1000), i => Assert.Equal(original[items[i]], keys[i]));
    }
}
