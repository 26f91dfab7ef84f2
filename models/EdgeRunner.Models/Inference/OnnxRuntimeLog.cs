using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.Models.Inference;

/// <summary>
/// ONNX Runtime's own log, routed into the host's <see cref="ILogger"/> (category <c>OnnxRuntime</c>) instead of
/// its default sink, which writes coloured lines straight to stderr: loading one UltraFace model printed 244
/// "Initializer … appears in graph inputs" warnings with escape codes into the journal. The process-wide ONNX
/// Runtime environment is created once, with a logging function, by <see cref="EnsureEnvironment"/> (every
/// EdgeRunner path to ONNX Runtime calls it first). Messages are de-duplicated by their code location (one
/// message template of ONNX Runtime's, whatever names it carries): the first is logged in full, the repeats
/// are counted and summarised by <see cref="Flush"/> (after each model load) or, while they go on, once every
/// <see cref="SummaryInterval"/> as "repeated N more times". Escape codes are stripped from what is logged.
/// </summary>
public static partial class OnnxRuntimeLog
{
    /// <summary>The logger category ONNX Runtime's messages are logged under.</summary>
    public const string Category = "OnnxRuntime";

    /// <summary>While one message keeps repeating, its count is logged at most this often.</summary>
    public static readonly TimeSpan SummaryInterval = TimeSpan.FromMinutes(1);

    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, Repeats> Seen = new(StringComparer.Ordinal);

    // Held here as well as by OrtEnv: the native side calls it for the life of the process.
    private static readonly DOrtLoggingFunction Callback = OnMessage;
    private static ILogger _logger = NullLogger.Instance;
    private static TimeProvider _time = TimeProvider.System;
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
        lock (Gate)
        {
            _logger = loggerFactory.CreateLogger(Category);
            _time = timeProvider ?? TimeProvider.System;
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
        lock (Gate)
        {
            foreach (var repeats in Seen.Values)
            {
                Summarise(repeats);
            }
        }
    }

    /// <summary>Forgets the messages seen, so the next of each is logged in full again (tests).</summary>
    internal static void Reset()
    {
        lock (Gate)
        {
            Seen.Clear();
        }
    }

    /// <summary>The message without terminal escape sequences (ESC [ … letter) or other control characters but tab.</summary>
    internal static string Clean(string text)
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

    /// <summary>ONNX Runtime severities to log levels: its INFO is chatty internals, so it is Debug here.</summary>
    internal static LogLevel Level(OrtLoggingLevel severity) => severity switch
    {
        OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE => LogLevel.Trace,
        OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO => LogLevel.Debug,
        OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING => LogLevel.Warning,
        OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR => LogLevel.Error,
        _ => LogLevel.Critical,
    };

    /// <summary>One message from ONNX Runtime (any thread).</summary>
    internal static void OnMessage(IntPtr param, OrtLoggingLevel severity, string category, string logId, string codeLocation, string message)
    {
        var level = Level(severity);
        var text = Clean(message ?? string.Empty);
        var location = Clean(codeLocation ?? string.Empty);
        var key = $"{(int)level}|{(location.Length > 0 ? location : text)}";
        lock (Gate)
        {
            if (!_logger.IsEnabled(level))
            {
                return;
            }

            var now = _time.GetTimestamp();
            if (!Seen.TryGetValue(key, out var repeats))
            {
                Seen[key] = new Repeats(level, text, now);
                var id = Clean(logId ?? string.Empty);
                LogMessage(_logger, level, id, location, text);
                return;
            }

            repeats.Pending++;
            repeats.Last = text;
            if (_time.GetElapsedTime(repeats.SummarisedAt, now) >= SummaryInterval)
            {
                Summarise(repeats);
            }
        }
    }

    private static void Summarise(Repeats repeats)
    {
        if (repeats.Pending == 0)
        {
            return;
        }

        LogRepeated(_logger, repeats.Level, repeats.First, repeats.Pending, repeats.Last);
        repeats.Pending = 0;
        repeats.SummarisedAt = _time.GetTimestamp();
    }

    [LoggerMessage(Message = "ONNX Runtime [{LogId}] {CodeLocation}: {OrtMessage}")]
    private static partial void LogMessage(ILogger logger, LogLevel level, string logId, string codeLocation, string ortMessage);

    [LoggerMessage(Message = "ONNX Runtime: \"{FirstMessage}\" repeated {Count} more times (last: \"{LastMessage}\")")]
    private static partial void LogRepeated(ILogger logger, LogLevel level, string firstMessage, long count, string lastMessage);

    private sealed class Repeats(LogLevel level, string first, long loggedAt)
    {
        public LogLevel Level { get; } = level;

        public string First { get; } = first;

        public string Last { get; set; } = first;

        public long Pending { get; set; }

        public long SummarisedAt { get; set; } = loggedAt;
    }
}
