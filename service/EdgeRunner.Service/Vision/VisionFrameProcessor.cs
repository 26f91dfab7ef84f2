using System.Diagnostics;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Preprocessing;

namespace EdgeRunner.Service.Vision;

/// <summary>Timings of one processed frame.</summary>
internal readonly record struct FrameTimings(double PreprocessMilliseconds, double InferenceMilliseconds);

/// <summary>
/// The per-frame work shared by the daemon's pipelines and the <c>evaluate</c> command:
/// preprocess into the session's input (float32, uint8 or int8), run, decode into the head. Owns the model session.
/// </summary>
internal sealed class VisionFrameProcessor(ModelSession model, ImagePreprocessor preprocessor, IVisionHead head) : IDisposable
{
    public ModelSession Model => model;

    public IVisionHead Head => head;

    /// <summary>Runs the model on <paramref name="frame"/>; results are in <see cref="Head"/>.</summary>
    /// <exception cref="Microsoft.ML.OnnxRuntime.OnnxRuntimeException">Inference failed.</exception>
    public FrameTimings Process(Frame frame)
    {
        var start = Stopwatch.GetTimestamp();
        var view = frame.AsImageView();
        var mapping = model.InputElementType switch
        {
            InputElementType.UInt8 => preprocessor.Run(view, model.InputBytes),
            InputElementType.Int8 => preprocessor.Run(view, model.InputSBytes),
            _ => preprocessor.Run(view, model.Input),
        };
        var preprocessed = Stopwatch.GetTimestamp();
        model.Run();
        var inferred = Stopwatch.GetTimestamp();
        head.Decode(model, mapping, frame.Width, frame.Height);
        return new FrameTimings(
            Stopwatch.GetElapsedTime(start, preprocessed).TotalMilliseconds,
            Stopwatch.GetElapsedTime(preprocessed, inferred).TotalMilliseconds);
    }

    public void Dispose() => model.Dispose();
}
