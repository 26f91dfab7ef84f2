using System.Reflection;

namespace EdgeRunner.Service.Cli;

/// <summary>The versions the daemon reports (--version, the ready line).</summary>
internal static class AppVersion
{
    /// <summary>The informational version (the package version, plus the commit when built from git).</summary>
    public static string Informational { get; } =
        typeof(AppVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>The ONNX Runtime native library's own version string.</summary>
    public static string OnnxRuntime => EdgeRunner.Models.Inference.OnnxRuntimeLibrary.Current.Version;

    /// <summary>The ONNX Runtime library in use: "1.32.0 (/usr/lib/edgerunner/libonnxruntime.so; providers CPUExecutionProvider)".</summary>
    public static string OnnxRuntimeLibrary
    {
        get
        {
            var library = EdgeRunner.Models.Inference.OnnxRuntimeLibrary.Current;
            return $"{library.Version} ({library.Path}; providers {string.Join(", ", library.Providers)})";
        }
    }
}
