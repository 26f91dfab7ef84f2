using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>Where an <see cref="AudioSensorSource"/> takes its sound from.</summary>
public enum AudioInputKind
{
    /// <summary>An audio file (WAV or anything ffmpeg decodes), replayed.</summary>
    File,

    /// <summary>A live ALSA capture device (<c>hw:1,0</c>, <c>plughw:1,0</c>, <c>default</c>).</summary>
    Alsa,
}

/// <summary>The program that captures live ALSA audio.</summary>
public enum AudioCaptureBackend
{
    /// <summary><c>ffmpeg -f alsa</c> (Debian package ffmpeg).</summary>
    Ffmpeg,

    /// <summary><c>arecord</c> (Debian package alsa-utils); ALSA capture only.</summary>
    Arecord,
}

/// <summary>How an <see cref="AudioSensorSource"/> captures or replays.</summary>
public sealed record AudioSourceOptions
{
    /// <summary>File or live device.</summary>
    public required AudioInputKind Kind { get; init; }

    /// <summary>The file path (<see cref="AudioInputKind.File"/>) or ALSA device name (<see cref="AudioInputKind.Alsa"/>).</summary>
    public required string Input { get; init; }

    /// <summary>Live capture program; files are always decoded by ffmpeg.</summary>
    public AudioCaptureBackend Backend { get; init; } = AudioCaptureBackend.Ffmpeg;

    /// <summary>Samples per second per channel delivered (ffmpeg resamples a file to it; ALSA is asked for it).</summary>
    public int SampleRateHz { get; init; } = 16000;

    /// <summary>Channels delivered (ffmpeg downmixes or upmixes to it; ALSA is asked for it).</summary>
    public int Channels { get; init; } = 1;

    /// <summary>File: replay speed, 1 = real time, 10 = ten times faster, 0 = as fast as read.</summary>
    public double Speed { get; init; } = 1;

    /// <summary>File: start again after the end.</summary>
    public bool Loop { get; init; }

    /// <summary>The ffmpeg executable.</summary>
    public string FfmpegPath { get; init; } = "ffmpeg";

    /// <summary>The arecord executable.</summary>
    public string ArecordPath { get; init; } = "arecord";

    /// <summary>Live: first delay before restarting a capture that died; doubles per failure up to <see cref="RestartMaxDelay"/>, each wait up to 20 % shorter at random (<see cref="Supervision.Backoff"/>).</summary>
    public TimeSpan RestartMinDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Live: longest delay between restarts.</summary>
    public TimeSpan RestartMaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a stopped capture process may take to exit before it is killed.</summary>
    public TimeSpan ExitTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>stderr lines kept to explain a failure.</summary>
    public int StderrLines { get; init; } = 20;
}

/// <summary>
/// PCM audio as a float stream in [-1, 1) (signed 16-bit samples / 32768, channel-interleaved): a file
/// decoded, resampled and down/upmixed by ffmpeg and replayed at real time or faster (optionally
/// looped, resumable at a sample), or live ALSA capture through ffmpeg or arecord.
/// </summary>
/// <remarks>
/// <para>
/// Why signed 16-bit on the pipe rather than f32le: PCM16 is what microphones and WAV files hold, so
/// for a PCM16 file at the configured rate and channel count ffmpeg passes the samples through untouched
/// and every float delivered is exactly the file's sample / 32768 (a power of two: the division is
/// exact). Models such as silero-vad were evaluated on exactly those values; f32le would round-trip
/// the same numbers at twice the pipe bandwidth.
/// </para>
/// <para>
/// A file is paced here, not with ffmpeg's <c>-re</c> (which knows only 1×): ffmpeg decodes ahead until
/// the pipe is full, and each block is handed out when its last sample would have been recorded at
/// <see cref="AudioSourceOptions.Speed"/>. Looping restarts ffmpeg at the end of a pass (so sample
/// indices stay exact from pass to pass); a seek skips decoded samples, exact for every format.
/// </para>
/// <para>
/// Live capture that fails before delivering any audio (no such device, busy, unsupported rate) throws
/// <see cref="SensorSourceException"/> with the program's own words. Once it has delivered audio, a
/// capture that dies (USB microphone unplugged) is logged with its stderr and restarted with backoff;
/// the block after the gap carries its real time, so the stream sees the gap. Since the read then
/// waits instead of failing, the loss is told through <see cref="AvailabilityChanged"/> (unavailable
/// with the program's last words when it dies, available when audio flows again). Reads reuse one byte
/// buffer: no allocation per read. Not thread-safe: one reader at a time.
/// </para>
/// </remarks>
public sealed partial class AudioSensorSource : IResumableSensorSource, IDeviceAvailability
{
    private const float Scale = 1f / 32768f;
    private readonly AudioSourceOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly string[] _channels;
    private readonly int _frameBytes;
    private readonly string _executable;
    private readonly List<string> _arguments;
    private byte[] _bytes = [];
    private float[]? _seekScratch;
    private int _carryBytes;
    private PcmCaptureProcess? _process;
    private long _sampleIndex;
    private long _passSamples;
    private long _passLength = -1;
    private long _replayStartTimestamp;
    private long _replayStartIndex;
    private DateTimeOffset _startTime;
    private bool _deliveredAny;
    private bool _ended;
    private string? _failure;
    private bool _disposed;
    private int _restarts;
    private int _failuresInARow;
    private bool _reportedLost;

