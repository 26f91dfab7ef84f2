using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Models.Preprocessing;
using static EdgeRunner.UnitTests.DetectionDecoding.DetectionTensors;

namespace EdgeRunner.UnitTests.DetectionDecoding;

/// <summary>Each output layout decodes hand-computed tensors to the expected boxes, classes and scores.</summary>
public sealed class DecoderLayoutTests
{
    [Fact]
    public void YoloV8_reads_channel_major_centre_boxes_and_the_best_class()
    {
        // Anchor 0: class 2 at 0.9 (class 1 also present at 0.3, must lose the argmax); anchor 1: class 0 at 0.6.
        var data = YoloV8Data(3, 6, new Box(2, 0.9f, 10, 20, 50, 100), new Box(0, 0.6f, 200, 210, 260, 230));
        data[(4 + 1) * 6] = 0.3f;
        var outputs = new ArrayModelOutputs().Add("output0", data, 1, 7, 6);
        var decoder = new YoloV8Decoder(new DetectionDecoderOptions { ScoreThreshold = 0.5f }, [1, 7, 6]);

        var found = Run(decoder, outputs);

        Assert.Equal(2, found.Length);
        Assert.Equal(2, found[0].ClassId);
        Assert.Equal(0.9f, found[0].Score);
        AssertBox(found[0], 10, 20, 50, 100);
        Assert.Equal(0, found[1].ClassId);
        AssertBox(found[1], 200, 210, 260, 230);
        Assert.Equal(3, decoder.ClassCount);
    }

    [Fact]
    public void YoloV5_score_is_objectness_times_class_score()
    {
        var outputs = Rows(
            2,
            Row(2, cx: 30, cy: 40, w: 20, h: 10, objectness: 0.8f, classId: 1, classScore: 0.9f, otherClassScore: 0.1f), // 0.72
            Row(2, cx: 300, cy: 300, w: 50, h: 50, objectness: 0.95f, classId: 0, classScore: 0.4f),                     // 0.38: below 0.5
            Row(2, cx: 100, cy: 100, w: 50, h: 50, objectness: 0.3f, classId: 0, classScore: 1f));                        // objectness alone below
        var decoder = new YoloV5Decoder(new DetectionDecoderOptions { ScoreThreshold = 0.5f }, [1, 3, 7]);

        var found = Run(decoder, outputs);

        var d = Assert.Single(found);
        Assert.Equal(1, d.ClassId);
        Assert.Equal(0.72f, d.Score, 5);
        AssertBox(d, 20, 35, 40, 45);
    }

    [Fact]
    public void Yolox_decoded_export_reads_like_yolov5()
    {
        var outputs = Rows(1, Row(1, cx: 64, cy: 32, w: 16, h: 8, objectness: 0.9f, classId: 0, classScore: 0.9f));
        var decoder = new YoloXDecoder(new DetectionDecoderOptions(), [1, 1, 6], 640, 640);

        var d = Assert.Single(Run(decoder, outputs));

        Assert.Equal(0.81f, d.Score, 5);
        AssertBox(d, 56, 28, 72, 36);
    }

    [Fact]
    public void Yolox_raw_grid_is_decoded_over_the_stride_grids_of_the_input()
    {
        // 64x64 input, strides 8/16/32 → 8x8 + 4x4 + 2x2 = 84 anchors, stride by stride, row-major.
        // Anchor 64 + 1*4 + 2 = 70 is stride 16, grid (x=2, y=1):
        // cx = (0.5 + 2) * 16 = 40, cy = (0.25 + 1) * 16 = 20, w = e^ln2 * 16 = 32, h = e^0 * 16 = 16.
        var rows = new float[84][];
        for (var i = 0; i < rows.Length; i++)
        {
            rows[i] = Row(2, 0, 0, 0, 0, objectness: 0.01f, classId: 0, classScore: 0.01f);
        }

        rows[70] = Row(2, 0.5f, 0.25f, MathF.Log(2f), 0f, objectness: 0.9f, classId: 1, classScore: 0.8f);
        // Stride 32 cell (1, 1), anchor 64 + 16 + 3 = 83: cx = (0 + 1) * 32 = 32, cy = 32, w = h = 32.
        rows[83] = Row(2, 0f, 0f, 0f, 0f, objectness: 0.7f, classId: 0, classScore: 0.9f);
        var decoder = new YoloXDecoder(new DetectionDecoderOptions { RawGrid = true, ScoreThreshold = 0.5f, IouThreshold = 0.9f }, [1, 84, 7], 64, 64);

        var found = Run(decoder, Rows(2, rows));

        Assert.Equal(2, found.Length);
        Assert.Equal(1, found[0].ClassId);
        Assert.Equal(0.72f, found[0].Score, 5);
        AssertBox(found[0], 24, 12, 56, 28, 1e-4f);
        Assert.Equal(0, found[1].ClassId);
        AssertBox(found[1], 16, 16, 48, 48, 1e-4f);
    }

