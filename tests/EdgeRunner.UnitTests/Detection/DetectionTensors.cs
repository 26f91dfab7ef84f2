using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.UnitTests.DetectionDecoding;

/// <summary>Hand-built detector outputs for decoder tests.</summary>
internal static class DetectionTensors
{
    public static readonly SourceMapping Identity = new(1f, 0f, 1f, 0f);

    /// <summary>A box in model-input pixels with its class and score.</summary>
    public readonly record struct Box(int ClassId, float Score, float X1, float Y1, float X2, float Y2)
    {
        public float Cx => (X1 + X2) / 2;

        public float Cy => (Y1 + Y2) / 2;

        public float W => X2 - X1;

        public float H => Y2 - Y1;
    }

    /// <summary>YOLOv8 [1, 4+C, N]: box i goes to anchor i; other anchors score 0.</summary>
    public static ArrayModelOutputs YoloV8(int classes, int anchors, params Box[] boxes) =>
        new ArrayModelOutputs().Add("output0", YoloV8Data(classes, anchors, boxes), 1, 4 + classes, anchors);

    public static float[] YoloV8Data(int classes, int anchors, params Box[] boxes)
    {
        var data = new float[(4 + classes) * anchors];
        for (var i = 0; i < boxes.Length; i++)
        {
            SetYoloV8(data, anchors, i, boxes[i]);
        }

        return data;
    }

    public static void SetYoloV8(float[] data, int anchors, int anchor, Box b)
    {
        data[anchor] = b.Cx;
        data[anchors + anchor] = b.Cy;
        data[(2 * anchors) + anchor] = b.W;
        data[(3 * anchors) + anchor] = b.H;
        data[((4 + b.ClassId) * anchors) + anchor] = b.Score;
    }

    /// <summary>YOLOv5 [1, N, 5+C]: row i = cx, cy, w, h, objectness, class scores.</summary>
    public static float[] Row(int classes, float cx, float cy, float w, float h, float objectness, int classId, float classScore, float otherClassScore = 0f)
    {
        var row = new float[5 + classes];
        row[0] = cx;
        row[1] = cy;
        row[2] = w;
        row[3] = h;
        row[4] = objectness;
        for (var c = 0; c < classes; c++)
        {
            row[5 + c] = c == classId ? classScore : otherClassScore;
        }

        return row;
    }

    public static ArrayModelOutputs Rows(int classes, params float[][] rows)
    {
        var data = rows.SelectMany(r => r).ToArray();
        return new ArrayModelOutputs().Add("output", data, 1, rows.Length, 5 + classes);
    }

    public static Detection[] Run(IDetectionDecoder decoder, IModelOutputs outputs, SourceMapping? mapping = null, int frameWidth = 10000, int frameHeight = 10000, int capacity = 100)
    {
        var buffer = new Detection[capacity];
        var count = decoder.Decode(outputs, mapping ?? Identity, frameWidth, frameHeight, buffer);
        return buffer[..count];
    }

    public static void AssertBox(Detection d, float x1, float y1, float x2, float y2, float tolerance = 1e-3f)
    {
        Assert.InRange(d.X1, x1 - tolerance, x1 + tolerance);
        Assert.InRange(d.Y1, y1 - tolerance, y1 + tolerance);
        Assert.InRange(d.X2, x2 - tolerance, x2 + tolerance);
        Assert.InRange(d.Y2, y2 - tolerance, y2 + tolerance);
    }

    public static float Logit(float p) => MathF.Log(p / (1 - p));
}
