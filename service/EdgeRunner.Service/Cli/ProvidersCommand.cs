using System.CommandLine;
using System.Globalization;
using System.Text;
using EdgeRunner.Models.Inference;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Cli;

/// <summary>
/// <c>edgerunner providers</c>: what this build and machine offer for inference — the ONNX Runtime library
/// (shipped, or <c>OnnxRuntime:LibraryPath</c> from the configuration), its version, the execution
/// providers compiled into it, and for each provider name a model may ask for whether it is there and, when
/// its library cannot be loaded, the dynamic loader's reason.
/// </summary>
internal static class ProvidersCommand
{
    public static Command Create(Option<FileInfo?> configOption)
    {
        var command = new Command("providers", "Show the ONNX Runtime library in use (OnnxRuntime:LibraryPath or the shipped one), its version and execution providers, and which provider names models may ask for. Exit 0, or 78 when the configured library cannot be used.");
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (exitCode, text) = Run(parse.GetValue(configOption)?.FullName, parse.UnmatchedTokens);
            await (exitCode == 0 ? Console.Out : Console.Error).WriteAsync(text.AsMemory(), cancellationToken);
            return exitCode;
        });
        return command;
    }

    internal static (int ExitCode, string Text) Run(string? configFile, IReadOnlyList<string> overrides)
    {
        string libraryPath;
        try
        {
            var configuration = EdgeRunnerHost.BuildConfiguration(configFile, overrides);
            libraryPath = configuration[$"{OnnxRuntimeOptions.SectionName}:{nameof(OnnxRuntimeOptions.LibraryPath)}"] ?? string.Empty;
        }
        catch (StartupException ex)
        {
            return (ex.ExitCode, $"edgerunner: configuration error: {ex.Message}\n");
        }

        OnnxRuntimeLibraryInfo library;
        try
        {
            library = string.IsNullOrWhiteSpace(libraryPath) ? OnnxRuntimeLibrary.Current : OnnxRuntimeLibrary.Use(libraryPath);
        }
        catch (OnnxRuntimeLibraryException ex)
        {
            return (StartupException.ConfigError, $"edgerunner: configuration error: OnnxRuntime:LibraryPath: {ex.Message}\n");
        }

        var c = CultureInfo.InvariantCulture;
        var s = new StringBuilder();
        s.AppendLine(c, $"onnx runtime {library.Version} ({(library.IsDefault ? "shipped with edgerunner" : "OnnxRuntime:LibraryPath")})");
        s.AppendLine(c, $"library: {library.Path}");
        s.AppendLine(c, $"managed API: ONNX Runtime {OnnxRuntimeLibrary.ManagedVersion} (needs C API {OnnxRuntimeLibrary.RequiredApiVersion})");
        s.AppendLine(c, $"providers in this build: {string.Join(", ", library.Providers)}");
        s.AppendLine("execution providers a model may ask for (Models:{name}:ExecutionProviders):");
        foreach (var (configName, ortName) in ExecutionProviders.Known)
        {
            var present = library.Providers.Contains(ortName);
            var note = present ? ExecutionProviders.ExplainLoadFailure(configName).TrimStart(';', ' ') : string.Empty;
            var state = !present ? "not in this build" : note.Length == 0 ? "available" : $"in this build, but its library does not load: {note}";
            s.AppendLine(c, $"  {configName,-9} {ortName,-28} {state}");
        }

        return (0, s.ToString());
    }
}
