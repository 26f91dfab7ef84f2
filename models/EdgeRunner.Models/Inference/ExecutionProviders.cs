using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.Models.Inference;

/// <summary>
/// Names of the ONNX Runtime execution providers EdgeRunner knows how to configure, and how to append
/// each to a <see cref="SessionOptions"/>. Which are usable depends on the ONNX Runtime build shipped
/// with the daemon (<see cref="Available"/>).
/// </summary>
public static class ExecutionProviders
{
    /// <summary><see cref="ProviderAppend.Provider"/> of the TensorRT call.</summary>
    internal const string TensorRtAppend = "TensorRT";

    /// <summary><see cref="ProviderAppend.Provider"/> of the CUDA call.</summary>
    internal const string CudaAppend = "CUDA";

    /// <summary>Config names accepted, mapped to ONNX Runtime provider names.</summary>
    public static IReadOnlyDictionary<string, string> Known { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["cpu"] = "CPUExecutionProvider",
        ["cuda"] = "CUDAExecutionProvider",
        ["tensorrt"] = "TensorrtExecutionProvider",
        ["openvino"] = "OpenVINOExecutionProvider",
        ["xnnpack"] = "XnnpackExecutionProvider",
    };

    /// <summary>Providers compiled into the loaded ONNX Runtime library.</summary>
    public static IReadOnlyList<string> Available { get; } = LoadAvailable();

    private static string[] LoadAvailable()
    {
        // The first touch of ONNX Runtime may be here: its environment gets EdgeRunner's log bridge first.
        OnnxRuntimeLog.EnsureEnvironment();
        return OrtEnv.Instance().GetAvailableProviders();
    }

    /// <summary>
    /// Why the provider's shared library cannot be loaded, in the dynamic loader's words (e.g.
    /// "; libonnxruntime_providers_cuda.so: libcublasLt.so.13: cannot open shared object file: No such file or
    /// directory"), or an empty string when it loads or the provider has no library of its own. Providers built
    /// as separate libraries (CUDA, TensorRT, OpenVINO) live next to the ONNX Runtime library in use.
    /// </summary>
    public static string ExplainLoadFailure(string configName)
    {
        ArgumentNullException.ThrowIfNull(configName);
        var file = configName.ToLowerInvariant() switch
        {
            "cuda" => "libonnxruntime_providers_cuda.so",
            "tensorrt" => "libonnxruntime_providers_tensorrt.so",
            "openvino" => "libonnxruntime_providers_openvino.so",
            _ => null,
        };
        if (file is null)
        {
            return string.Empty;
        }

        var library = OnnxRuntimeLibrary.Current.Path;
        var directory = Path.IsPathRooted(library) ? Path.GetDirectoryName(library)! : AppContext.BaseDirectory;
        var path = Path.Combine(directory, file);
        if (!File.Exists(path))
        {
            return $"; {file} is not beside {library}";
        }

        try
        {
            NativeLibrary.Free(NativeLibrary.Load(path));
            return string.Empty;
        }
        catch (DllNotFoundException ex)
        {
            return $"; {file}: {OnnxRuntimeLibrary.LoaderReason(ex.Message)}";
        }
    }

    /// <summary>
    /// Why <paramref name="deviceType"/> is not an OpenVINO device type, or null when it is one: CPU, GPU, GPU.{n},
    /// NPU, AUTO, or AUTO/HETERO/MULTI followed by ':' and a comma-separated list of devices. Empty is the build's default.
    /// </summary>
    public static string? OpenVinoDeviceTypeProblem(string deviceType)
    {
        ArgumentNullException.ThrowIfNull(deviceType);
        if (deviceType.Length == 0)
        {
            return null;
        }

        var colon = deviceType.IndexOf(':', StringComparison.Ordinal);
        var head = colon < 0 ? deviceType : deviceType[..colon];
        if (colon < 0)
        {
            return IsOpenVinoDevice(head) || head == "AUTO"
                ? null
                : $"'{deviceType}' is not an OpenVINO device type (CPU, GPU, GPU.0, NPU, AUTO, or AUTO:/HETERO:/MULTI: with a list such as AUTO:GPU,CPU; upper case)";
        }

        if (head is not ("AUTO" or "HETERO" or "MULTI"))
        {
            return $"'{deviceType}': only AUTO, HETERO and MULTI take a device list after ':'";
        }

        var devices = deviceType[(colon + 1)..].Split(',');
        return devices.All(IsOpenVinoDevice)
            ? null
            : $"'{deviceType}': the list after '{head}:' must name devices CPU, GPU, GPU.{{n}} or NPU, separated by commas";
    }

    private static bool IsOpenVinoDevice(string name) =>
        name is "CPU" or "GPU" or "NPU"
        || (name.StartsWith("GPU.", StringComparison.Ordinal) && name.Length > 4 && !name.AsSpan(4).ContainsAnyExceptInRange('0', '9'));

