using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using EdgeRunner.Hardware.Imaging;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Hardware.Cameras.Ffmpeg;

/// <summary>
/// Captures from a V4L2 camera, an RTSP or HTTP-MJPEG stream or a video file by running ffmpeg as a
/// child process that decodes, rate-converts (<c>fps</c> filter) and scales (<c>scale</c> filter) to
/// raw <see cref="FfmpegSourceOptions.Width"/>×<see cref="FfmpegSourceOptions.Height"/> frames on its
/// stdout; each frame is read straight into a pooled <see cref="Frame"/>.
/// </summary>
/// <remarks>
/// <para>
/// Why ffmpeg over a pipe rather than a decoding library: one well-known, distribution-maintained
/// program handles every input a deployment meets (V4L2 MJPEG/YUYV, RTSP over TCP/UDP with H.264/H.265,
/// HTTP MJPEG, files) with the same code path; it is hardware-agnostic (software decode everywhere,
/// <c>-hwaccel</c> through <see cref="FfmpegSourceOptions.ExtraInputArguments"/> where available);
/// and it isolates the daemon: a decoder crash, a hang in a camera's broken stream or a leak in a codec
/// kills or stalls one child process, which <see cref="SupervisedFrameSource"/> restarts, never the
/// daemon. The price (one copy of each raw frame through a pipe, a process per camera) is small next to
/// inference. Frigate and many NVRs make the same choice.
/// </para>
/// <para>
/// ffmpeg is started on the first <see cref="ReadFrameAsync"/> with stdin closed (<c>-nostdin</c>) and
/// its stderr captured (the last <see cref="FfmpegSourceOptions.StderrLines"/> lines, credentials
/// redacted) so that a failure is reported in ffmpeg's own words. It is killed (with any children) and
/// waited for on <see cref="DisposeAsync"/> and when a read is cancelled; a cancelled source is broken
/// (the pipe may hold half a frame) and must be replaced. Should the daemon itself die, ffmpeg gets
/// EPIPE on its next write and exits.
/// </para>
/// <para>
/// A non-looping file ends with null. For live kinds, ffmpeg ending (the camera closed the stream) is a
/// <see cref="FrameSourceException"/> like any other failure. Not thread-safe: one reader at a time.
/// </para>
/// <para>
/// A URL with a password never appears on ffmpeg's command line (readable by every local user through
/// <c>ps</c>): it goes into an ffconcat script (<see cref="FfmpegCommandLine.BuildInputScript"/>) written
/// 0600 in a private 0700 directory under <see cref="FfmpegCommandLine.PrivateDirectoryRoot"/> just before
/// ffmpeg starts, and deleted as soon as ffmpeg has delivered its first frame (it reads the script while
/// opening the input), or when it exits or is stopped.
/// </para>
/// </remarks>
public sealed partial class FfmpegFrameSource : IFrameSource
{
    private readonly FfmpegSourceOptions _options;
    private readonly FramePool _pool;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly string _input;
    private readonly List<string> _arguments;
    private readonly CredentialRedactor _redactor;
    private readonly int _frameBytes;
    private readonly Processes.StderrTail _stderr;
    private readonly PrivateInputScript? _inputScript;
    private readonly string? _inputScriptContent;
    private Process? _process;
    private Stream? _stdout;
    private long _sequence;
    private bool _ended;
    private string? _failure;
    private bool _disposed;

