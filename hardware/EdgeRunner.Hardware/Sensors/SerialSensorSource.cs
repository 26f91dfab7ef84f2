using System.Globalization;
using System.IO.Ports;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>How a <see cref="SerialSensorSource"/> reads its port.</summary>
public sealed record SerialSourceOptions
{
    /// <summary>The serial device, e.g. <c>/dev/ttyUSB0</c>, <c>/dev/ttyACM0</c>, <c>/dev/serial/by-id/…</c>.</summary>
    public required string Port { get; init; }

    /// <summary>Line speed (8 data bits, no parity, one stop bit, no flow control).</summary>
    public int BaudRate { get; init; } = 115200;

    /// <summary>
    /// The values to read, in channel order. Delimited lines: zero-based field indices ("0", "1", …) or
    /// names from a header line the device prints (a line of names only); JSON lines: field names.
    /// </summary>
    public required IReadOnlyList<string> Columns { get; init; }

    /// <summary>Field holding each sample's time (seconds as a number, or an ISO 8601 date-time); empty: samples are timed by their arrival.</summary>
    public string TimestampField { get; init; } = string.Empty;

    /// <summary>The device's nominal samples per second (the stream is resampled from it to the model's rate).</summary>
    public required double SampleRateHz { get; init; }

    /// <summary>First delay before reopening a port that went away; doubles per failed attempt up to <see cref="ReconnectMaxDelay"/>, each wait up to 20 % shorter at random (<see cref="Supervision.Backoff"/>).</summary>
    public TimeSpan ReconnectMinDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest delay between reopening attempts.</summary>
    public TimeSpan ReconnectMaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest line accepted (bytes); a longer one is skipped as malformed.</summary>
    public int MaxLineLength { get; init; } = 4096;
}

/// <summary>
/// A device on a serial line (an Arduino, an ESP32, a USB sensor) that prints one sample per line:
/// numbers separated by commas, semicolons, tabs or spaces, or a JSON object with named fields. Lines
/// that cannot be parsed are skipped, counted and logged (rate-limited); a port that goes away (USB
/// unplugged, <see cref="IOException"/>) is reopened with backoff, logged, without ending the stream;
/// since the read then blocks instead of failing, the loss is told through
/// <see cref="AvailabilityChanged"/> (unavailable with the reason when the port goes away, available
/// at the first sample after it is back).
/// </summary>
/// <remarks>
/// <para>
/// The port is opened with <see cref="SerialPort"/> (System.IO.Ports; it works on Linux ttys and on
/// pseudo-terminals, which is how it is tested). DTR and RTS are raised after opening, best effort: many
/// USB CDC devices only send while DTR is up, and a pseudo-terminal has no modem lines (the ioctl fails
/// with ENOTTY), which is ignored.
/// </para>
/// <para>
/// The first line after each opening is dropped without being counted: the port may have been opened in
/// the middle of a line, and a cut number ("23.4" of "123.4") would parse as a wrong value. A missing
/// port or one that cannot be opened the first time is a <see cref="SensorSourceException"/> naming it;
/// after the stream has worked once, failures are retried. A block ends early at a reconnect or a
/// device-clock jump, so the next block's <see cref="SensorBlock.FirstSampleTime"/> shows the gap.
/// Lines are parsed by the shared <see cref="SampleLineParser"/> from a reused byte buffer (UTF-8/ASCII)
/// without per-line allocation. A JSON
/// <c>null</c> value reads as NaN, for the stream's invalid-sample policy. Not thread-safe.
/// </para>
/// </remarks>
public sealed partial class SerialSensorSource : ISensorSource, IDeviceAvailability
{
    private static readonly TimeSpan MalformedLogInterval = TimeSpan.FromSeconds(60);
    private readonly SerialSourceOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly string[] _channels;
    private readonly SampleLineParser _parser;
    private readonly byte[] _buffer;
    private int _start;
    private int _end;
    private bool _skippingLongLine;
    private bool _skipFirstLine;
    private SerialPort? _port;
    private Stream? _stream;
    private int _failedOpens;
    private int _backoffStep;
    private bool _disconnected;
    private bool _reportedLost;
    private long _sampleIndex;
    private bool _anchored;
    private DateTimeOffset _anchorTime;
    private long _anchorTicks;
    private long _lastTicks;
    private DateTimeOffset _lineArrival;
    private long _lastMalformedLog;
    private bool _disposed;