    /// <summary>
    /// The provider-append calls that trying <paramref name="configName"/> makes, in order, each with its options under
    /// ONNX Runtime's own option names. Empty for CPU (always present, always last). TensorRT is followed by CUDA
    /// (same device and CUDA settings) when <see cref="TensorRtSettings.CudaForUnsupportedNodes"/> is set and CUDA is in
    /// <paramref name="available"/>, so nodes TensorRT cannot take stay on the GPU.
    /// </summary>
    internal static IReadOnlyList<ProviderAppend> Plan(string configName, ExecutionProviderSettings settings, int deviceId, int intraOpThreads, IReadOnlyList<string> available)
    {
        var c = CultureInfo.InvariantCulture;
        var device = deviceId.ToString(c);
        Dictionary<string, string> Cuda()
        {
            var cuda = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["device_id"] = device,
                ["arena_extend_strategy"] = settings.Cuda.ArenaExtendStrategy == CudaArenaExtendStrategy.SameAsRequested ? "kSameAsRequested" : "kNextPowerOfTwo",
            };
            if (settings.Cuda.MemoryLimitBytes > 0)
            {
                cuda["gpu_mem_limit"] = settings.Cuda.MemoryLimitBytes.ToString(c);
            }

            return cuda;
        }

        switch (configName.ToLowerInvariant())
        {
            case "cpu":
                return [];
            case "cuda":
                return [new ProviderAppend(CudaAppend, Cuda())];
            case "tensorrt":
                var trt = settings.TensorRt;
                var options = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["device_id"] = device,
                    ["trt_fp16_enable"] = trt.Fp16 ? "1" : "0",
                    ["trt_int8_enable"] = trt.Int8 ? "1" : "0",
                };
                if (trt.WorkspaceBytes > 0)
                {
                    options["trt_max_workspace_size"] = trt.WorkspaceBytes.ToString(c);
                }

                if (!string.IsNullOrEmpty(trt.EngineCacheDirectory))
                {
                    options["trt_engine_cache_enable"] = "1";
                    options["trt_engine_cache_path"] = trt.EngineCacheDirectory;
                }

                return trt.CudaForUnsupportedNodes && available.Contains(Known["cuda"])
                    ? [new ProviderAppend(TensorRtAppend, options), new ProviderAppend(CudaAppend, Cuda())]
                    : [new ProviderAppend(TensorRtAppend, options)];
            case "openvino":
                return [new ProviderAppend("OpenVINO", string.IsNullOrEmpty(settings.OpenVino.DeviceType)
                    ? new Dictionary<string, string>(StringComparer.Ordinal)
                    : new Dictionary<string, string>(StringComparer.Ordinal) { ["device_type"] = settings.OpenVino.DeviceType })];
            case "xnnpack":
                var threads = settings.Xnnpack.Threads > 0 ? settings.Xnnpack.Threads : Math.Max(1, intraOpThreads);
                return [new ProviderAppend("XNNPACK", new Dictionary<string, string>(StringComparer.Ordinal) { ["intra_op_num_threads"] = threads.ToString(c) })];
            default:
                throw new ArgumentException($"Unknown execution provider '{configName}'. Known: {string.Join(", ", Known.Keys)}.", nameof(configName));
        }
    }

    /// <summary>
    /// Makes one planned call on <paramref name="options"/>. TensorRT and CUDA take native option objects, which are
    /// added to <paramref name="keepAlive"/>: ONNX Runtime reads them when the session is created, so the caller
    /// disposes them after that.
    /// </summary>
    internal static void Append(SessionOptions options, ProviderAppend append, List<IDisposable> keepAlive)
    {
        var dictionary = new Dictionary<string, string>(append.Options, StringComparer.Ordinal);
        switch (append.Provider)
        {
            case TensorRtAppend:
                if (append.Options.TryGetValue("trt_engine_cache_path", out var cache))
                {
                    // TensorRT writes engines there but does not create missing parents.
                    Directory.CreateDirectory(cache);
                }

                var trt = new OrtTensorRTProviderOptions();
                keepAlive.Add(trt);
                trt.UpdateOptions(dictionary);
                options.AppendExecutionProvider_Tensorrt(trt);
                return;
            case CudaAppend:
                var cuda = new OrtCUDAProviderOptions();
                keepAlive.Add(cuda);
                cuda.UpdateOptions(dictionary);
                options.AppendExecutionProvider_CUDA(cuda);
                return;
            default:
                // OpenVINO and XNNPACK take their options by name through the generic call.
                options.AppendExecutionProvider(append.Provider, dictionary);
                return;
        }
    }
}

/// <summary>One provider-append call on a session's options: ONNX Runtime's provider and its options by ONNX Runtime's names.</summary>
internal sealed record ProviderAppend(string Provider, IReadOnlyDictionary<string, string> Options);