    /// <summary>Creates the source; ffmpeg starts on the first read.</summary>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    /// <exception cref="FrameSourceException">The credentials file cannot be read.</exception>
    public FfmpegFrameSource(FfmpegSourceOptions options, FramePool pool, TimeProvider timeProvider, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        _options = options;
        _pool = pool;
        _timeProvider = timeProvider;
        _logger = logger;
        _frameBytes = (int)FramePool.ByteCount(options.Width, options.Height, options.PixelFormat);
        (_input, _redactor, var hasPassword) = FfmpegCommandLine.ResolveInput(options);
        _stderr = new Processes.StderrTail(options.StderrLines, _redactor.Redact);
        if (hasPassword)
        {
            _inputScriptContent = FfmpegCommandLine.BuildInputScript(options, _input);
            _inputScript = new PrivateInputScript(FfmpegCommandLine.PrivateDirectoryRoot(), "input.ffconcat");
        }

        _arguments = FfmpegCommandLine.Build(options, _input, _inputScript?.FilePath);
        CommandLine = FfmpegCommandLine.Format(options.FfmpegPath, _arguments, _redactor);
        if (_inputScriptContent is not null)
        {
            // What the script says, redacted, so the log shows the whole invocation.
            CommandLine += $" [{Path.GetFileName(_inputScript!.FilePath)}: {_redactor.Redact(_inputScriptContent.TrimEnd().Replace("\n", "; ", StringComparison.Ordinal))}]";
        }

        var kind = options.Kind switch
        {
            FfmpegInputKind.File => options.Loop ? "file (loop)" : "file",
            FfmpegInputKind.V4l2 => "v4l2",
            FfmpegInputKind.Rtsp => "rtsp",
            _ => "http-mjpeg",
        };
        Description = _redactor.Redact(
            $"ffmpeg {kind} {options.Input} as {options.Width}x{options.Height} {FfmpegCommandLine.PixelFormatName(options.PixelFormat)} at {options.Fps} fps");
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <summary>The ffmpeg command line, credentials redacted (for logs and diagnostics).</summary>
    public string CommandLine { get; }

    /// <summary>The options this source was created with.</summary>
    public FfmpegSourceOptions Options => _options;

    /// <summary>Process id of the ffmpeg started by this source (kept after it exits); null before the first read.</summary>
    public int? ProcessId { get; private set; }

    /// <summary>ffmpeg's exit code once it has exited on its own or been stopped; otherwise null.</summary>
    public int? ExitCode { get; private set; }

    /// <summary>ffmpeg's last stderr lines, oldest first, credentials redacted.</summary>
    public IReadOnlyList<string> RecentErrors => _stderr.Lines;

    /// <inheritdoc />
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<Frame?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_ended)
        {
            return null;
        }

        if (_failure is not null)
        {
            throw new FrameSourceException(_failure);
        }

        cancellationToken.ThrowIfCancellationRequested();
        var stdout = _stdout ?? Start();
        var frame = _pool.Rent(_options.Width, _options.Height, _options.PixelFormat);
        var buffer = frame.Buffer.AsMemory(0, _frameBytes);
        var total = 0;
        try
        {
            while (total < _frameBytes)
            {
                var read = await stdout.ReadAsync(buffer[total..], cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                total += read;
            }
        }
        catch (OperationCanceledException)
        {
            frame.Dispose();
            // The pipe may now hold part of a frame: this ffmpeg is of no further use.
            _failure = "Capture was cancelled; the source must be recreated.";
            await StopAsync().ConfigureAwait(false);
            throw;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            frame.Dispose();
            ObjectDisposedException.ThrowIf(_disposed, this);
            _failure = _redactor.Redact($"Reading ffmpeg's output for {Description} failed: {ex.Message}");
            await StopAsync().ConfigureAwait(false);
            throw new FrameSourceException(_failure, ex);
        }

        if (total < _frameBytes)
        {
            frame.Dispose();
            return await EndOfOutputAsync(total).ConfigureAwait(false);
        }

        if (_sequence == 0)
        {
            // ffmpeg read its input script while opening the input, before the first frame: it is no longer needed.
            _inputScript?.Delete();
        }

        frame.Sequence = _sequence++;
        frame.Timestamp = _timeProvider.GetUtcNow();
        return frame;
    }