    /// <summary>Checks the options and that the port exists; the port is opened on the first read.</summary>
    /// <exception cref="SensorSourceException">The port does not exist, or an option cannot work (the message names it).</exception>
    public SerialSensorSource(SerialSourceOptions options, TimeProvider timeProvider, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
        if (string.IsNullOrWhiteSpace(options.Port))
        {
            throw new SensorSourceException("Serial: no port given (e.g. /dev/ttyUSB0).");
        }

        if (options.Columns.Count is 0 or > 64)
        {
            throw new SensorSourceException($"Serial port '{options.Port}': select 1 to 64 columns (got {options.Columns.Count}).");
        }

        if (!(options.SampleRateHz > 0) || double.IsInfinity(options.SampleRateHz))
        {
            throw new SensorSourceException($"Serial port '{options.Port}': give the device's sample rate (got {options.SampleRateHz}).");
        }

        if (options.BaudRate <= 0 || options.MaxLineLength < 16)
        {
            throw new SensorSourceException($"Serial port '{options.Port}': baud rate must be positive and lines at least 16 bytes long.");
        }

        if (!File.Exists(options.Port))
        {
            throw new SensorSourceException($"Serial port '{options.Port}' does not exist (is the device plugged in? see 'ls /dev/serial/by-id/').");
        }

        _channels = [.. options.Columns];
        _parser = new SampleLineParser(options.Columns, options.TimestampField);
        _buffer = new byte[options.MaxLineLength * 2];
        Description = $"serial {options.Port} at {options.BaudRate} baud ({string.Join(", ", _channels)}) at {options.SampleRateHz.ToString("0.###", CultureInfo.InvariantCulture)} Hz";
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Channels => _channels;

    /// <inheritdoc />
    public double SampleRateHz => _options.SampleRateHz;

    /// <summary>Lines skipped because they could not be parsed (the first line after each opening is not counted).</summary>
    public long MalformedLines { get; private set; }

    /// <summary>How many times the port was opened (1 = never reconnected).</summary>
    public int Connections { get; private set; }

    /// <summary>How many times the port went away while open.</summary>
    public int Disconnects { get; private set; }

    /// <inheritdoc />
    public event EventHandler<DeviceAvailabilityChangedEventArgs>? AvailabilityChanged;

    /// <inheritdoc />
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var channels = _channels.Length;
        var capacity = destination.Length / channels;
        if (capacity == 0)
        {
            // Zero samples would read as "the source has ended".
            throw new ArgumentException($"The buffer must hold at least one sample ({channels} values).", nameof(destination));
        }

        var firstIndex = _sampleIndex;
        var firstTime = default(DateTimeOffset);
        var written = 0;
        while (written < capacity)
        {
            if (!TryTakeLine(out var lineStart, out var lineLength))
            {
                if (!await FillAsync(cancellationToken).ConfigureAwait(false) && written > 0)
                {
                    // The port went away mid-block: hand out what arrived; the next block starts after the gap.
                    break;
                }

                continue;
            }

            var line = _buffer.AsSpan(lineStart, lineLength);
            if (_skipFirstLine)
            {
                _skipFirstLine = false;
                continue;
            }

            var values = destination.Span.Slice(written * channels, channels);
            var kind = _parser.TryParseLine(line, values, out var ticks, out _);
            if (kind == SampleLineKind.Header)
            {
                HeaderSeen(line);
                continue;
            }

            if (kind == SampleLineKind.Malformed)
            {
                CountMalformed(line);
                continue;
            }

            DateTimeOffset time;
            if (!_parser.HasTimestampField)
            {
                time = _lineArrival;
            }
            else
            {
                if (!_anchored || ticks < _lastTicks)
                {
                    if (written > 0)
                    {
                        // The block ends before the discontinuity; this line starts the next one.
                        _start = lineStart;
                        break;
                    }

                    if (_anchored)
                    {
                        LogClockJump(_logger, _options.Port, (double)_lastTicks / TimeSpan.TicksPerSecond, (double)ticks / TimeSpan.TicksPerSecond);
                    }

                    // The device clock (re)starts: tie it to the arrival time of this line.
                    _anchored = true;
                    _anchorTime = _lineArrival;
                    _anchorTicks = ticks;
                }

                _lastTicks = ticks;
                time = _anchorTime + TimeSpan.FromTicks(ticks - _anchorTicks);
            }

            if (written == 0)
            {
                firstTime = time;
            }

            written++;
            _sampleIndex++;
            // Data flows again: the next disconnect starts from the shortest delay.
            _backoffStep = 0;
            if (_reportedLost)
            {
                // Available only once a sample has arrived: a port that opens and hangs up again is not back.
                _reportedLost = false;
                AvailabilityChanged?.Invoke(this, new DeviceAvailabilityChangedEventArgs(true, "reading"));
            }
        }

        return new SensorBlock(written, firstTime, firstIndex);
    }

