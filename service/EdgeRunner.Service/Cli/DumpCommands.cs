using System.CommandLine;

namespace EdgeRunner.Service.Cli;

/// <summary>
/// <c>edgerunner dump ...</c>: writes training and evaluation data from the same simulators the
/// daemon runs, so the demo models are trained on exactly what they will see.
/// </summary>
internal static class DumpCommands
{
    public static Command Create()
    {
        var dump = new Command("dump", "Write simulator data (frames or sensor samples with their ground truth) to files for training and evaluation.");
        dump.Subcommands.Add(DumpVisionCommand.Create());
        dump.Subcommands.Add(DumpVibrationCommand.Create());
        return dump;
    }
}