    [Fact]
    public void Yolox_raw_grid_refuses_an_anchor_count_that_does_not_fit_the_input()
    {
        var ex = Assert.Throws<ArgumentException>(() => new YoloXDecoder(new DetectionDecoderOptions { RawGrid = true }, [1, 8400, 85], 320, 320));

        Assert.Contains("2100 cells", ex.Message, StringComparison.Ordinal);
        Assert.Contains("8400 anchors", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ssd_skips_the_background_column_and_scales_normalised_corners_to_the_input()
    {
        // 3 anchors, K = 3 (background, class 0, class 1); input 320x240.
        float[] scores =
        [
            0.05f, 0.15f, 0.80f, // class 1 (column 2) at 0.8
            0.90f, 0.06f, 0.04f, // background
            0.20f, 0.75f, 0.05f, // class 0 at 0.75
        ];
        float[] boxes =
        [
            0.10f, 0.20f, 0.30f, 0.50f,
            0.00f, 0.00f, 1.00f, 1.00f,
            0.50f, 0.50f, 0.75f, 1.00f,
        ];
        var outputs = new ArrayModelOutputs().Add("scores", scores, 1, 3, 3).Add("boxes", boxes, 1, 3, 4);
        var decoder = new SsdDecoder(new DetectionDecoderOptions { ScoreThreshold = 0.5f }, [1, 3, 3], [1, 3, 4], 320, 240);

        var found = Run(decoder, outputs);

        Assert.Equal(2, decoder.ClassCount);
        Assert.Equal(2, found.Length);
        Assert.Equal(1, found[0].ClassId);
        Assert.Equal(0.8f, found[0].Score);
        AssertBox(found[0], 32, 48, 96, 120);
        Assert.Equal(0, found[1].ClassId);
        AssertBox(found[1], 160, 120, 240, 240);
    }

    [Fact]
    public void FastestDet_decodes_tanh_offsets_and_sigmoid_sizes_on_the_grid()
    {
        // [1, 5+2, H=2, W=3], input 300x200. Cell (x=1, y=1): obj 0.9, class 1 at 0.8;
        // tanh(ch1) = 0.5 → cx = (0.5 + 1) / 3 * 300 = 150; tanh(ch2) = 0 → cy = (0 + 1) / 2 * 200 = 100;
        // sigmoid(ch3) = 0.2 → w = 60; sigmoid(ch4) = 0.5 → h = 100. Box (120, 50)-(180, 150).
        const int plane = 6;
        var data = new float[7 * plane];
        var cell = (1 * 3) + 1;
        data[cell] = 0.9f;
        data[plane + cell] = MathF.Atanh(0.5f);
        data[(2 * plane) + cell] = 0f;
        data[(3 * plane) + cell] = Logit(0.2f);
        data[(4 * plane) + cell] = 0f;
        data[(5 * plane) + cell] = 0.2f;
        data[(6 * plane) + cell] = 0.8f;
        // Cell (0, 0): confident class but objectness 0.1 → 0.1^0.6 = 0.25 bounds it below the threshold.
        data[0] = 0.1f;
        data[5 * plane] = 1f;
        var outputs = new ArrayModelOutputs().Add("758", data, 1, 7, 2, 3);
        var decoder = new FastestDetDecoder(new DetectionDecoderOptions { ScoreThreshold = 0.5f }, [1, 7, 2, 3], 300, 200);

        var d = Assert.Single(Run(decoder, outputs));

        Assert.Equal(1, d.ClassId);
        Assert.Equal(MathF.Pow(0.9f, 0.6f) * MathF.Pow(0.8f, 0.4f), d.Score, 5);
        AssertBox(d, 120, 50, 180, 150, 1e-3f);
    }

    [Fact]
    public void Boxes_are_mapped_through_the_source_mapping_and_clamped_to_the_frame()
    {
        // Model 100x100 → frame 200x100 stretched: x * 2, y * 1. Box (40, 10)-(60, 30) → (80, 10)-(120, 30);
        // a box hanging off the right edge (90, 80)-(110, 120) is clamped to (180, 80)-(200, 100).
        var outputs = YoloV8(1, 2, new Box(0, 0.9f, 40, 10, 60, 30), new Box(0, 0.8f, 90, 80, 110, 120));
        var decoder = new YoloV8Decoder(new DetectionDecoderOptions(), [1, 5, 2]);

        var found = Run(decoder, outputs, new SourceMapping(2f, 0f, 1f, 0f), frameWidth: 200, frameHeight: 100);

        AssertBox(found[0], 80, 10, 120, 30);
        AssertBox(found[1], 180, 80, 200, 100);
    }

    [Fact]
    public void An_output_of_the_wrong_size_is_refused_with_the_sizes()
    {
        var decoder = new YoloV8Decoder(new DetectionDecoderOptions(), [1, 84, 8400]);
        var outputs = new ArrayModelOutputs().Add("output0", new float[84 * 100], 1, 84, 100);

        var ex = Assert.Throws<ArgumentException>(() => decoder.Decode(outputs, Identity, 640, 640, new Detection[10]));

        Assert.Contains("705600", ex.Message, StringComparison.Ordinal);
        Assert.Contains("8400", ex.Message, StringComparison.Ordinal);
    }
}
