namespace EdgeRunner.Models.Inference;

/// <summary>How to open one model.</summary>
public sealed record ModelSessionOptions
{
    /// <summary>Name used in logs, errors and results.</summary>
    public required string Id { get; init; }

    /// <summary>Path of the .onnx file.</summary>
    public required string Path { get; init; }

    /// <summary>Execution providers in order of preference, by config name (<see cref="ExecutionProviders.Known"/>). CPU is always the last resort.</summary>
    public IReadOnlyList<string> ExecutionProviders { get; init; } = ["cpu"];

    /// <summary>When false, failing to get the first preferred provider is an error instead of a logged fallback.</summary>
    public bool AllowFallback { get; init; } = true;

    /// <summary>GPU device index for GPU providers.</summary>
    public int DeviceId { get; init; }

    /// <summary>Per-provider settings (TensorRT, CUDA, OpenVINO, XNNPACK), used when that provider is tried.</summary>
    public ExecutionProviderSettings ProviderSettings { get; init; } = new();

    /// <summary>Intra-op threads (0 = ONNX Runtime's default: one per physical core).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>The tensor shape the caller will feed into the (single) image input, batch 1; null to accept the model's shape.</summary>
    public IReadOnlyList<long>? ExpectedInputShape { get; init; }

    /// <summary>What produces <see cref="ExpectedInputShape"/>, for error messages (e.g. "preprocessing 224x224 NCHW").</summary>
    public string ExpectedInputDescription { get; init; } = "the configured preprocessing";

    /// <summary>
    /// Whether ONNX Runtime's worker threads spin-wait for the next run (<c>session.intra_op.allow_spinning</c> and
    /// <c>session.inter_op.allow_spinning</c>): true = spin (lower latency when runs come back to back, a busy core
    /// between runs otherwise), false = sleep at once, null = ONNX Runtime's default (spin).
    /// </summary>
    public bool? AllowSpinning { get; init; }
}