    /// <summary>Checks the options; the capture program starts on the first read.</summary>
    /// <exception cref="SensorSourceException">The file does not exist, or an option cannot work (message names it).</exception>
    public AudioSensorSource(AudioSourceOptions options, TimeProvider timeProvider, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
        if (string.IsNullOrWhiteSpace(options.Input))
        {
            throw new SensorSourceException(options.Kind == AudioInputKind.File ? "Audio file: no path given." : "ALSA capture: no device given (e.g. hw:1,0).");
        }

        if (options.SampleRateHz is < 1 or > 1_000_000)
        {
            throw new SensorSourceException($"Audio {options.Input}: sample rate must be 1..1000000 Hz (got {options.SampleRateHz}).");
        }

        if (options.Channels is < 1 or > 64)
        {
            throw new SensorSourceException($"Audio {options.Input}: channels must be 1..64 (got {options.Channels}).");
        }

        if (!(options.Speed >= 0) || double.IsInfinity(options.Speed))
        {
            throw new SensorSourceException($"Audio {options.Input}: speed must be 0 or more (got {options.Speed}).");
        }

        if (options.Kind == AudioInputKind.File)
        {
            if (options.Backend != AudioCaptureBackend.Ffmpeg)
            {
                throw new SensorSourceException($"Audio file '{options.Input}': files are decoded by ffmpeg; backend {options.Backend} captures ALSA devices only.");
            }

            if (!File.Exists(options.Input))
            {
                throw new SensorSourceException($"Audio file '{options.Input}' does not exist.");
            }
        }

        _channels = options.Channels == 1 ? ["audio"] : [.. Enumerable.Range(0, options.Channels).Select(c => string.Create(CultureInfo.InvariantCulture, $"audio{c}"))];
        _frameBytes = options.Channels * sizeof(short);
        (_executable, _arguments) = BuildCommandLine(options);
        CommandLine = string.Join(' ', _arguments.Prepend(_executable).Select(a => a.Contains(' ', StringComparison.Ordinal) || a.Length == 0 ? $"'{a}'" : a));
        Description = options.Kind == AudioInputKind.File
            ? $"audio file {options.Input} as {options.SampleRateHz} Hz × {options.Channels} ch, speed {options.Speed.ToString(CultureInfo.InvariantCulture)}{(options.Loop ? ", loop" : string.Empty)}"
            : $"ALSA {options.Input} via {options.Backend.ToString().ToLowerInvariant()} at {options.SampleRateHz} Hz × {options.Channels} ch";
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <summary>The capture command line (for logs and diagnostics).</summary>
    public string CommandLine { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Channels => _channels;

    /// <inheritdoc />
    public double SampleRateHz => _options.SampleRateHz;

    /// <inheritdoc />
    public event EventHandler<DeviceAvailabilityChangedEventArgs>? AvailabilityChanged;

    /// <summary>Live: how many times the capture was restarted after it died.</summary>
    public int Restarts => _restarts;

    /// <summary>Process id of the running capture program; null when none runs.</summary>
    public int? ProcessId => _process?.Id;

    /// <summary>The running capture program's last stderr lines, oldest first (empty when none runs).</summary>
    public IReadOnlyList<string> RecentErrors => _process?.RecentErrors ?? [];

    /// <inheritdoc />
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_replayStartTimestamp == 0)
        {
            // The replay clock starts when the stream is first read (or first read after a seek).
            _replayStartTimestamp = _timeProvider.GetTimestamp();
            _startTime = _timeProvider.GetUtcNow();
            _replayStartIndex = _sampleIndex;
        }

        var firstIndex = _sampleIndex;
        var written = await ReadSamplesAsync(destination, cancellationToken).ConfigureAwait(false);
        if (written == 0)
        {
            return new SensorBlock(0, _startTime + SamplesToTime(firstIndex - _replayStartIndex), firstIndex);
        }

        if (_options.Kind == AudioInputKind.Alsa)
        {
            // Live: the block's last sample was captured just now (a restart may have left a gap before it).
            var now = _timeProvider.GetUtcNow();
            return new SensorBlock(written, now - SamplesToTime(written), firstIndex);
        }

        if (_options.Speed > 0)
        {
            // Deliver the block when its last sample would have been recorded, at the replay speed.
            var due = (_sampleIndex - _replayStartIndex) / SampleRateHz / _options.Speed;
            var elapsed = _timeProvider.GetElapsedTime(_replayStartTimestamp).TotalSeconds;
            if (due > elapsed)
            {
                await Task.Delay(TimeSpan.FromSeconds(due - elapsed), _timeProvider, cancellationToken).ConfigureAwait(false);
            }
        }

        return new SensorBlock(written, _startTime + SamplesToTime(firstIndex - _replayStartIndex), firstIndex);
    }