    /// <summary>Closes the port.</summary>
    public ValueTask DisposeAsync()
    {
        _disposed = true;
        ClosePort();
        return ValueTask.CompletedTask;
    }

    /// <summary>Finds the next complete line in the buffer (without its CR/LF); advances past it.</summary>
    private bool TryTakeLine(out int lineStart, out int lineLength)
    {
        while (true)
        {
            var newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (newline < 0)
            {
                lineStart = lineLength = 0;
                return false;
            }

            lineStart = _start;
            lineLength = newline;
            _start += newline + 1;
            if (_skippingLongLine)
            {
                // The tail of a line that was too long: already counted.
                _skippingLongLine = false;
                continue;
            }

            if (lineLength > 0 && _buffer[lineStart + lineLength - 1] == (byte)'\r')
            {
                lineLength--;
            }

            if (_buffer.AsSpan(lineStart, lineLength).Trim((byte)' ').IsEmpty)
            {
                continue;
            }

            return true;
        }
    }

    /// <summary>Reads more bytes from the port, opening or reopening it as needed. Returns false when the port went away.</summary>
    private async ValueTask<bool> FillAsync(CancellationToken cancellationToken)
    {
        if (_disconnected || _stream is null)
        {
            await OpenAsync(cancellationToken).ConfigureAwait(false);
        }

        if (_start > 0)
        {
            // Keep the unfinished line at the front.
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            // No newline within MaxLineLength * 2 bytes: drop the line, skip to its end.
            CountMalformed(_buffer.AsSpan(0, 64));
            _end = 0;
            _skippingLongLine = true;
        }

        int read;
        try
        {
            read = await _stream!.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!_disposed && ex is IOException or ObjectDisposedException or InvalidOperationException or UnauthorizedAccessException)
        {
            // System.IO.Ports on Linux closes its stream itself when the tty hangs up (ObjectDisposedException).
            Disconnected(ex.Message);
            return false;
        }

        if (read == 0)
        {
            Disconnected("end of stream");
            return false;
        }

        _lineArrival = _timeProvider.GetUtcNow();
        _end += read;
        return true;
    }

    private void Disconnected(string reason)
    {
        Disconnects++;
        _disconnected = true;
        LogDisconnected(_logger, _options.Port, reason);
        ClosePort();
        _start = _end = 0;
        _skippingLongLine = false;
        // Device timestamps after a reconnect may restart (the device may have been reset).
        _anchored = false;
        if (!_reportedLost)
        {
            // The read now waits for the port to come back instead of failing, so nothing else would tell.
            _reportedLost = true;
            AvailabilityChanged?.Invoke(this, new DeviceAvailabilityChangedEventArgs(false, $"Serial port '{_options.Port}' went away ({reason}); reopening"));
        }
    }

