using System.Diagnostics;
using System.Globalization;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Inference;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// <c>OnnxRuntime:LibraryPath</c>: the daemon as a process pointed at another <c>libonnxruntime.so</c> (one
/// process, one library, so never in the test process itself). The libraries that must be refused are
/// made here with gcc: one whose API base reports ONNX Runtime 1.16.3 and offers no newer C API (what an
/// old JetPack build is to this managed package), and one that needs a library the system lacks (what
/// the CUDA build is without libcublasLt).
/// </summary>
public sealed class OnnxRuntimeLibraryTests : IDisposable
{
    private const int ExConfig = 78;

    private const string ApiBaseSource = """
        #include <stddef.h>
        typedef struct { const void* (*GetApi)(unsigned int); const char* (*GetVersionString)(void); } OrtApiBase;
        static const void* get_api(unsigned int version) { return version <= 16 ? (const void*)1 : NULL; }
        static const char* version_string(void) { return "1.16.3"; }
        static const OrtApiBase api_base = { get_api, version_string };
        const OrtApiBase* OrtGetApiBase(void) { return &api_base; }
        """;

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task A_library_too_old_for_this_build_stops_startup_naming_the_key_the_file_and_both_versions()
    {
        var library = await CompileAsync("libonnxruntime-old.so", ApiBaseSource);

        var stderr = await RunExpectingConfigErrorAsync(library);

        Assert.Contains($"OnnxRuntime:LibraryPath: {library}: is ONNX Runtime 1.16.3, which does not offer C API version {OnnxRuntimeLibrary.RequiredApiVersion}", stderr, StringComparison.Ordinal);
        Assert.Contains($"needs a library of version 1.{OnnxRuntimeLibrary.RequiredApiVersion} or newer", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("TypeInitializationException", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_library_missing_a_dependency_is_refused_with_the_loaders_reason()
    {
        // libcublasLt.so.13 exists only while linking: loading then fails exactly as the CUDA build does on a host without CUDA.
        var dependency = await CompileAsync("libcublasLt.so.13", "void cublas_stand_in(void) {}", "-Wl,-soname,libcublasLt.so.13");
        var library = await CompileAsync("libonnxruntime-cuda.so", ApiBaseSource, $"-L{_folder.Path}", "-Wl,--no-as-needed", "-l:libcublasLt.so.13");
        File.Delete(dependency);

        var stderr = await RunExpectingConfigErrorAsync(library);

        Assert.Contains($"OnnxRuntime:LibraryPath: {library}: cannot be loaded: libcublasLt.so.13: cannot open shared object file: No such file or directory", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_file_a_folder_and_a_file_that_is_not_onnx_runtime_are_refused()
    {
        var missing = Path.Combine(_folder.Path, "no-such-libonnxruntime.so");
        Assert.Contains($"OnnxRuntime:LibraryPath: {missing}: does not exist.", await RunExpectingConfigErrorAsync(missing), StringComparison.Ordinal);

        Assert.Contains($"OnnxRuntime:LibraryPath: {_folder.Path}: is a directory", await RunExpectingConfigErrorAsync(_folder.Path), StringComparison.Ordinal);

        var other = await CompileAsync("libother.so", "int not_onnx_runtime(void) { return 0; }");
        Assert.Contains($"OnnxRuntime:LibraryPath: {other}: is not an ONNX Runtime library (no OrtGetApiBase export).", await RunExpectingConfigErrorAsync(other), StringComparison.Ordinal);

        var text = Path.Combine(_folder.Path, "libtext.so");
        await File.WriteAllTextAsync(text, "not a library", TestContext.Current.CancellationToken);
        Assert.Contains($"OnnxRuntime:LibraryPath: {text}: cannot be loaded: {text}: file too short", await RunExpectingConfigErrorAsync(text), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_library_at_another_path_is_the_one_the_daemon_loads_and_runs_models_on()
    {
        var ct = TestContext.Current.CancellationToken;
        // The shipped library under another name and folder, as a Jetson build would be installed.
        var shipped = Path.Combine(AppContext.BaseDirectory, "libonnxruntime.so");
        Assert.True(File.Exists(shipped), $"{shipped} is missing");
        var library = Path.Combine(_folder.Path, "custom", "libonnxruntime.so.1");
        Directory.CreateDirectory(Path.GetDirectoryName(library)!);
        File.Copy(shipped, library);
        var port = FreePort.Next();
        var home = Directory.CreateDirectory(Path.Combine(_folder.Path, "home")).FullName;

        await using var daemon = DaemonProcess.Start(
            [],
            new Dictionary<string, string>
            {
                ["EDGERUNNER__OnnxRuntime__LibraryPath"] = library,
                ["EDGERUNNER__Mqtt__EmbeddedBroker__Port"] = port.ToString(CultureInfo.InvariantCulture),
                ["HOME"] = home,
            });
        await using var results = await MqttProbe.ConnectAsync(port, "edgerunner/demo/+/+/result", TimeSpan.FromSeconds(60), ct);
        await results.WaitForAsync(m => m.Topic == "edgerunner/demo/vision/synthetic/result", TimeSpan.FromSeconds(60), ct);
        await results.WaitForAsync(m => m.Topic == "edgerunner/demo/sensors/pump-1/result", TimeSpan.FromSeconds(60), ct);

        // The process maps the chosen library file, and no other ONNX Runtime library.
        var maps = await File.ReadAllLinesAsync($"/proc/{daemon.Id}/maps", ct);
        var onnxRuntimeLibraries = maps
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6 && Path.GetFileName(f[5]).StartsWith("libonnxruntime", StringComparison.Ordinal))
            .Select(f => f[5])
            .Distinct()
            .ToList();
        Assert.Equal([library], onnxRuntimeLibraries);

        daemon.Terminate();
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));
        // The ready line names the library in use.
        Assert.Contains($"({library}; providers CPUExecutionProvider)", daemon.Stdout, StringComparison.Ordinal);

        // ONNX Runtime's own telemetry stayed off: no device id or event cache written under HOME.
        Assert.False(Directory.Exists(Path.Combine(home, ".cache", "Microsoft", "DeveloperTools", ".onnxruntime")), "ONNX Runtime wrote its telemetry cache");
        Assert.Empty(Directory.EnumerateFileSystemEntries(home, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task The_providers_verb_names_the_library_its_version_and_what_each_provider_name_finds()
    {
        var ct = TestContext.Current.CancellationToken;
        await using (var shipped = DaemonProcess.Start(["providers"]))
        {
            Assert.Equal(0, await shipped.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));
            Assert.Contains($"onnx runtime {OnnxRuntimeLibrary.ManagedVersion} (shipped with edgerunner)", shipped.Stdout, StringComparison.Ordinal);
            Assert.Matches(@"\n  cpu +CPUExecutionProvider +available", shipped.Stdout);
            Assert.Matches(@"\n  cuda +CUDAExecutionProvider +not in this build", shipped.Stdout);
        }

        var library = Path.Combine(_folder.Path, "libonnxruntime.so");
        File.Copy(Path.Combine(AppContext.BaseDirectory, "libonnxruntime.so"), library);
        await using (var chosen = DaemonProcess.Start(["providers", $"--OnnxRuntime:LibraryPath={library}"]))
        {
            Assert.Equal(0, await chosen.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));
            Assert.Contains("(OnnxRuntime:LibraryPath)", chosen.Stdout, StringComparison.Ordinal);
            Assert.Contains($"library: {library}", chosen.Stdout, StringComparison.Ordinal);
        }

        var old = await CompileAsync("libonnxruntime-old.so", ApiBaseSource);
        await using var refused = DaemonProcess.Start(["providers", $"--OnnxRuntime:LibraryPath={old}"]);
        Assert.Equal(ExConfig, await refused.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));
        Assert.Contains("is ONNX Runtime 1.16.3", refused.Stderr, StringComparison.Ordinal);
    }

    private static async Task<string> RunExpectingConfigErrorAsync(string library)
    {
        await using var daemon = DaemonProcess.Start([$"--OnnxRuntime:LibraryPath={library}"]);
        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        return daemon.Stderr;
    }

    private async Task<string> CompileAsync(string name, string source, params string[] linkArguments)
    {
        Requirement.Program("/usr/bin/gcc", "gcc");
        var ct = TestContext.Current.CancellationToken;
        var sourceFile = Path.Combine(_folder.Path, name + ".c");
        await File.WriteAllTextAsync(sourceFile, source, ct);
        var output = Path.Combine(_folder.Path, name);
        var start = new ProcessStartInfo("/usr/bin/gcc") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "-shared", "-fPIC", "-o", output, sourceFile }.Concat(linkArguments))
        {
            start.ArgumentList.Add(argument);
        }

        using var gcc = Process.Start(start)!;
        var errors = await gcc.StandardError.ReadToEndAsync(ct);
        await gcc.WaitForExitAsync(ct);
        Assert.True(gcc.ExitCode == 0, $"gcc failed: {errors}");
        return output;
    }
}
