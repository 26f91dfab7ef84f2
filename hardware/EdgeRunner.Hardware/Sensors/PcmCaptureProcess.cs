using System.ComponentModel;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// One run of a child process (ffmpeg or arecord) that writes raw PCM on its stdout: started with
/// stdin closed, its stderr kept (the last lines) so a failure can be reported in the program's own
/// words, and killed with its whole process tree when stopped.
/// </summary>
/// <remarks>
/// The same discipline as <see cref="Cameras.Ffmpeg.FfmpegFrameSource"/>, kept separate because a
/// sensor source knows nothing of frames; a daemon crash leaves no orphan either, since the child gets
/// EPIPE on its next write and exits.
/// </remarks>
internal sealed partial class PcmCaptureProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ILogger _logger;
    private readonly TimeSpan _exitTimeout;
    private readonly Processes.StderrTail _stderr;
    private bool _stopped;

    private PcmCaptureProcess(Process process, int stderrLines, TimeSpan exitTimeout, ILogger logger)
    {
        _process = process;
        _logger = logger;
        _exitTimeout = exitTimeout;
        _stderr = new Processes.StderrTail(Math.Max(1, stderrLines));
    }

    /// <summary>The program's stdout, the PCM stream.</summary>
    public Stream Output => _process.StandardOutput.BaseStream;

    /// <summary>Process id.</summary>
    public int Id { get; private set; }

    /// <summary>Exit code once the process has exited and been waited for; otherwise null.</summary>
    public int? ExitCode { get; private set; }

    /// <summary>Starts <paramref name="executable"/>; throws <see cref="SensorSourceException"/> when it cannot be run.</summary>
    public static PcmCaptureProcess Start(string executable, IReadOnlyList<string> arguments, string installHint, int stderrLines, TimeSpan exitTimeout, ILogger logger)
    {
        var start = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            CreateNoWindow = true,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["AV_LOG_FORCE_NOCOLOR"] = "1";
        var process = new Process { StartInfo = start };
        var capture = new PcmCaptureProcess(process, stderrLines, exitTimeout, logger);
        process.ErrorDataReceived += capture.OnStderr;
        try
        {
            process.Start();
        }
        catch (Exception ex) when (ex is Win32Exception or InvalidOperationException)
        {
            process.Dispose();
            throw new SensorSourceException($"Cannot start '{executable}': {ex.Message} ({installHint}).", ex);
        }

        capture.Id = process.Id;
        // Neither program reads stdin: give it EOF rather than the daemon's stdin.
        process.StandardInput.Close();
        process.BeginErrorReadLine();
        return capture;
    }

    /// <summary>The last stderr lines, oldest first.</summary>
    public IReadOnlyList<string> RecentErrors => _stderr.Lines;

    /// <summary>The program's explanation: its last (up to 3) distinct stderr lines.</summary>
    public string Reason()
    {
        var lines = RecentErrors;
        return lines.Count == 0
            ? "it printed no error"
            : string.Join("; ", lines.Skip(Math.Max(0, lines.Count - 3)).Distinct(StringComparer.Ordinal));
    }

    /// <summary>Waits for the process to exit by itself after its output ended (killing it if it lingers); returns the exit code.</summary>
    public async ValueTask<int> WaitForExitAsync()
    {
        await WaitAsync(killFirst: false).ConfigureAwait(false);
        return ExitCode ?? -1;
    }

    /// <summary>Kills the process tree and waits for it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopped)
        {
            return;
        }

        await WaitAsync(killFirst: true).ConfigureAwait(false);
    }

    private async ValueTask WaitAsync(bool killFirst)
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        if (killFirst)
        {
            Processes.ChildProcess.KillTree(_process);
        }

        using (var timeout = new CancellationTokenSource(_exitTimeout))
        {
            try
            {
                // Also waits for the stderr reader to drain, so Reason() sees the last words.
                await _process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                LogExitTimeout(_logger, Id, _exitTimeout);
                Processes.ChildProcess.KillTree(_process);
                await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }

        ExitCode = _process.ExitCode;
        _process.ErrorDataReceived -= OnStderr;
        _process.Dispose();
    }

    private void OnStderr(object sender, DataReceivedEventArgs e)
    {
        if (_stderr.Add(e.Data) is not { } line)
        {
            return;
        }

        LogStderr(_logger, Id, line);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "capture[{Pid}]: {Line}")]
    private static partial void LogStderr(ILogger logger, int pid, string line);

    [LoggerMessage(Level = LogLevel.Warning, Message = "capture[{Pid}] did not exit within {Timeout}; killing it")]
    private static partial void LogExitTimeout(ILogger logger, int pid, TimeSpan timeout);
}
