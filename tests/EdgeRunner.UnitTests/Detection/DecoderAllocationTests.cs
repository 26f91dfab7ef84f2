using EdgeRunner.Models.Postprocessing.Detection;
using static EdgeRunner.UnitTests.DetectionDecoding.DetectionTensors;

namespace EdgeRunner.UnitTests.DetectionDecoding;

/// <summary>Decode runs per frame on the pipeline thread: after the first call it must not allocate.</summary>
public sealed class DecoderAllocationTests
{
    public static TheoryData<string> Kinds => ["yolov8", "yolov5", "yolox-raw", "ssd", "fastestdet"];

    private static (IDetectionDecoder Decoder, ArrayModelOutputs Outputs) Build(string kind)
    {
        var random = new Random(7);
        float[] Fill(int length, float min, float max)
        {
            var data = new float[length];
            for (var i = 0; i < length; i++)
            {
                data[i] = min + ((max - min) * random.NextSingle());
            }

            return data;
        }

        // Low thresholds and random boxes: thousands of candidates, real top-K selection and NMS work.
        var options = new DetectionDecoderOptions { ScoreThreshold = 0.05f, MaxDetections = 300 };
        switch (kind)
        {
            case "yolov8":
                {
                    var data = Fill(84 * 8400, 0f, 1f);
                    for (var i = 0; i < 4 * 8400; i++)
                    {
                        data[i] *= 640;
                    }

                    return (new YoloV8Decoder(options, [1, 84, 8400]), new ArrayModelOutputs().Add("output0", data, 1, 84, 8400));
                }

            case "yolov5":
                return (new YoloV5Decoder(options, [1, 25200, 85]), new ArrayModelOutputs().Add("output", Fill(25200 * 85, 0f, 1f), 1, 25200, 85));
            case "yolox-raw":
                return (new YoloXDecoder(options with { RawGrid = true }, [1, 8400, 85], 640, 640), new ArrayModelOutputs().Add("output", Fill(8400 * 85, 0f, 1f), 1, 8400, 85));
            case "ssd":
                return (new SsdDecoder(options, [1, 4420, 2], [1, 4420, 4], 320, 240),
                    new ArrayModelOutputs().Add("scores", Fill(4420 * 2, 0f, 1f), 1, 4420, 2).Add("boxes", Fill(4420 * 4, 0f, 1f), 1, 4420, 4));
            default:
                return (new FastestDetDecoder(options, [1, 85, 22, 22], 352, 352), new ArrayModelOutputs().Add("758", Fill(85 * 22 * 22, 0f, 1f), 1, 85, 22, 22));
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Decode_allocates_nothing_in_steady_state(string kind)
    {
        var (decoder, outputs) = Build(kind);
        var destination = new Detection[300];
        var mapping = new Models.Preprocessing.SourceMapping(1.5f, -10f, 1.5f, -80f);
        var first = decoder.Decode(outputs, mapping, 1920, 1080, destination); // warm-up: JIT, first-call statics

        var count = 0;
        AllocationAssert.SteadyStateIsZero(() => count = decoder.Decode(outputs, mapping, 1920, 1080, destination));
        Assert.True(count > 0, "the check must exercise real detections");
        Assert.Equal(first, count);
    }
}
