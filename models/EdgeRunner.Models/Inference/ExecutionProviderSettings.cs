namespace EdgeRunner.Models.Inference;

/// <summary>Per-provider settings of one model; each applies only when that provider is tried.</summary>
public sealed record ExecutionProviderSettings
{
    /// <summary>Settings for the TensorRT provider.</summary>
    public TensorRtSettings TensorRt { get; init; } = new();

    /// <summary>Settings for the CUDA provider (also used when CUDA runs after TensorRT).</summary>
    public CudaSettings Cuda { get; init; } = new();

    /// <summary>Settings for the OpenVINO provider.</summary>
    public OpenVinoSettings OpenVino { get; init; } = new();

    /// <summary>Settings for the XNNPACK provider.</summary>
    public XnnpackSettings Xnnpack { get; init; } = new();
}

/// <summary>TensorRT provider settings.</summary>
public sealed record TensorRtSettings
{
    /// <summary>Folder for built TensorRT engines (reused across starts: building one takes minutes); null or empty: no engine cache.</summary>
    public string? EngineCacheDirectory { get; init; }

    /// <summary>Let TensorRT use FP16 kernels.</summary>
    public bool Fp16 { get; init; }

    /// <summary>Let TensorRT use INT8 kernels (QDQ models carry their own scales).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "TensorRT's name for its INT8 precision mode.")]
    public bool Int8 { get; init; }

    /// <summary>Most GPU memory TensorRT may use while building an engine, in bytes; 0 = ONNX Runtime's default.</summary>
    public long WorkspaceBytes { get; init; }

    /// <summary>Append CUDA after TensorRT in the same session, so nodes TensorRT cannot run go to the GPU rather than the CPU.</summary>
    public bool CudaForUnsupportedNodes { get; init; } = true;
}

/// <summary>How the CUDA memory arena grows.</summary>
public enum CudaArenaExtendStrategy
{
    /// <summary>Doubles (ONNX Runtime's default): fewer allocations, more memory held.</summary>
    NextPowerOfTwo,

    /// <summary>Grows by what was asked for: less memory held.</summary>
    SameAsRequested,
}

/// <summary>CUDA provider settings (the device is <see cref="ModelSessionOptions.DeviceId"/>).</summary>
public sealed record CudaSettings
{
    /// <summary>How the CUDA memory arena grows.</summary>
    public CudaArenaExtendStrategy ArenaExtendStrategy { get; init; }

    /// <summary>Most GPU memory the CUDA arena may hold, in bytes; 0 = no limit.</summary>
    public long MemoryLimitBytes { get; init; }
}

/// <summary>OpenVINO provider settings.</summary>
public sealed record OpenVinoSettings
{
    /// <summary>OpenVINO device: CPU, GPU, GPU.0, NPU, or AUTO/HETERO/MULTI with a list (e.g. AUTO:GPU,CPU); empty = the build's default.</summary>
    public string DeviceType { get; init; } = string.Empty;
}

/// <summary>XNNPACK provider settings.</summary>
public sealed record XnnpackSettings
{
    /// <summary>XNNPACK's own thread pool size; 0 = the model's intra-op threads (at least 1).</summary>
    public int Threads { get; init; }
}
