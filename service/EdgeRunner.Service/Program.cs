// The command line (verbs, usage errors) lives in Cli/EdgeRunnerCommandLine.cs; a bare call runs the daemon.
return await EdgeRunner.Service.Cli.EdgeRunnerCommandLine.InvokeAsync(args);
