using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.Models.Inference;

/// <summary>
/// ONNX Runtime's own log, routed into the host's <see cref="ILogger"/> (category <c>OnnxRuntime</c>) instead of
/// its default sink, which writes coloured lines straight to stderr: loading one UltraFace model printed 244
/// "Initializer … appears in graph inputs" warnings with escape codes into the journal. The process-wide ONNX
/// Runtime environment is created once, with a logging function, by <see cref="EnsureEnvironment"/> (every
/// EdgeRunner path to ONNX Runtime calls it first). Messages are de-duplicated by their code location (one
/// message template of ONNX Runtime's, whatever names it carries): the first is logged in full, the repeats
/// are counted and summarised by <see cref="Flush"/> (after each model load) or, while they go on, at most
/// once a minute as "repeated N more times". Escape codes are stripped from what is logged.
/// </summary>
public static class OnnxRuntimeLog
{
    /// <summary>The logger category ONNX Runtime's messages are logged under.</summary>
    public const string Category = "OnnxRuntime";

    private static readonly Lock Gate = new();

    // Held here as well as by OrtEnv: the native side calls it for the life of the process.
    private static readonly DOrtLoggingFunction Callback = OnMessage;
    // Until a host attaches its logging (command-line tools that load models without one): plain lines on stderr,
    // warnings and worse, still de-duplicated and without ONNX Runtime's colours.
    private static OnnxRuntimeMessageLog _sink = new(new StderrLogger(), TimeProvider.System);
    private static bool _environmentChecked;

    /// <summary>Whether ONNX Runtime's log goes through this bridge (false when something created its environment first).</summary>
    public static bool Routed { get; private set; }

    /// <summary>
    /// Sends ONNX Runtime's messages to <paramref name="loggerFactory"/> from now on (call at start-up, before models
    /// load); <paramref name="timeProvider"/> times the repeat summaries. Does not itself create the environment, so a
    /// chosen ONNX Runtime library (<see cref="OnnxRuntimeLibrary.Use"/>) can still be installed afterwards.
    /// </summary>
    public static void Attach(ILoggerFactory loggerFactory, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var sink = new OnnxRuntimeMessageLog(loggerFactory.CreateLogger(Category), timeProvider ?? TimeProvider.System);
        lock (Gate)
        {
            _sink = sink;
        }
    }

    /// <summary>
    /// Creates ONNX Runtime's process-wide environment with this bridge as its logging function, unless it exists
    /// already (then <see cref="Routed"/> stays false and ONNX Runtime keeps its own sink). Idempotent; call before
    /// the first <see cref="OrtEnv.Instance"/>, <see cref="SessionOptions"/> or <see cref="InferenceSession"/>.
    /// </summary>
    public static void EnsureEnvironment()
    {
        lock (Gate)
        {
            if (_environmentChecked)
            {
                return;
            }

            _environmentChecked = true;
            if (OrtEnv.IsCreated)
            {
                return;
            }

            var options = new EnvironmentCreationOptions
            {
                logId = "edgerunner",
                logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
                loggingFunction = Callback,
            };
            OrtEnv.CreateInstanceWithOptions(ref options);
            Routed = true;
        }
    }

    /// <summary>Logs the count of every message repeated since it was last logged or summarised (e.g. after a model load).</summary>
    public static void Flush()
    {
        OnnxRuntimeMessageLog sink;
        lock (Gate)
        {
            sink = _sink;
        }

        sink.Flush();
    }

    private static void OnMessage(IntPtr param, OrtLoggingLevel severity, string category, string logId, string codeLocation, string message)
    {
        OnnxRuntimeMessageLog sink;
        lock (Gate)
        {
            sink = _sink;
        }

        try
        {
            sink.Write(severity, codeLocation, message);
        }
#pragma warning disable CA1031 // Called from native code: an exception here (a logger disposed with its host, a full disk) would take the process down.
        catch (Exception)
#pragma warning restore CA1031
        {
            // The message is lost; ONNX Runtime goes on.
        }
    }
}

