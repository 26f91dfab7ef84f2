using System.CommandLine;

namespace EdgeRunner.Service.Cli;

/// <summary>
/// The <c>edgerunner</c> command line: explicit verbs, a bare call runs the daemon, and anything it does
/// not know is a usage error (exit 64) — never a daemon started by mistake.
/// </summary>
internal static class EdgeRunnerCommandLine
{
    /// <summary>EX_USAGE: unknown verb or option.</summary>
    public const int UsageError = 64;

    /// <summary>The one-line usage printed with every usage error.</summary>
    public const string Usage =
        "usage: edgerunner [run] [--config FILE] [--Section:Key=value ...] | check-config [--config FILE] | status [--config FILE] | inspect MODEL | providers [--config FILE] | evaluate [...] | bench MODEL... [--provider P] [--threads N] [--seconds S] [--json] | bench-pipeline [--config FILE] [--seconds S] [--soak] [--plots DIR] [--json] | dump vision|vibration [...] | --version | --help";

    /// <summary>Parses <paramref name="args"/> and runs the verb; returns the process exit code.</summary>
    public static async Task<int> InvokeAsync(string[] args)
    {
        var root = Create();
        var parse = root.Parse(args);
        var problem = parse.Errors.Count > 0 ? parse.Errors[0].Message : FindNonOverride(parse.UnmatchedTokens);
        if (problem is not null)
        {
            await Console.Error.WriteLineAsync($"edgerunner: {problem}\n{Usage}\n(see 'edgerunner --help')");
            return UsageError;
        }

        return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
    }

    /// <summary>The command tree.</summary>
    public static RootCommand Create()
    {
        var configOption = new Option<FileInfo?>("--config")
        {
            Description = "JSON configuration file to use instead of the built-in demo configuration.",
            Recursive = true,
        };

        var root = new RootCommand(
            "EdgeRunner: runs INT8 CNNs on camera frames and stateful models on sensor streams, publishing results over MQTT.\n" +
            "A bare 'edgerunner' (no verb) runs the daemon, exactly as 'edgerunner run' does.\n" +
            "Any --Section:Key=value argument to run (or the bare call), check-config and status overrides that configuration key (e.g. --Mqtt:Host=broker.local).")
        {
            // Override tokens (--Section:Key=value) are unmatched by design; FindNonOverride rejects anything else.
            TreatUnmatchedTokensAsErrors = false,
        };
        root.Options.Add(configOption);
        root.Subcommands.Add(RunCommand.Create(configOption));
        root.Subcommands.Add(CheckConfigCommand.Create(configOption));
        root.Subcommands.Add(StatusCommand.Create(configOption));
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(ProvidersCommand.Create(configOption));
        root.Subcommands.Add(EvaluateCommand.Create(configOption));
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(BenchPipelineCommand.Create(configOption));
        root.Subcommands.Add(DumpCommands.Create());
        root.SetAction((parse, cancellationToken) => RunCommand.RunAsync(parse.GetValue(configOption)?.FullName, parse.UnmatchedTokens, cancellationToken));
        return root;
    }

    /// <summary>
    /// Null when every token is a configuration override (<c>--Section:Key=value</c>, or
    /// <c>--Section:Key value</c>); else why not, naming the first token that is not.
    /// </summary>
    internal static string? FindNonOverride(IReadOnlyList<string> tokens)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            var equals = token.IndexOf('=', StringComparison.Ordinal);
            var key = equals < 0 ? token : token[..equals];
            if (!token.StartsWith("--", StringComparison.Ordinal) || key.Length <= 2 || !key.Contains(':', StringComparison.Ordinal))
            {
                return token.StartsWith('-')
                    ? $"unknown option '{token}' (configuration overrides look like --Section:Key=value)"
                    : $"unknown verb or argument '{token}'";
            }

            if (equals < 0)
            {
                // --Section:Key value: the value is the next token.
                if (i + 1 >= tokens.Count || tokens[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    return $"configuration override '{token}' has no value (use --Section:Key=value)";
                }

                i++;
            }
        }

        return null;
    }
}
