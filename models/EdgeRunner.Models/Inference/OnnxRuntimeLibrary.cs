using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.Models.Inference;

/// <summary>
/// Which native ONNX Runtime library the process uses. By default the one shipped with the daemon (the
/// CPU build from the NuGet package, or the CUDA build of the GPU flavour); <see cref="Use"/> points the
/// managed API at another <c>libonnxruntime.so</c> instead — a Jetson build with TensorRT/CUDA, an ACL or
/// QNN build — through ONNX Runtime's own hook (<see cref="OrtEnv.DisableDllImportResolver"/> plus a
/// <see cref="NativeLibrary.SetDllImportResolver"/> for its assembly). The library is checked before
/// ONNX Runtime touches it: a missing file, a file the dynamic loader refuses (with the loader's reason:
/// a missing dependency such as <c>libcublasLt.so.13</c>, a wrong architecture) or a library too old
/// for the managed API (whose static initialiser would otherwise die with "The requested API version
/// [N] is not available") is an <see cref="OnnxRuntimeLibraryException"/> naming the file and the reason.
/// </summary>
public static class OnnxRuntimeLibrary
{
    private static readonly Lock Gate = new();
    private static OnnxRuntimeLibraryInfo? _chosen;

    /// <summary>
    /// The ONNX Runtime C API version the managed package calls (its minor version: 1.31.x asks for API 31);
    /// a native library must offer at least this.
    /// </summary>
    public static int RequiredApiVersion { get; } = typeof(OrtEnv).Assembly.GetName().Version?.Minor ?? 0;

    /// <summary>Version of the managed ONNX Runtime package this build references, e.g. "1.31.1".</summary>
    public static string ManagedVersion { get; } =
        typeof(OrtEnv).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(OrtEnv).Assembly.GetName().Version?.ToString(3) ?? "unknown";

    /// <summary>
    /// Makes the process use the library at <paramref name="libraryPath"/>. Call once, at start-up,
    /// before any other ONNX Runtime call; calling it again with the same path is harmless.
    /// </summary>
    /// <exception cref="OnnxRuntimeLibraryException">The file is missing, cannot be loaded, is not ONNX Runtime, or is too old; or another library is already in use.</exception>
    public static OnnxRuntimeLibraryInfo Use(string libraryPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(libraryPath);
        var full = Path.GetFullPath(libraryPath);
        lock (Gate)
        {
            if (_chosen is { } chosen)
            {
                return chosen.Path == full
                    ? chosen
                    : throw new OnnxRuntimeLibraryException($"{full}: ONNX Runtime is already loaded from {chosen.Path}; one process uses one library.");
            }

            var version = Probe(full, out var handle);
            try
            {
                // ONNX Runtime's own resolver would look for the library next to the app; ours hands out this one.
                OrtEnv.DisableDllImportResolver = true;
                NativeLibrary.SetDllImportResolver(typeof(OrtEnv).Assembly, (name, _, _) => IsOnnxRuntime(name) ? handle : IntPtr.Zero);
            }
            catch (InvalidOperationException ex)
            {
                throw new OnnxRuntimeLibraryException($"{full}: ONNX Runtime was already initialised in this process before the library could be chosen ({ex.Message}).", ex);
            }

            IReadOnlyList<string> providers;
            try
            {
                OnnxRuntimeLog.EnsureEnvironment();
                providers = OrtEnv.Instance().GetAvailableProviders();
            }
            catch (Exception ex) when (ex is TypeInitializationException or OnnxRuntimeException or EntryPointNotFoundException)
            {
                throw new OnnxRuntimeLibraryException($"{full}: ONNX Runtime {version} failed to initialise: {ex.GetBaseException().Message}", ex);
            }

            _chosen = new OnnxRuntimeLibraryInfo(full, version, IsDefault: false, providers);
            return _chosen;
        }
    }

    /// <summary>
    /// The library in use (loading the default one if <see cref="Use"/> was not called): its path, version
    /// and the execution providers it was built with.
    /// </summary>
    public static OnnxRuntimeLibraryInfo Current
    {
        get
        {
            lock (Gate)
            {
                OnnxRuntimeLog.EnsureEnvironment();
                _chosen ??= new OnnxRuntimeLibraryInfo(DefaultPath(), OrtEnv.Instance().GetVersionString(), IsDefault: true, OrtEnv.Instance().GetAvailableProviders());
                return _chosen;
            }
        }
    }

