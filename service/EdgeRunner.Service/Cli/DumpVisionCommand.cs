using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using SkiaSharp;

namespace EdgeRunner.Service.Cli;

/// <summary>
/// <c>edgerunner dump vision</c>: renders synthetic-camera frames as PNG files plus a
/// <c>labels.jsonl</c> with each frame's ground-truth boxes (pixels, x1,y1,x2,y2) and class ids.
/// Frames come from several scenes (seeds) so a training set is not one scene over and over.
/// </summary>
internal static class DumpVisionCommand
{
    public static Command Create()
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder (created).", Required = true };
        var frames = new Option<int>("--frames") { Description = "Frames to write.", DefaultValueFactory = _ => 1000 };
        var seed = new Option<int>("--seed") { Description = "First scene seed; scene k uses seed + k.", DefaultValueFactory = _ => 1 };
        var framesPerScene = new Option<int>("--frames-per-scene") { Description = "Frames taken from each scene before moving to the next seed.", DefaultValueFactory = _ => 50 };
        var stride = new Option<int>("--stride") { Description = "Scene frame index step between written frames (objects move between them).", DefaultValueFactory = _ => 7 };
        var width = new Option<int>("--width") { DefaultValueFactory = _ => 640 };
        var height = new Option<int>("--height") { DefaultValueFactory = _ => 480 };
        var command = new Command("vision", "Synthetic camera frames (PNG) with ground-truth boxes (labels.jsonl).")
        {
            output, frames, seed, framesPerScene, stride, width, height,
        };
        command.SetAction(parse => Run(
            parse.GetValue(output)!.FullName,
            parse.GetValue(frames),
            parse.GetValue(seed),
            parse.GetValue(framesPerScene),
            parse.GetValue(stride),
            parse.GetValue(width),
            parse.GetValue(height)));
        return command;
    }

    private static int Run(string outputDirectory, int frames, int seed, int framesPerScene, int stride, int width, int height)
    {
        if (frames < 1 || framesPerScene < 1 || stride < 1)
        {
            Console.Error.WriteLine("edgerunner dump vision: --frames, --frames-per-scene and --stride must be at least 1");
            return StartupException.ConfigError;
        }

        Directory.CreateDirectory(Path.Combine(outputDirectory, "images"));
        var pool = new FramePool(2);
        using var labels = new StreamWriter(Path.Combine(outputDirectory, "labels.jsonl"));
        SyntheticScene? scene = null;
        var truth = new SyntheticObject[64];
        for (var i = 0; i < frames; i++)
        {
            var sceneIndex = i / framesPerScene;
            var sceneSeed = seed + sceneIndex;
            if (i % framesPerScene == 0)
            {
                scene = new SyntheticScene(width, height, sceneSeed);
            }

            // Each scene starts at its own point of the lighting cycle (see SyntheticScene.StartIndex).
            var frameIndex = SyntheticScene.StartIndex(sceneSeed) + ((long)(i % framesPerScene) * stride);
            using var frame = scene!.RenderFrame(pool, frameIndex);
            var name = i.ToString("D6", CultureInfo.InvariantCulture) + ".png";
            WritePng(frame, Path.Combine(outputDirectory, "images", name));
            scene.GetTruth(frameIndex, truth);
            labels.WriteLine(JsonSerializer.Serialize(new
            {
                file = "images/" + name,
                seed = sceneSeed,
                index = frameIndex,
                width,
                height,
                boxes = truth.Take(scene.ObjectCount).Select(o => new
                {
                    class_id = (int)o.Shape,
                    label = o.Shape.ToString().ToLowerInvariant(),
                    x1 = MathF.Round(o.X1, 2),
                    y1 = MathF.Round(o.Y1, 2),
                    x2 = MathF.Round(o.X2, 2),
                    y2 = MathF.Round(o.Y2, 2),
                }),
            }));
        }

        Console.WriteLine($"wrote {frames} frames to {outputDirectory}");
        return 0;
    }

    private static unsafe void WritePng(Frame frame, string path)
    {
        // Skia has no 24-bit colour type: expand to RGBA for encoding (offline tool, not a hot path).
        var rgba = new byte[frame.Width * frame.Height * 4];
        var rgb = frame.Pixels;
        for (int s = 0, d = 0; s < rgb.Length; s += 3, d += 4)
        {
            rgba[d] = rgb[s];
            rgba[d + 1] = rgb[s + 1];
            rgba[d + 2] = rgb[s + 2];
            rgba[d + 3] = 255;
        }

        fixed (byte* p = rgba)
        {
            using var pixmap = new SKPixmap(new SKImageInfo(frame.Width, frame.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul), (IntPtr)p);
            using var data = pixmap.Encode(SKEncodedImageFormat.Png, 100) ?? throw new IOException($"PNG encoding failed for {path}.");
            using var file = File.Create(path);
            data.SaveTo(file);
        }
    }
}
