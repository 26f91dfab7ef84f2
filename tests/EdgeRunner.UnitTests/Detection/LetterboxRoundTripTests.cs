using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Models.Preprocessing;
using static EdgeRunner.UnitTests.DetectionDecoding.DetectionTensors;

namespace EdgeRunner.UnitTests.DetectionDecoding;

/// <summary>
/// A box drawn at known frame pixels, pushed into model space with the letterbox math, must decode back to the same
/// frame pixels through the <see cref="SourceMapping"/> the real <see cref="ImagePreprocessor"/> returns.
/// </summary>
public sealed class LetterboxRoundTripTests
{
    private static SourceMapping LetterboxMapping(int frameWidth, int frameHeight)
    {
        var pre = new ImagePreprocessor(new ImagePreprocessingSpec { Width = 640, Height = 640, Resize = ResizeMode.Letterbox });
        var pixels = new byte[frameWidth * frameHeight * 3];
        return pre.Run(new ImageView(pixels, frameWidth, frameHeight, frameWidth * 3, ImagePixelFormat.Rgb24), new float[pre.TensorLength]);
    }

    [Theory]
    [InlineData(640, 480)]   // scale 1, 80 px bars top and bottom
    [InlineData(1280, 720)]  // scale 0.5, 140 px bars
    [InlineData(480, 640)]   // portrait: bars left and right
    [InlineData(1000, 333)]  // non-integer scale and padding
    public void A_frame_box_survives_letterbox_encode_and_decode(int frameWidth, int frameHeight)
    {
        var mapping = LetterboxMapping(frameWidth, frameHeight);
        // Letterbox math as the YOLO exporters apply it: one scale, padding split evenly (floor before the image).
        var scale = Math.Min(640.0 / frameWidth, 640.0 / frameHeight);
        var padX = Math.Floor((640 - Math.Round(frameWidth * scale)) / 2);
        var padY = Math.Floor((640 - Math.Round(frameHeight * scale)) / 2);
        float fx1 = frameWidth * 0.15625f, fy1 = frameHeight * 0.1046f, fx2 = frameWidth * 0.46914f, fy2 = frameHeight * 0.8359f;
        var model = new Box(
            1,
            0.9f,
            (float)((fx1 * scale) + padX),
            (float)((fy1 * scale) + padY),
            (float)((fx2 * scale) + padX),
            (float)((fy2 * scale) + padY));
        var decoder = new YoloV8Decoder(new DetectionDecoderOptions(), [1, 6, 8400]);

        var found = Run(decoder, YoloV8(2, 8400, model), mapping, frameWidth, frameHeight);

        var d = Assert.Single(found);
        Assert.Equal(1, d.ClassId);
        AssertBox(d, fx1, fy1, fx2, fy2, tolerance: 0.5f);
    }

    [Fact]
    public void A_box_reaching_into_the_padding_is_clamped_to_the_frame()
    {
        var mapping = LetterboxMapping(640, 480);
        // Model y 40..200 → frame y -40..120 (the top bar is 80 px): clamped to 0..120.
        var found = Run(new YoloV8Decoder(new DetectionDecoderOptions(), [1, 5, 1]), YoloV8(1, 1, new Box(0, 0.9f, 100, 40, 200, 200)), mapping, 640, 480);

        AssertBox(Assert.Single(found), 100, 0, 200, 120, 0.5f);
    }
}