/// <summary>
/// The de-duplicating half of <see cref="OnnxRuntimeLog"/>: ONNX Runtime's messages into one <see cref="ILogger"/>,
/// the first of each code location in full, its repeats counted and summarised by <see cref="Flush"/> or, while
/// they go on, at most once every <see cref="SummaryInterval"/>. Thread-safe (ONNX Runtime logs from any thread).
/// </summary>
internal sealed partial class OnnxRuntimeMessageLog(ILogger logger, TimeProvider time)
{
    /// <summary>While one message keeps repeating, its count is logged at most this often.</summary>
    public static readonly TimeSpan SummaryInterval = TimeSpan.FromMinutes(1);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Repeats> _seen = new(StringComparer.Ordinal);

    /// <summary>ONNX Runtime severities to log levels: its INFO is chatty internals, so it is Debug here.</summary>
    public static LogLevel Level(OrtLoggingLevel severity) => severity switch
    {
        OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE => LogLevel.Trace,
        OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO => LogLevel.Debug,
        OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING => LogLevel.Warning,
        OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR => LogLevel.Error,
        _ => LogLevel.Critical,
    };

    /// <summary>The text without terminal escape sequences (ESC [ … letter) or other control characters but tab.</summary>
    public static string Clean(string text)
    {
        var result = new System.Text.StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\u001b')
            {
                // CSI: ESC [ parameters final-letter; any other escape: drop the ESC and the next character.
                if (i + 1 < text.Length && text[i + 1] == '[')
                {
                    i += 2;
                    while (i < text.Length && !char.IsAsciiLetter(text[i]))
                    {
                        i++;
                    }
                }
                else
                {
                    i++;
                }

                continue;
            }

            if (!char.IsControl(c) || c == '\t')
            {
                result.Append(c);
            }
        }

        return result.ToString().Trim();
    }

    /// <summary>One message: logged when its code location is new, else counted (and summarised when the interval has passed).</summary>
    public void Write(OrtLoggingLevel severity, string? codeLocation, string? message)
    {
        var level = Level(severity);
        if (!logger.IsEnabled(level))
        {
            return;
        }

        var text = Clean(message ?? string.Empty);
        var location = Clean(codeLocation ?? string.Empty);
        var key = $"{(int)level}|{(location.Length > 0 ? location : text)}";
        lock (_gate)
        {
            var now = time.GetTimestamp();
            if (!_seen.TryGetValue(key, out var repeats))
            {
                _seen[key] = new Repeats(level, location, now);
                LogMessage(logger, level, location, text);
                return;
            }

            repeats.Pending++;
            repeats.Last = text;
            if (time.GetElapsedTime(repeats.SummarisedAt, now) >= SummaryInterval)
            {
                Summarise(repeats);
            }
        }
    }

    /// <summary>Logs the count of every message repeated since it was last logged or summarised.</summary>
    public void Flush()
    {
        lock (_gate)
        {
            foreach (var repeats in _seen.Values)
            {
                Summarise(repeats);
            }
        }
    }

    private void Summarise(Repeats repeats)
    {
        if (repeats.Pending == 0)
        {
            return;
        }

        LogRepeated(logger, repeats.Level, repeats.Location, repeats.Pending, repeats.Last);
        repeats.Pending = 0;
        repeats.SummarisedAt = time.GetTimestamp();
    }

    // The code location names the message template; ONNX Runtime's log id (a session's, usually empty) is left out.
    [LoggerMessage(Message = "ONNX Runtime {CodeLocation}: {OrtMessage}")]
    private static partial void LogMessage(ILogger logger, LogLevel level, string codeLocation, string ortMessage);

    [LoggerMessage(Message = "ONNX Runtime {CodeLocation}: repeated {Count} more times since first logged (last: \"{LastMessage}\")")]
    private static partial void LogRepeated(ILogger logger, LogLevel level, string codeLocation, long count, string lastMessage);

    private sealed class Repeats(LogLevel level, string location, long loggedAt)
    {
        public LogLevel Level { get; } = level;

        public string Location { get; } = location;

        public string Last { get; set; } = string.Empty;

        public long Pending { get; set; }

        public long SummarisedAt { get; set; } = loggedAt;
    }
}

/// <summary>The <see cref="OnnxRuntimeLog"/> sink before a host attaches one: "onnxruntime warning: …" lines on stderr, Warning and above.</summary>
internal sealed class StderrLogger : ILogger
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning && logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        if (IsEnabled(logLevel))
        {
            var level = logLevel switch
            {
                LogLevel.Warning => "warning",
                LogLevel.Error => "error",
                _ => "critical",
            };
            Console.Error.WriteLine($"onnxruntime {level}: {formatter(state, exception)}");
        }
    }
}