    /// <inheritdoc />
    /// <remarks>Decodes and drops samples up to the position (exact for any format; decoding runs far faster than real time).</remarks>
    public async ValueTask SeekAsync(long sampleIndex, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_options.Kind != AudioInputKind.File)
        {
            // A live microphone simply goes on.
            return;
        }

        _seekScratch ??= new float[_options.Channels * 4096];
        while (_sampleIndex < sampleIndex && !_ended)
        {
            var want = (int)Math.Min(_seekScratch.Length / _options.Channels, sampleIndex - _sampleIndex);
            if (_passLength > 0)
            {
                if (_passSamples == _passLength)
                {
                    // This pass is read to its last sample (ffmpeg's exit not seen yet): the next starts afresh.
                    await StopAsync().ConfigureAwait(false);
                    _passSamples = 0;
                }

                if (_passSamples == 0 && sampleIndex - _sampleIndex >= _passLength)
                {
                    // At the start of a pass of known length: whole passes need no decoding.
                    _sampleIndex += (sampleIndex - _sampleIndex) / _passLength * _passLength;
                    continue;
                }

                // Stop at the pass end so that whole passes after it can be skipped.
                want = (int)Math.Min(want, _passLength - _passSamples);
            }

            if (await ReadSamplesAsync(_seekScratch.AsMemory(0, want * _options.Channels), cancellationToken).ConfigureAwait(false) == 0)
            {
                break;
            }
        }

