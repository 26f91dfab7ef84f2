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
/// <remarks>
/// A reload hands over a replacement (<see cref="Offer"/>); the camera's own inference loop takes it at the start of
/// its next frame, so the frame in flight finishes on the old session, which is disposed right there, between
/// frames, once nothing can use it any more. Until then <see cref="Model"/> and <see cref="Head"/> stay the old ones.
/// </remarks>
internal sealed class VisionFrameProcessor(ModelSession model, ImagePreprocessor preprocessor, IVisionHead head) : IDisposable
{
    private ModelSession _model = model;
    private ImagePreprocessor _preprocessor = preprocessor;
    private IVisionHead _head = head;
    private VisionFrameProcessor? _pending;
    private long _swaps;
    private int _disposed;

    /// <summary>The session the next frame runs on (the one the last frame ran on until a pending replacement is taken).</summary>
    public ModelSession Model => Volatile.Read(ref _model);

    public IVisionHead Head => Volatile.Read(ref _head);

    /// <summary>Replacements taken so far (each one a frame boundary where the new session took over).</summary>
    public long Swaps => Interlocked.Read(ref _swaps);

    /// <summary>
    /// Hands over <paramref name="replacement"/> (loaded and warmed up): taken at the start of the next frame, which
    /// runs on it. A replacement offered before the last one was taken supersedes it (that one is disposed).
    /// This instance owns <paramref name="replacement"/>'s session from now on.
    /// </summary>
    public void Offer(VisionFrameProcessor replacement)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        Interlocked.Exchange(ref _pending, replacement)?.Dispose();
        if (Volatile.Read(ref _disposed) != 0)
        {
            // The camera stopped meanwhile: nothing will take it.
            Interlocked.Exchange(ref _pending, null)?.Dispose();
        }
    }

    /// <summary>Runs the model on <paramref name="frame"/>; results are in <see cref="Head"/>.</summary>
    /// <exception cref="Microsoft.ML.OnnxRuntime.OnnxRuntimeException">Inference failed.</exception>
    public FrameTimings Process(Frame frame)
    {
        // One volatile read per frame while no reload is pending.
        if (Volatile.Read(ref _pending) is not null)
        {
            TakePending();
        }

        var start = Stopwatch.GetTimestamp();
        var view = frame.AsImageView();
        var model = _model;
        var mapping = model.InputElementType switch
        {
            InputElementType.UInt8 => _preprocessor.Run(view, model.InputBytes),
            InputElementType.Int8 => _preprocessor.Run(view, model.InputSBytes),
            _ => _preprocessor.Run(view, model.Input),
        };
        var preprocessed = Stopwatch.GetTimestamp();
        model.Run();
        var inferred = Stopwatch.GetTimestamp();
        _head.Decode(model, mapping, frame.Width, frame.Height);
        return new FrameTimings(
            Stopwatch.GetElapsedTime(start, preprocessed).TotalMilliseconds,
            Stopwatch.GetElapsedTime(preprocessed, inferred).TotalMilliseconds);
    }

    public void Dispose()
    {
        Volatile.Write(ref _disposed, 1);
        Interlocked.Exchange(ref _pending, null)?.Dispose();
        _model.Dispose();
    }

    /// <summary>On the inference loop, between frames: the replacement's parts become this processor's, and the old session goes.</summary>
    private void TakePending()
    {
        if (Interlocked.Exchange(ref _pending, null) is not { } next)
        {
            return;
        }

        var old = _model;
        Volatile.Write(ref _preprocessor, next._preprocessor);
        Volatile.Write(ref _head, next._head);
        Volatile.Write(ref _model, next._model);
        Interlocked.Increment(ref _swaps);
        old.Dispose();
    }
}