    /// <summary>
    /// Checks that <paramref name="path"/> is an ONNX Runtime library this build can use, without making the
    /// process use it: its version string on success.
    /// </summary>
    /// <exception cref="OnnxRuntimeLibraryException">Missing, unloadable, not ONNX Runtime, or too old.</exception>
    public static string Check(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var version = Probe(Path.GetFullPath(path), out var handle);
        NativeLibrary.Free(handle);
        return version;
    }

    /// <summary>The dynamic loader's own words (dlerror): the last line of .NET's <see cref="DllNotFoundException"/> message.</summary>
    internal static string LoaderReason(string message)
    {
        var last = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? message;
        return last.Length == 0 ? message : last;
    }

    private static bool IsOnnxRuntime(string name) =>
        name is "onnxruntime" or "libonnxruntime" or "libonnxruntime.so" || name.StartsWith("onnxruntime.", StringComparison.Ordinal);

    /// <summary>Where the default library lives: next to the app (the NuGet package copies it there).</summary>
    private static string DefaultPath()
    {
        var candidate = Path.Combine(AppContext.BaseDirectory, "libonnxruntime.so");
        return File.Exists(candidate) ? candidate : "libonnxruntime.so (found by the dynamic loader)";
    }

    /// <summary>Loads the library and asks its API base for the version string and the API version the managed code needs.</summary>
    private static unsafe string Probe(string path, out IntPtr handle)
    {
        if (Directory.Exists(path))
        {
            throw new OnnxRuntimeLibraryException($"{path}: is a directory, not a library file (name the libonnxruntime.so inside it).");
        }

        if (!File.Exists(path))
        {
            throw new OnnxRuntimeLibraryException($"{path}: does not exist.");
        }

        try
        {
            handle = NativeLibrary.Load(path);
        }
        catch (DllNotFoundException ex)
        {
            // .NET's message ends with the dynamic loader's reason (dlerror): a missing dependency such as
            // "libcublasLt.so.13: cannot open shared object file", a wrong architecture, not an ELF file.
            throw new OnnxRuntimeLibraryException($"{path}: cannot be loaded: {LoaderReason(ex.Message)}", ex);
        }
        catch (BadImageFormatException ex)
        {
            throw new OnnxRuntimeLibraryException($"{path}: cannot be loaded: {ex.Message}", ex);
        }

        if (!NativeLibrary.TryGetExport(handle, "OrtGetApiBase", out var getApiBase))
        {
            NativeLibrary.Free(handle);
            throw new OnnxRuntimeLibraryException($"{path}: is not an ONNX Runtime library (no OrtGetApiBase export).");
        }

        // struct OrtApiBase { const OrtApi* (*GetApi)(uint32_t version); const char* (*GetVersionString)(void); }
        var apiBase = ((delegate* unmanaged[Cdecl]<IntPtr>)getApiBase)();
        if (apiBase == IntPtr.Zero)
        {
            NativeLibrary.Free(handle);
            throw new OnnxRuntimeLibraryException($"{path}: OrtGetApiBase returned nothing.");
        }

        var functions = (IntPtr*)apiBase;
        var versionString = Marshal.PtrToStringUTF8(((delegate* unmanaged[Cdecl]<IntPtr>)functions[1])()) ?? "unknown";
        var api = ((delegate* unmanaged[Cdecl]<uint, IntPtr>)functions[0])((uint)RequiredApiVersion);
        if (api == IntPtr.Zero)
        {
            NativeLibrary.Free(handle);
            throw new OnnxRuntimeLibraryException(
                $"{path}: is ONNX Runtime {versionString}, which does not offer C API version {RequiredApiVersion}; " +
                $"this EdgeRunner build calls ONNX Runtime {ManagedVersion} and needs a library of version 1.{RequiredApiVersion} or newer.");
        }

        return versionString;
    }
}

/// <summary>The ONNX Runtime library a process uses.</summary>
/// <param name="Path">Full path of the library file.</param>
/// <param name="Version">Its version string, e.g. "1.31.1".</param>
/// <param name="IsDefault">True for the library shipped with the daemon, false for one chosen with <c>OnnxRuntime:LibraryPath</c>.</param>
/// <param name="Providers">Execution providers compiled into the library.</param>
public sealed record OnnxRuntimeLibraryInfo(string Path, string Version, bool IsDefault, IReadOnlyList<string> Providers);

/// <summary>An ONNX Runtime library cannot be used; the message names the file and the reason.</summary>
public sealed class OnnxRuntimeLibraryException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OnnxRuntimeLibraryException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public OnnxRuntimeLibraryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public OnnxRuntimeLibraryException()
    {
    }
}
