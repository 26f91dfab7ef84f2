using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace EdgeRunner.Models.Inference;

/// <summary>
/// Keeps ONNX Runtime's own telemetry off. Official Linux builds since 1.31 carry 1DS telemetry that, unless
/// <c>ORT_DISABLE_TELEMETRY=1</c> is in the process environment before ONNX Runtime initialises, writes a
/// persistent device id and an event cache under <c>~/.cache/Microsoft/DeveloperTools/.onnxruntime</c> and
/// uploads events. An edge daemon must not: devices are offline, the service has no home directory
/// (<c>ProtectHome</c>), and a fleet operator decides what leaves a site. Runs when this assembly loads,
/// before any ONNX Runtime call EdgeRunner makes; <c>setenv</c> because .NET's
/// <see cref="Environment.SetEnvironmentVariable(string, string)"/> is not seen by native <c>getenv</c>.
/// </summary>
internal static partial class OnnxRuntimeTelemetry
{
    public const string Variable = "ORT_DISABLE_TELEMETRY";

    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "Must run before any ONNX Runtime call from any entry point (daemon, CLI, tests): the library's first touch is the only moment the variable counts.")]
    internal static void DisableBeforeOnnxRuntimeLoads()
    {
        // An operator who set the variable explicitly keeps their value.
        if (Environment.GetEnvironmentVariable(Variable) is null && setenv(Variable, "1", 1) == 0)
        {
            Environment.SetEnvironmentVariable(Variable, "1");
        }
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
