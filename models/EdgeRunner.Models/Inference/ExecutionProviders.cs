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
    public static IReadOnlyList<string> Available { get; } = OrtEnv.Instance().GetAvailableProviders();

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

    /// <summary>Appends provider <paramref name="configName"/> to <paramref name="options"/>; throws when it is not available in this build.</summary>
    internal static void Append(SessionOptions options, string configName, int deviceId, int threads)
    {
        switch (configName.ToLowerInvariant())
        {
            case "cpu":
                return; // Always present, always last.
            case "cuda":
                options.AppendExecutionProvider_CUDA(deviceId);
                return;
            case "tensorrt":
                options.AppendExecutionProvider_Tensorrt(deviceId);
                return;
            case "openvino":
                options.AppendExecutionProvider_OpenVINO();
                return;
            case "xnnpack":
                options.AppendExecutionProvider("XNNPACK", new Dictionary<string, string>
                {
                    ["intra_op_num_threads"] = Math.Max(1, threads).ToString(System.Globalization.CultureInfo.InvariantCulture),
                });
                return;
            default:
                throw new ArgumentException($"Unknown execution provider '{configName}'. Known: {string.Join(", ", Known.Keys)}.", nameof(configName));
        }
    }
}
