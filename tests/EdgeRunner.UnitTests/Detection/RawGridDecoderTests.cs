using EdgeRunner.Models.Postprocessing.Detection;
using static EdgeRunner.UnitTests.DetectionDecoding.DetectionTensors;

namespace EdgeRunner.UnitTests.DetectionDecoding;

/// <summary>
/// YOLOX raw grid left unset: inferred from the anchor count and the first candidates (hand-computed tensors of a
/// 64x64 input, strides 8/16/32 → 8x8 + 4x4 + 2x2 = 84 anchors); and the zero-area box monitor.
/// </summary>
public sealed class RawGridDecoderTests
{
    private const int Anchors = 84;

    // Stride 16, grid (x=1, y=2): anchor 64 + 2*4 + 1 = 73.
    private const int Stride16Cell = 73;

    /// <summary>84 background rows and one candidate at <see cref="Stride16Cell"/>.</summary>
    private static ArrayModelOutputs Grid(float cx, float cy, float w, float h, float objectness = 0.9f)
    {
        var rows = new float[Anchors][];
        for (var i = 0; i < rows.Length; i++)
        {
            rows[i] = Row(1, 0, 0, 0, 0, objectness: 0.01f, classId: 0, classScore: 0.01f);
        }

        rows[Stride16Cell] = Row(1, cx, cy, w, h, objectness, classId: 0, classScore: 0.9f);
        return Rows(1, rows);
    }

    [Fact]
    public void Raw_offsets_and_log_sizes_are_recognised_and_decoded_over_the_grid()
    {
        var decoder = new YoloXDecoder(new DetectionDecoderOptions(), [1, Anchors, 6], 64, 64);
        Assert.Null(decoder.RawGridInUse);

        // cx = (0.5 + 1) * 16 = 24, cy = (0.5 + 2) * 16 = 40, w = e^ln2 * 16 = 32, h = e^0 * 16 = 16.
        var d = Assert.Single(Run(decoder, Grid(0.5f, 0.5f, MathF.Log(2f), 0f)));

        Assert.True(decoder.RawGridInUse);
        Assert.StartsWith("raw grid inferred", decoder.RawGridDecision, StringComparison.Ordinal);
        AssertBox(d, 8, 32, 40, 48, 1e-4f);
        Assert.Equal(0.81f, d.Score, 5);
    }

    [Fact]
    public void Decoded_pixel_boxes_of_a_grid_sized_output_stay_decoded()
    {
        var decoder = new YoloXDecoder(new DetectionDecoderOptions(), [1, Anchors, 6], 64, 64);

        var d = Assert.Single(Run(decoder, Grid(40, 30, 20, 10)));

        Assert.False(decoder.RawGridInUse);
        Assert.StartsWith("raw grid not inferred", decoder.RawGridDecision, StringComparison.Ordinal);
        AssertBox(d, 30, 25, 50, 35);
    }

    [Fact]
    public void Frames_without_candidates_leave_the_choice_open_and_the_first_with_candidates_makes_it()
    {
        var decoder = new YoloXDecoder(new DetectionDecoderOptions(), [1, Anchors, 6], 64, 64);

        Assert.Empty(Run(decoder, Grid(0.5f, 0.5f, 0f, 0f, objectness: 0.1f)));
        Assert.Null(decoder.RawGridInUse);
        Assert.StartsWith("raw grid undecided", decoder.RawGridDecision, StringComparison.Ordinal);

        Assert.Single(Run(decoder, Grid(0.5f, 0.5f, 0f, 0f)));
        Assert.True(decoder.RawGridInUse);

        // Decided once, for good: later frames are decoded over the grid without looking again.
        var later = Assert.Single(Run(decoder, Grid(0.5f, 0.5f, MathF.Log(2f), 0f)));
        AssertBox(later, 8, 32, 40, 48, 1e-4f);
    }

    [Fact]
    public void Configured_values_win_over_the_inference()
    {
        var off = new YoloXDecoder(new DetectionDecoderOptions { RawGrid = false }, [1, Anchors, 6], 64, 64);
        var on = new YoloXDecoder(new DetectionDecoderOptions { RawGrid = true }, [1, Anchors, 6], 64, 64);

        Assert.False(off.RawGridInUse);
        Assert.True(on.RawGridInUse);
        Assert.Contains("(configured)", off.RawGridDecision, StringComparison.Ordinal);

        // Raw values read as pixels: centre (0.5, 0.5), 0.69 x 0 px, exactly the degenerate box the issue saw.
        var degenerate = Assert.Single(Run(off, Grid(0.5f, 0.5f, MathF.Log(2f), 0f)));
        Assert.Equal(0f, degenerate.Height);
        AssertBox(Assert.Single(Run(on, Grid(0.5f, 0.5f, MathF.Log(2f), 0f))), 8, 32, 40, 48, 1e-4f);
    }

    [Fact]
    public void An_anchor_count_that_is_no_grid_of_the_input_is_read_as_decoded()
    {
        var decoder = new YoloXDecoder(new DetectionDecoderOptions(), [1, Anchors, 6], 320, 320);

        Assert.False(decoder.RawGridInUse);
        Assert.Contains("84 anchors are not the 2100 cells", decoder.RawGridDecision, StringComparison.Ordinal);
    }

    [Fact]
    public void Zero_area_boxes_are_warned_about_after_ten_frames_in_a_row_then_every_thousand()
    {
        var monitor = new DegenerateBoxMonitor();
        Detection[] empty = [new Detection(0, 0.9f, 0, 0, 0, 4.6f), new Detection(1, 0.8f, 10, 10, 40, 40)];
        Detection[] real = [new Detection(1, 0.8f, 10, 10, 40, 40)];

        var due = new List<long>();
        for (var frame = 1; frame <= 9; frame++)
        {
            Assert.False(monitor.Observe(empty));
        }

        // A frame with only real boxes ends the run; one without detections does not.
        Assert.False(monitor.Observe(real));
        Assert.Equal(0, monitor.FramesInRow);
        for (var frame = 1; frame <= 2010; frame++)
        {
            if (frame == 5)
            {
                Assert.False(monitor.Observe([]));
            }

            if (monitor.Observe(empty))
            {
                due.Add(monitor.FramesInRow);
            }
        }

        Assert.Equal([10, 1010, 2010], due);
        Assert.Equal(2010, monitor.BoxesInRow);
        Assert.Equal(4020, monitor.DetectionsInRow);
    }
}
