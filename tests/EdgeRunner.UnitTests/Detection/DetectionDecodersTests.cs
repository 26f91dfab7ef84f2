using EdgeRunner.Models.Postprocessing.Detection;

namespace EdgeRunner.UnitTests.DetectionDecoding;

/// <summary>The factory by kind name, and kind inference from output shapes.</summary>
public sealed class DetectionDecodersTests
{
    private static readonly DetectionDecoderOptions Options = new();

    [Theory]
    [InlineData("yolov8", typeof(YoloV8Decoder), "yolov8")]
    [InlineData("YOLO11", typeof(YoloV8Decoder), "yolov8")]
    [InlineData("yolov5", typeof(YoloV5Decoder), "yolov5")]
    [InlineData("yolox", typeof(YoloXDecoder), "yolox")]
    public void Yolo_kinds_create_their_decoder(string kind, Type type, string reported)
    {
        long[] shape = reported == "yolov8" ? [1, 84, 8400] : [1, 8400, 85];

        var decoder = DetectionDecoders.Create(kind, Options, 640, 640, [shape]);

        Assert.IsType(type, decoder);
        Assert.Equal(reported, decoder.Kind);
        Assert.Equal(80, decoder.ClassCount);
    }

    [Fact]
    public void Ssd_finds_scores_and_boxes_in_either_order()
    {
        var outputs = new ArrayModelOutputs().Add("boxes", new float[4420 * 4], 1, 4420, 4).Add("scores", new float[4420 * 2], 1, 4420, 2);

        var decoder = DetectionDecoders.Create("ssd", Options, 320, 240, outputs);

        Assert.IsType<SsdDecoder>(decoder);
        Assert.Equal(1, decoder.ClassCount);
        Assert.Equal(0, decoder.Decode(outputs, DetectionTensors.Identity, 320, 240, new Detection[10]));
    }

    [Fact]
    public void FastestDet_kind_creates_its_decoder()
    {
        var decoder = DetectionDecoders.Create("fastestdet", Options, 352, 352, [new long[] { 1, 85, 22, 22 }]);

        Assert.IsType<FastestDetDecoder>(decoder);
        Assert.Equal(80, decoder.ClassCount);
    }

    [Fact]
    public void Unknown_kind_lists_the_known_ones()
    {
        var ex = Assert.Throws<ArgumentException>(() => DetectionDecoders.Create("detr", Options, 640, 640, [new long[] { 1, 100, 6 }]));

        Assert.Contains("'detr'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("yolov8, yolov5, yolox, ssd, fastestdet", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_kind_that_does_not_fit_the_outputs_is_refused()
    {
        Assert.Throws<ArgumentException>(() => DetectionDecoders.Create("fastestdet", Options, 640, 640, [new long[] { 1, 84, 8400 }]));
        Assert.Throws<ArgumentException>(() => DetectionDecoders.Create("ssd", Options, 640, 640, [new long[] { 1, 84, 8400 }]));
        Assert.Throws<ArgumentException>(() => DetectionDecoders.Create("yolov8", Options, 640, 640, [new long[] { 1, 3, 8400 }]));
    }

    [Fact]
    public void Invalid_options_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DetectionDecoders.Create("yolov8", Options with { IouThreshold = 1.5f }, 640, 640, [new long[] { 1, 84, 8400 }]));
        Assert.Throws<ArgumentOutOfRangeException>(() => DetectionDecoders.Create("yolov8", Options with { MaxDetections = 0 }, 640, 640, [new long[] { 1, 84, 8400 }]));
    }

    [Theory]
    [InlineData("yolov8", "[1,84,8400]", new long[] { 1, 84, 8400 })]
    [InlineData("yolov5", "[1,25200,85]", new long[] { 1, 25200, 85 })]
    [InlineData("fastestdet", "[1,85,22,22]", new long[] { 1, 85, 22, 22 })]
    public void Single_output_layouts_are_inferred_with_an_explanation(string kind, string shapeText, long[] shape)
    {
        var inferred = DetectionDecoders.InferKind([shape], ["out"]);

        Assert.True(inferred.Succeeded);
        Assert.Equal(kind, inferred.Kind);
        Assert.Contains(shapeText, inferred.Explanation, StringComparison.Ordinal);
        Assert.Contains("80 classes", inferred.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Yolov5_inference_warns_that_yolox_looks_the_same()
    {
        Assert.Contains("yolox", DetectionDecoders.InferKind([new long[] { 1, 8400, 85 }]).Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void An_ssd_pair_is_inferred_by_shape_and_by_name_when_shapes_tie()
    {
        var byShape = DetectionDecoders.InferKind([new long[] { 1, 4420, 2 }, new long[] { 1, 4420, 4 }], ["scores", "boxes"]);
        var byName = DetectionDecoders.InferKind([new long[] { 1, 100, 4 }, new long[] { 1, 100, 4 }], ["boxes", "scores"]);
        var unnamedTie = DetectionDecoders.InferKind([new long[] { 1, 100, 4 }, new long[] { 1, 100, 4 }], ["a", "b"]);

        Assert.Equal("ssd", byShape.Kind);
        Assert.Contains("'scores' [1,4420,2]", byShape.Explanation, StringComparison.Ordinal);
        Assert.Equal("ssd", byName.Kind);
        Assert.Null(unnamedTie.Kind);
    }

    [Theory]
    [InlineData(new long[] { 1, 100, 100 })]   // square: neither reading is preferred
    [InlineData(new long[] { 1, 1000 })]       // classifier
    [InlineData(new long[] { 1, 3, 8400 })]    // too few rows for 4+C
    public void Ambiguous_or_foreign_layouts_are_not_inferred(long[] shape)
    {
        var inferred = DetectionDecoders.InferKind([shape]);

        Assert.False(inferred.Succeeded);
        Assert.Contains("configure the decoder kind", inferred.Explanation, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Three_outputs_are_not_inferred()
    {
        var inferred = DetectionDecoders.InferKind([new long[] { 1, 84, 8400 }, new long[] { 1, 32, 160, 160 }, new long[] { 1, 4 }]);

        Assert.Null(inferred.Kind);
        Assert.Contains("3 outputs", inferred.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Array_outputs_check_the_shape_against_the_data()
    {
        Assert.Throws<ArgumentException>(() => new ArrayModelOutputs().Add("x", new float[5], 1, 2, 3));
    }
}