        _replayStartTimestamp = 0;
    }

    /// <summary>Kills the capture program (with any children) if it runs, and waits for it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await StopAsync().ConfigureAwait(false);
    }

    private TimeSpan SamplesToTime(long samples) => TimeSpan.FromSeconds(samples / SampleRateHz);

    /// <summary>Fills <paramref name="destination"/> with whole samples (fewer only at the end of a file or before a live gap).</summary>
    private async ValueTask<int> ReadSamplesAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        if (_failure is not null)
        {
            throw new SensorSourceException(_failure);
        }

        var channels = _options.Channels;
        var capacity = destination.Length / channels;
        if (capacity == 0)
        {
            // Zero samples would read as "the source has ended".
            throw new ArgumentException($"The buffer must hold at least one sample ({channels} values).", nameof(destination));
        }

        var capacityBytes = capacity * _frameBytes;
        if (_bytes.Length < capacityBytes)
        {
            // Grows only when the caller's buffer does: the steady state reuses it.
            var bigger = new byte[capacityBytes];
            _bytes.AsSpan(0, _carryBytes).CopyTo(bigger);
            _bytes = bigger;
        }

        var written = 0;
        while (written < capacity && !_ended)
        {
            var process = _process ?? await StartAsync(cancellationToken).ConfigureAwait(false);
            var wantBytes = (capacity - written) * _frameBytes;
            int read;
            try
            {
                read = await process.Output.ReadAsync(_bytes.AsMemory(_carryBytes, wantBytes - _carryBytes), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // A live capture simply starts again on the next read. A file would start again at its
                // beginning while the sample index says otherwise: that source is of no further use.
                await StopAsync().ConfigureAwait(false);
                if (_options.Kind == AudioInputKind.File)
                {
                    _failure = $"A read of {Description} was cancelled; the source must be recreated.";
                }

                throw;
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                await StopAsync().ConfigureAwait(false);
                _failure = $"Reading the capture of {Description} failed: {ex.Message}";
                throw new SensorSourceException(_failure, ex);
            }

            if (read == 0)
            {
                var gap = await EndOfOutputAsync(cancellationToken).ConfigureAwait(false);
                if (gap && written > 0)
                {
                    // Live capture restarted: end the block here so the next one carries the time after the gap.
                    break;
                }

                continue;
            }

            var total = _carryBytes + read;
            var samples = total / _frameBytes;
            Convert(_bytes.AsSpan(0, samples * _frameBytes), destination.Span.Slice(written * channels, samples * channels));
            _carryBytes = total - (samples * _frameBytes);
            if (_carryBytes > 0)
            {
                // A partial sample: keep its bytes at the front for the next read.
                _bytes.AsSpan(samples * _frameBytes, _carryBytes).CopyTo(_bytes);
            }

            written += samples;
            _sampleIndex += samples;
            _passSamples += samples;
            if (samples > 0)
            {
                _deliveredAny = true;
                // Audio flows again: the next failure starts from the shortest delay.
                _failuresInARow = 0;
                if (_reportedLost)
                {
                    _reportedLost = false;
                    AvailabilityChanged?.Invoke(this, new DeviceAvailabilityChangedEventArgs(true, "reading"));
                }
            }
        }

        return written;
    }

    /// <summary>Signed 16-bit little-endian PCM to floats in [-1, 1): s / 32768, exact.</summary>
    internal static void Convert(ReadOnlySpan<byte> pcm, Span<float> destination)
    {
        var samples = MemoryMarshal.Cast<byte, short>(pcm);
        if (BitConverter.IsLittleEndian)
        {
            for (var i = 0; i < samples.Length; i++)
            {
                destination[i] = samples[i] * Scale;
            }
        }
        else
        {
            for (var i = 0; i < samples.Length; i++)
            {
                destination[i] = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(samples[i]) * Scale;
            }
        }
    }

    private ValueTask<PcmCaptureProcess> StartAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(_disposed, this);
        LogStarting(_logger, Description, CommandLine);
        var hint = _options.Kind == AudioInputKind.Alsa && _options.Backend == AudioCaptureBackend.Arecord
            ? "install the Debian package 'alsa-utils'"
            : "install the Debian package 'ffmpeg'";
        try
        {
            _process = PcmCaptureProcess.Start(_executable, _arguments, hint, _options.StderrLines, _options.ExitTimeout, _logger);
        }
        catch (SensorSourceException ex)
        {
            _failure = $"{Description}: {ex.Message}";
            throw new SensorSourceException(_failure, ex);
        }

        _carryBytes = 0;
        _passSamples = 0;
        return ValueTask.FromResult(_process);
    }

    /// <summary>
    /// The capture's output ended: the end of a file (loop or end), a decoding failure, or a live capture
    /// that died (fail on the first start, restart with backoff later). Returns true when samples were
    /// lost (a live restart), so the block in progress must end.
    /// </summary>
    private async ValueTask<bool> EndOfOutputAsync(CancellationToken cancellationToken)
    {
        var process = _process!;
        var exitCode = await process.WaitForExitAsync().ConfigureAwait(false);
        var reason = process.Reason();
        _process = null;
        if (_options.Kind == AudioInputKind.File)
        {
            if (exitCode != 0)
            {
                _failure = $"ffmpeg failed (exit code {exitCode}) decoding audio file '{_options.Input}': {reason}";
                LogFailed(_logger, process.Id, exitCode, Description, reason);
                throw new SensorSourceException(_failure);
            }

            var pass = _passSamples;
            _passSamples = 0;
            if (pass > 0)
            {
                _passLength = pass;
            }

            if (_options.Loop && pass > 0)
            {
                LogLooping(_logger, Description, pass);
                return false;
            }

            _ended = true;
            LogEnded(_logger, Description, _sampleIndex);
            return false;
        }

        if (!_deliveredAny)
        {
            // Never worked: a wrong or missing device is a configuration problem, said plainly.
            _failure = $"ALSA capture device '{_options.Input}' could not be opened by {_options.Backend.ToString().ToLowerInvariant()} (exit code {exitCode}): {reason}"
                + (Directory.Exists("/dev/snd") ? string.Empty : " (this machine has no /dev/snd: no ALSA sound devices)");
            LogFailed(_logger, process.Id, exitCode, Description, reason);
            throw new SensorSourceException(_failure);
        }

        // It had worked: the device went away or the program crashed. Keep trying, as a camera does.
        _restarts++;
        // Up to 20 % shorter at random, as every reconnecting source: captures that die together do not restart in lockstep.
        var delay = Supervision.Backoff.Exponential(_options.RestartMinDelay, _options.RestartMaxDelay, _failuresInARow + 1, jitter: 0.2, sample: Random.Shared.NextDouble());
        _failuresInARow++;
        LogRestarting(_logger, process.Id, exitCode, Description, reason, delay, _restarts);
        if (!_reportedLost)
        {
            // The read now waits and restarts the capture instead of failing, so nothing else would tell.
            _reportedLost = true;
            AvailabilityChanged?.Invoke(this, new DeviceAvailabilityChangedEventArgs(false, $"{Description}: capture exited with code {exitCode}: {reason}; restarting"));
        }

        await Task.Delay(delay, _timeProvider, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private async ValueTask StopAsync()
    {
        var process = _process;
        _process = null;
        _carryBytes = 0;
        if (process is not null)
        {
            await process.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static (string Executable, List<string> Arguments) BuildCommandLine(AudioSourceOptions options)
    {
        var rate = options.SampleRateHz.ToString(CultureInfo.InvariantCulture);
        var channels = options.Channels.ToString(CultureInfo.InvariantCulture);
        if (options.Kind == AudioInputKind.Alsa && options.Backend == AudioCaptureBackend.Arecord)
        {
            // Raw little-endian PCM16 on stdout, the same bytes ffmpeg would write.
            return (options.ArecordPath, ["-q", "-D", options.Input, "-t", "raw", "-f", "S16_LE", "-r", rate, "-c", channels]);
        }

        var args = new List<string> { "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error" };
        if (options.Kind == AudioInputKind.Alsa)
        {
            // Ask the device for the wanted format (a plughw: device converts when the hardware cannot);
            // flush every packet so a block is not held back by ffmpeg's output buffer.
            args.AddRange(["-f", "alsa", "-sample_rate", rate, "-channels", channels, "-i", options.Input, "-flush_packets", "1"]);
        }
        else
        {
            args.AddRange(["-i", options.Input]);
        }

        args.AddRange(["-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", channels, "-ar", rate, "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1"]);
        return (options.FfmpegPath, args);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Starting {Source}: {CommandLine}")]
    private static partial void LogStarting(ILogger logger, string source, string commandLine);

    [LoggerMessage(Level = LogLevel.Information, Message = "Reached the end of {Source} after {Samples} samples")]
    private static partial void LogEnded(ILogger logger, string source, long samples);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Source}: pass of {Samples} samples done; looping")]
    private static partial void LogLooping(ILogger logger, string source, long samples);

    [LoggerMessage(Level = LogLevel.Error, Message = "capture[{Pid}] exited with code {ExitCode} for {Source}: {Reason}")]
    private static partial void LogFailed(ILogger logger, int pid, int exitCode, string source, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "capture[{Pid}] exited with code {ExitCode} for {Source}: {Reason}; restarting in {Delay} (restart {Restarts})")]
    private static partial void LogRestarting(ILogger logger, int pid, int exitCode, string source, string reason, TimeSpan delay, int restarts);
}