    /// <summary>Kills ffmpeg (and any children) if it runs, and waits for it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await StopAsync().ConfigureAwait(false);
        _inputScript?.Delete();
    }

    private Stream Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var start = new ProcessStartInfo(_options.FfmpegPath)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            CreateNoWindow = true,
        };
        foreach (var argument in _arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["AV_LOG_FORCE_NOCOLOR"] = "1";
        var process = new Process { StartInfo = start };
        process.ErrorDataReceived += OnStderr;
        LogStarting(_logger, Description, CommandLine);
        if (_inputScript is not null)
        {
            try
            {
                _inputScript.Write(_inputScriptContent!);
            }
            catch (FrameSourceException ex)
            {
                process.Dispose();
                _failure = ex.Message;
                throw;
            }
        }

        try
        {
            process.Start();
        }
        catch (Exception ex) when (ex is Win32Exception or InvalidOperationException)
        {
            _inputScript?.Delete();
            process.Dispose();
            _failure = $"Cannot start ffmpeg '{_options.FfmpegPath}' for {Description}: {ex.Message} (install the Debian package 'ffmpeg').";
            throw new FrameSourceException(_failure, ex);
        }

        _process = process;
        ProcessId = process.Id;
        // ffmpeg never reads stdin (-nostdin); give it EOF rather than the daemon's stdin.
        process.StandardInput.Close();
        process.BeginErrorReadLine();
        _stdout = process.StandardOutput.BaseStream;
        GrowPipe(_stdout, _frameBytes);
        return _stdout;
    }

    /// <summary>
    /// Best effort: enlarge the stdout pipe (64 KiB by default) towards one frame so a frame arrives in
    /// one or few reads (fewer wake-ups and per-read costs). Capped by /proc/sys/fs/pipe-max-size (1 MiB).
    /// </summary>
    private static void GrowPipe(Stream stdout, int frameBytes)
    {
        if (stdout is not System.IO.Pipes.PipeStream pipe)
        {
            return;
        }

        const int SetPipeSize = 1031; // F_SETPIPE_SZ
        var size = Math.Min(Math.Max(frameBytes, 65536), 1 << 20);
        _ = NativeMethods.Fcntl((int)pipe.SafePipeHandle.DangerousGetHandle(), SetPipeSize, size);
    }

    private async ValueTask<Frame?> EndOfOutputAsync(int partialBytes)
    {
        var process = _process!;
        await WaitForExitAsync(process, killFirst: false).ConfigureAwait(false);
        var exitCode = process.ExitCode;
        ExitCode = exitCode;
        ReleaseProcess();
        var reason = Reason();
        if (exitCode == 0 && !_options.IsLive)
        {
            _ended = true;
            LogEnded(_logger, ProcessId ?? 0, Description, _sequence);
            return null;
        }

        LogExited(_logger, ProcessId ?? 0, exitCode, Description, reason);
        var what = exitCode == 0
            ? $"ffmpeg ended the live stream {Description}"
            : $"ffmpeg failed (exit code {exitCode}) reading {Description}";
        var partial = partialBytes > 0 ? $" after {partialBytes} of {_frameBytes} bytes of a frame" : string.Empty;
        _failure = $"{what}{partial}: {reason}";
        throw new FrameSourceException(_failure);
    }

    private async ValueTask StopAsync()
    {
        var process = _process;
        if (process is null)
        {
            return;
        }

        await WaitForExitAsync(process, killFirst: true).ConfigureAwait(false);
        ExitCode ??= process.ExitCode;
        ReleaseProcess();
    }

    private async ValueTask WaitForExitAsync(Process process, bool killFirst)
    {
        if (killFirst)
        {
            Processes.ChildProcess.KillTree(process);
        }

        using (var timeout = new CancellationTokenSource(_options.ExitTimeout, _timeProvider))
        {
            try
            {
                // Also waits for the stderr reader to drain, so Reason() sees ffmpeg's last words.
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException)
            {
                LogExitTimeout(_logger, process.Id, _options.ExitTimeout);
            }
        }

        Processes.ChildProcess.KillTree(process);
        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
    }

    private void ReleaseProcess()
    {
        _inputScript?.Delete();
        var process = _process;
        _process = null;
        _stdout = null;
        if (process is not null)
        {
            process.ErrorDataReceived -= OnStderr;
            process.Dispose();
        }
    }

    private void OnStderr(object sender, DataReceivedEventArgs e)
    {
        if (_stderr.Add(e.Data) is not { } line)
        {
            return;
        }

        LogStderr(_logger, ProcessId ?? 0, line);
    }

    /// <summary>ffmpeg's explanation: its last (up to 3) distinct stderr lines.</summary>
    private string Reason()
    {
        var lines = RecentErrors;
        if (lines.Count == 0)
        {
            return "ffmpeg printed no error";
        }

        return string.Join("; ", lines.Skip(Math.Max(0, lines.Count - 3)).Distinct(StringComparer.Ordinal));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Starting {Source}: {CommandLine}")]
    private static partial void LogStarting(ILogger logger, string source, string commandLine);

    [LoggerMessage(Level = LogLevel.Debug, Message = "ffmpeg[{Pid}]: {Line}")]
    private static partial void LogStderr(ILogger logger, int pid, string line);

    [LoggerMessage(Level = LogLevel.Information, Message = "ffmpeg[{Pid}] reached the end of {Source} after {Frames} frames")]
    private static partial void LogEnded(ILogger logger, int pid, string source, long frames);

    [LoggerMessage(Level = LogLevel.Warning, Message = "ffmpeg[{Pid}] exited with code {ExitCode} for {Source}: {Reason}")]
    private static partial void LogExited(ILogger logger, int pid, int exitCode, string source, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "ffmpeg[{Pid}] did not exit within {Timeout}; killing it")]
    private static partial void LogExitTimeout(ILogger logger, int pid, TimeSpan timeout);

    private static partial class NativeMethods
    {
        [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
        internal static partial int Fcntl(int fd, int command, int argument);
    }
}
