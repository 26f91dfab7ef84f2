using EdgeRunner.Models.Inference;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.UnitTests;

/// <summary>ONNX Runtime's messages into an <see cref="ILogger"/>: one line per message template, repeats counted, escape codes gone.</summary>
public sealed class OnnxRuntimeLogTests
{
    private const string Location = "graph.cc:1440 onnxruntime::Graph::Graph";
    private static readonly OrtLoggingLevel Warning = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING;

    [Fact]
    public void Repeats_of_one_code_location_are_logged_once_then_as_a_count_on_flush()
    {
        var logger = new ListLogger();
        var log = new OnnxRuntimeMessageLog(logger, new FakeTimeProvider());

        for (var i = 0; i < 244; i++)
        {
            log.Write(Warning, Location, $"\u001b[1;33mInitializer w{i} appears in graph inputs and will not be treated as constant value/weight.\u001b[m");
        }

        log.Write(Warning, "other.cc:1 f", "Something else");
        log.Flush();
        log.Flush();

        Assert.Equal(
            [
                "Warning ONNX Runtime graph.cc:1440 onnxruntime::Graph::Graph: Initializer w0 appears in graph inputs and will not be treated as constant value/weight.",
                "Warning ONNX Runtime other.cc:1 f: Something else",
                "Warning ONNX Runtime graph.cc:1440 onnxruntime::Graph::Graph: repeated 243 more times since first logged (last: \"Initializer w243 appears in graph inputs and will not be treated as constant value/weight.\")",
            ],
            logger.Lines);
    }

    [Fact]
    public void A_message_that_keeps_repeating_is_counted_at_most_once_a_minute()
    {
        var logger = new ListLogger();
        var time = new FakeTimeProvider();
        var log = new OnnxRuntimeMessageLog(logger, time);

        log.Write(Warning, Location, "first");
        log.Write(Warning, Location, "second");
        time.Advance(TimeSpan.FromSeconds(59));
        log.Write(Warning, Location, "third");
        Assert.Single(logger.Lines);

        time.Advance(TimeSpan.FromSeconds(1));
        log.Write(Warning, Location, "fourth");

        Assert.Equal(2, logger.Lines.Count);
        Assert.EndsWith("repeated 3 more times since first logged (last: \"fourth\")", logger.Lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Severities_map_to_log_levels_and_info_is_debug()
    {
        Assert.Equal(LogLevel.Trace, OnnxRuntimeMessageLog.Level(OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE));
        Assert.Equal(LogLevel.Debug, OnnxRuntimeMessageLog.Level(OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO));
        Assert.Equal(LogLevel.Warning, OnnxRuntimeMessageLog.Level(Warning));
        Assert.Equal(LogLevel.Error, OnnxRuntimeMessageLog.Level(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR));
        Assert.Equal(LogLevel.Critical, OnnxRuntimeMessageLog.Level(OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL));

        // Below the logger's level nothing is kept, not even for counting.
        var logger = new ListLogger();
        var log = new OnnxRuntimeMessageLog(logger, new FakeTimeProvider());
        log.Write(OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO, Location, "chatty");
        log.Flush();
        Assert.Empty(logger.Lines);
    }

    [Fact]
    public void Escape_sequences_and_control_characters_are_removed()
    {
        Assert.Equal("warn: text\tx", OnnxRuntimeMessageLog.Clean("\u001b[0;93mwarn:\u001b[m text\tx\r\n"));
        Assert.Equal("ab", OnnxRuntimeMessageLog.Clean("a\u001b(b\u0007"));
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add($"{logLevel} {formatter(state, exception)}");
    }
}