    private async ValueTask OpenAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_disconnected)
            {
                // Backoff also when opening succeeds but the port fails again before any sample: no hot loop.
                _backoffStep++;
                // Up to 20 % shorter at random, as every reconnecting source: adapters on one hub that vanish together do not retry in lockstep.
                var delay = Supervision.Backoff.Exponential(_options.ReconnectMinDelay, _options.ReconnectMaxDelay, _backoffStep, jitter: 0.2, sample: Random.Shared.NextDouble());
                await Task.Delay(delay, _timeProvider, cancellationToken).ConfigureAwait(false);
            }

            try
            {
                if (!File.Exists(_options.Port))
                {
                    throw new FileNotFoundException("the device is not there");
                }

                var port = new SerialPort(_options.Port, _options.BaudRate, Parity.None, 8, StopBits.One)
                {
                    Handshake = Handshake.None,
                    ReadBufferSize = Math.Max(4096, _options.MaxLineLength),
                };
                try
                {
                    port.Open();
                }
                catch
                {
                    port.Dispose();
                    throw;
                }

                RaiseModemLines(port);
                _port = port;
                _stream = port.BaseStream;
                _start = _end = 0;
                _skipFirstLine = true;
                _disconnected = false;
                _failedOpens = 0;
                Connections++;
                if (Connections > 1)
                {
                    LogReconnected(_logger, _options.Port, Connections - 1);
                }
                else
                {
                    LogOpened(_logger, Description);
                }

                return;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException)
            {
                if (Connections == 0)
                {
                    // Never opened: a configuration or permission problem, said plainly.
                    var hint = ex is UnauthorizedAccessException ? " (add the daemon's user to the 'dialout' group)" : string.Empty;
                    throw new SensorSourceException($"Serial port '{_options.Port}' cannot be opened: {ex.Message}{hint}", ex);
                }

                _failedOpens++;
                LogReopenFailed(_logger, _options.Port, ex.Message, _failedOpens);
                _disconnected = true;
            }
        }
    }

    private static void RaiseModemLines(SerialPort port)
    {
        try
        {
            port.DtrEnable = true;
            port.RtsEnable = true;
        }
        catch (IOException)
        {
            // A pseudo-terminal (or a bare UART) has no modem control lines.
        }
    }

    private void ClosePort()
    {
        var port = _port;
        _port = null;
        _stream = null;
        if (port is not null)
        {
            try
            {
                port.Dispose();
            }
            catch (IOException)
            {
                // The device is already gone.
            }
        }
    }

    private void HeaderSeen(ReadOnlySpan<byte> line)
    {
        var header = Encoding.UTF8.GetString(line);
        LogHeader(_logger, _options.Port, header);
    }

    private void CountMalformed(ReadOnlySpan<byte> line)
    {
        MalformedLines++;
        var now = _timeProvider.GetTimestamp();
        if (MalformedLines <= 10 || _timeProvider.GetElapsedTime(_lastMalformedLog, now) >= MalformedLogInterval)
        {
            // The first ten, then one a minute with the running count: a babbling device must not flood the journal.
            _lastMalformedLog = now;
            var shown = Encoding.UTF8.GetString(line[..Math.Min(line.Length, 80)]);
            LogMalformed(_logger, _options.Port, shown, MalformedLines);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Opened {Source}")]
    private static partial void LogOpened(ILogger logger, string source);

    [LoggerMessage(Level = LogLevel.Information, Message = "Serial {Port}: header '{Header}'")]
    private static partial void LogHeader(ILogger logger, string port, string header);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Serial {Port}: cannot parse '{Line}'; skipped ({Count} so far)")]
    private static partial void LogMalformed(ILogger logger, string port, string line, long count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Serial {Port} went away ({Reason}); reopening with backoff")]
    private static partial void LogDisconnected(ILogger logger, string port, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Serial {Port}: reopening failed ({Reason}), attempt {Attempt}")]
    private static partial void LogReopenFailed(ILogger logger, string port, string reason, int attempt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Serial {Port} reopened (reconnect {Reconnects})")]
    private static partial void LogReconnected(ILogger logger, string port, int reconnects);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Serial {Port}: device clock went from {Previous} s to {Current} s; timestamps re-anchored")]
    private static partial void LogClockJump(ILogger logger, string port, double previous, double current);
}
