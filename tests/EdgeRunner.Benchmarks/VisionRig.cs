using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Models.Imaging;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Manifests;
using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Models.Preprocessing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// The bundled INT8 demo detector twice in one process, with the same intra-op thread count:
/// <list type="bullet">
/// <item>EdgeRunner's path: <see cref="ModelSession"/> (IoBinding, pinned reused tensors) fed by <see cref="ImagePreprocessor"/>
/// and read by the decoder <see cref="DetectionDecoders"/> builds from the manifest, composed exactly as the service's
/// <c>VisionFrameProcessor.Process</c> does (ImageView over the frame → preprocess into <c>model.Input</c> → <c>model.Run()</c> →
/// <c>decoder.Decode(model, mapping, …)</c> into a preallocated Detection[]).</item>
/// <item>The baseline: a plain <see cref="InferenceSession"/> with the same <see cref="SessionOptions"/> as ModelSession builds
/// (ORT_ENABLE_ALL, intra-op N, inter-op 1, sequential), run with ONNX Runtime's own <c>Run(RunOptions, names, OrtValues, outputNames)</c>:
/// the input OrtValue is created once over a reused float[] (the cheapest plain-API loop); ORT allocates and returns the output each call.</item>
/// </list>
/// </summary>
internal sealed class VisionRig : IDisposable
{
    private readonly Frame[] _frames;
    private readonly ModelSession _model;
    private readonly ImagePreprocessor _preprocessor;
    private readonly IDetectionDecoder _decoder;
    private readonly IDetectionDecoder _ortDecoder;
    private readonly Detection[] _detections;
    private readonly InferenceSession _ort;
    private readonly RunOptions _ortRunOptions = new();
    private readonly float[] _ortInput;
    private readonly OrtValue _ortInputValue;
    private readonly string[] _ortInputNames;
    private readonly OrtValue[] _ortInputValues;
    private readonly string[] _ortOutputNames;
    private readonly OrtOutputs _ortOutputs;
    private int _next;

    public VisionRig(int threads, int frameCount = 16)
    {
        Threads = threads;
        var manifest = ModelManifest.Load(Paths.Bundled("shapes-detector", "model.json"));
        ModelPath = manifest.ModelPath;
        var spec = manifest.Preprocess!.ToSpec();
        var post = manifest.Postprocess!;

        // Distinct frames of one moving scene, rendered once (the camera's work is not part of the per-frame processing).
        var scene = new SyntheticScene(640, 480, seed: 2024, objectCount: 4);
        var pool = new FramePool(frameCount);
        _frames = new Frame[frameCount];
        for (var i = 0; i < frameCount; i++)
        {
            _frames[i] = scene.RenderFrame(pool, i * 7);
        }

        _model = ModelSession.Load(
            new ModelSessionOptions
            {
                Id = manifest.Id,
                Path = ModelPath,
                IntraOpThreads = threads,
                ExpectedInputShape = spec.TensorShape(),
            },
            NullLogger<ModelSession>.Instance);
        _preprocessor = new ImagePreprocessor(spec);
        var options = new DetectionDecoderOptions
        {
            ScoreThreshold = post.ScoreThreshold,
            IouThreshold = post.IouThreshold,
            MaxDetections = post.MaxDetections,
        };
        _decoder = DetectionDecoders.Create(post.Kind, options, spec.Width, spec.Height, _model);
        _detections = new Detection[post.MaxDetections];

        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        _ort = new InferenceSession(ModelPath, sessionOptions);
        _ortInput = new float[_preprocessor.TensorLength];
        _ortInputValue = OrtValue.CreateTensorValueFromMemory(_ortInput, spec.TensorShape());
        _ortInputNames = [.. _ort.InputNames];
        _ortInputValues = [_ortInputValue];
        _ortOutputNames = [.. _ort.OutputNames];
        _ortOutputs = new OrtOutputs(_ortOutputNames, [.. _ortOutputNames.Select(n => (IReadOnlyList<long>)[.. _ort.OutputMetadata[n].Dimensions.Select(d => (long)Math.Max(d, 1))])]);
        _ortDecoder = DetectionDecoders.Create(post.Kind, options, spec.Width, spec.Height, _ortOutputs);

        // Both inputs hold a real preprocessed frame for the inference-only loops; warm both sessions up.
        _preprocessor.Run(View(_frames[0]), _model.Input);
        _model.Input.CopyTo(_ortInput);
        _model.Run();
        OrtInference();
        LastDetections = Pipeline();
    }

    public int Threads { get; }

    public string ModelPath { get; }

    public int LastDetections { get; private set; }

    /// <summary>EdgeRunner per-frame work, as VisionFrameProcessor.Process: preprocess + ModelSession.Run + decode.</summary>
    public int Pipeline()
    {
        var frame = NextFrame();
        var mapping = _preprocessor.Run(View(frame), _model.Input);
        _model.Run();
        return _decoder.Decode(_model, mapping, frame.Width, frame.Height, _detections);
    }

    /// <summary>ModelSession.Run alone (input already filled).</summary>
    public void Inference() => _model.Run();

    /// <summary>Plain ONNX Runtime: InferenceSession.Run with a reused input OrtValue; ORT allocates the outputs, disposed each call.</summary>
    public int OrtInference()
    {
        using var results = _ort.Run(_ortRunOptions, _ortInputNames, _ortInputValues, _ortOutputNames);
        return results.Count;
    }

    /// <summary>The same pipeline on plain ONNX Runtime: preprocess into the reused input, InferenceSession.Run, decode its outputs.</summary>
    public int OrtPipeline()
    {
        var frame = NextFrame();
        var mapping = _preprocessor.Run(View(frame), _ortInput);
        using var results = _ort.Run(_ortRunOptions, _ortInputNames, _ortInputValues, _ortOutputNames);
        _ortOutputs.Current = results;
        var count = _ortDecoder.Decode(_ortOutputs, mapping, frame.Width, frame.Height, _detections);
        _ortOutputs.Current = null;
        return count;
    }

    public void Dispose()
    {
        _model.Dispose();
        _ortInputValue.Dispose();
        _ortRunOptions.Dispose();
        _ort.Dispose();
        foreach (var frame in _frames)
        {
            frame.Dispose();
        }
    }

    private static ImageView View(Frame frame) =>
        new(frame.Pixels, frame.Width, frame.Height, frame.Stride, ImagePixelFormat.Rgb24);

    private Frame NextFrame()
    {
        var frame = _frames[_next];
        _next = (_next + 1) % _frames.Length;
        return frame;
    }

    /// <summary>Decoder view of the OrtValues one InferenceSession.Run returned.</summary>
    private sealed class OrtOutputs(string[] names, IReadOnlyList<long>[] shapes) : IModelOutputs
    {
        public IReadOnlyList<OrtValue>? Current { get; set; }

        public int OutputCount => names.Length;

        public string OutputName(int index) => names[index];

        public ReadOnlySpan<float> Output(int index) =>
            Current is { } values ? values[index].GetTensorDataAsSpan<float>() : ReadOnlySpan<float>.Empty;

        public IReadOnlyList<long> OutputShape(int index) => shapes[index];
    }
}
