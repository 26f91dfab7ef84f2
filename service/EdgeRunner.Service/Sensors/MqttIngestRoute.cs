using System.Security.Cryptography;
using System.Text;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Logging;

namespace EdgeRunner.Service.Sensors;

/// <summary>MQTT topic filters: checks and wildcard matching with the matched levels.</summary>
internal static class MqttTopicFilter
{
    /// <summary>Why <paramref name="filter"/> is not a usable subscription filter, or null when it is.</summary>
    public static string? Problem(string filter)
    {
        if (string.IsNullOrWhiteSpace(filter))
        {
            return "is required for Kind Mqtt (a topic filter such as plant/+/vibration)";
        }

        if (filter.StartsWith('$'))
        {
            return $"must not start with '$' (broker-internal topics; got '{filter}')";
        }

        var levels = filter.Split('/');
        for (var i = 0; i < levels.Length; i++)
        {
            var level = levels[i];
            if (level.Length > 1 && level.AsSpan().IndexOfAny("+#") >= 0)
            {
                return $"a wildcard must be a whole level (got '{filter}')";
            }

            if (level == "#" && i != levels.Length - 1)
            {
                return $"'#' must be the last level (got '{filter}')";
            }
        }

        return null;
    }

    /// <summary>True when the filter has a '+' or '#' level.</summary>
    public static bool HasWildcard(string filter) => filter.AsSpan().IndexOfAny("+#") >= 0;

    /// <summary>
    /// Matches <paramref name="topic"/> against <paramref name="filter"/> and returns the topic levels the
    /// wildcards matched, joined by '/' (<c>plant/+/vib/#</c> on <c>plant/m1/vib/x/y</c> gives <c>m1/x/y</c>).
    /// </summary>
    public static bool TryMatch(string filter, string topic, out string matchedLevels)
    {
        matchedLevels = string.Empty;
        var filterLevels = filter.Split('/');
        var topicLevels = topic.Split('/');
        var matched = new List<string>(2);
        for (var i = 0; i < filterLevels.Length; i++)
        {
            if (filterLevels[i] == "#")
            {
                matched.AddRange(topicLevels.Skip(i));
                matchedLevels = string.Join('/', matched);
                return true;
            }

            if (i >= topicLevels.Length)
            {
                return false;
            }

            if (filterLevels[i] == "+")
            {
                matched.Add(topicLevels[i]);
            }
            else if (!string.Equals(filterLevels[i], topicLevels[i], StringComparison.Ordinal))
            {
                return false;
            }
        }

        if (topicLevels.Length != filterLevels.Length)
        {
            return false;
        }

        matchedLevels = string.Join('/', matched);
        return true;
    }
}

/// <summary>Checks of the <c>Sensors:{id}:Source</c> keys of Kind Mqtt.</summary>
internal static class MqttIngestValidation
{
    /// <summary>Adds one error per bad key under <paramref name="key"/> (<c>Sensors:{id}:Source</c>).</summary>
    public static void Validate(string key, Sources.MqttSensorOptions source, ValidationErrors e)
    {
        if (MqttTopicFilter.Problem(source.Topic) is { } problem)
        {
            e.Add($"{key}:Topic", problem);
        }

        e.Range($"{key}:QueueCapacity", source.QueueCapacity, 1, 1_000_000);
        e.Range($"{key}:MaxPayloadBytes", source.MaxPayloadBytes, 16, 64 * 1024 * 1024);
        e.Range($"{key}:MaxStreams", source.MaxStreams, 1, 100_000);
        e.Range($"{key}:IdleTimeoutSeconds", source.IdleTimeoutSeconds, 0, 1e7);
        if (source.Format == MqttPayloadFormat.Numbers && source.Columns is { Length: > 0 })
        {
            e.Add($"{key}:Columns", "names JSON fields; plain-number payloads are always in the model's channel order");
        }

        if (source.Format == MqttPayloadFormat.Numbers && !string.IsNullOrEmpty(source.TimestampField))
        {
            e.Add($"{key}:TimestampField", "is a JSON field; plain-number payloads carry no timestamp");
        }

        if (source.Columns?.FirstOrDefault(string.IsNullOrWhiteSpace) is not null)
        {
            e.Add($"{key}:Columns", "field names must not be empty");
        }
    }
}

/// <summary>
/// The stream id part taken from the topic levels a wildcard matched. Those levels come from whoever
/// publishes, and the id names the stream's result topics and its checkpoint file: levels that are short
/// (at most <see cref="MaxLength"/> characters) and made of safe characters (ASCII letters and digits,
/// <c>- _ . : @</c>, and '/' between non-empty levels other than <c>.</c> and <c>..</c>) are used as they are;
/// any others map to a stable short id: the first <see cref="PrefixLength"/> characters with each unsafe one
/// made '_', then '~' and 12 hex digits of the SHA-256 of the levels (UTF-8). '~' is never a safe character, so
/// a mapped id never equals the id of other levels used as they are.
/// </summary>
internal static class IngestStreamId
{
    /// <summary>Longest matched levels used as they are.</summary>
    public const int MaxLength = 64;

    /// <summary>Readable characters kept in a mapped id.</summary>
    public const int PrefixLength = 40;

    /// <summary>The id part for <paramref name="levels"/>; <paramref name="mapped"/> says whether it differs from them.</summary>
    public static string For(string levels, out bool mapped)
    {
        ArgumentNullException.ThrowIfNull(levels);
        mapped = !IsSafe(levels);
        if (!mapped)
        {
            return levels;
        }

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(levels), hash);
        var prefix = levels.Length <= PrefixLength ? levels : levels[..PrefixLength];
        var readable = string.Create(prefix.Length, prefix, static (span, source) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = IsSafeChar(source[i]) ? source[i] : '_';
            }
        });
        return $"{readable}~{Convert.ToHexStringLower(hash[..6])}";
    }

    /// <summary>Whether <paramref name="levels"/> is used as it is.</summary>
    public static bool IsSafe(string levels)
    {
        if (levels.Length > MaxLength)
        {
            return false;
        }

        foreach (var level in levels.Split('/'))
        {
            if (level.Length == 0 || level is "." or ".." || !level.All(IsSafeChar))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsSafeChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '@';
}

/// <summary>
/// One <c>Sensors:{id}</c> entry of Kind Mqtt: its filter, how its payloads are read, how topics map to
/// stream ids, its cap, and its counters. A filter without wildcards is one stream named <c>{id}</c>;
/// with wildcards each matching topic is a stream named <c>{id}/{matched levels}</c>, the levels mapped to
/// a short safe id when they are long or unusual (<see cref="IngestStreamId"/>).
/// </summary>
internal sealed partial class MqttIngestRoute
{
    private const int RememberedRejections = 10_000;
    private readonly HashSet<string> _rejectedStreams = new(StringComparer.Ordinal);
    private readonly HashSet<string> _failedStreams = new(StringComparer.Ordinal);
    private readonly LogRateLimiter _malformedLog;
    private readonly LogRateLimiter _mappedLog;
    private readonly ILogger _logger;
    private long _malformedPayloads;
    private long _oversizedPayloads;
    private long _mappedIds;
    private long _streamsRejected;
    private long _messagesRejected;
    private long _streamsFailed;

    public MqttIngestRoute(string configId, SensorStreamOptions options, IReadOnlyList<string> channels, double modelRateHz, TimeProvider timeProvider, ILogger logger)
    {
        ConfigId = configId;
        Options = options;
        var ingest = IngestOf(options);
        Filter = ingest.Topic;
        IsWildcard = MqttTopicFilter.HasWildcard(Filter);
        var columns = ingest.Columns ?? [];
        if (columns.Length != 0 && columns.Length != channels.Count)
        {
            throw new StartupException(
                $"Sensors:{configId}:Source:Columns: {columns.Length} fields for a model with {channels.Count} channels ({string.Join(", ", channels)})",
                StartupException.ConfigError);
        }

        Channels = columns.Length == channels.Count ? columns : channels;
        SampleRateHz = ingest.SampleRateHz > 0 ? ingest.SampleRateHz : modelRateHz;
        Parser = new MqttPayloadParser(channels.Count, ingest.Format, columns, ingest.TimestampField, ingest.MaxPayloadBytes);
        _logger = logger;
        _malformedLog = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
        _mappedLog = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
        FailureLog = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
    }

    public string ConfigId { get; }

    public SensorStreamOptions Options { get; }

    /// <summary>The entry's <c>Source</c> section, of Kind Mqtt.</summary>
    public Sources.MqttSensorOptions Ingest => IngestOf(Options);

    /// <summary>The <c>Source</c> section of an entry of Kind Mqtt.</summary>
    public static Sources.MqttSensorOptions IngestOf(SensorStreamOptions options) => (Sources.MqttSensorOptions)options.Source;

    public string Filter { get; }

    /// <summary>True: one stream per matching topic, created on its first message, evicted when idle, capped.</summary>
    public bool IsWildcard { get; }

    public IReadOnlyList<string> Channels { get; }

    public double SampleRateHz { get; }

    public MqttPayloadParser Parser { get; }

    /// <summary>Streams of this route now active (guarded by the service's ingest lock).</summary>
    public int ActiveStreams { get; set; }

    /// <summary>Payloads that could not be read (the oversized ones included).</summary>
    public long MalformedPayloads => Interlocked.Read(ref _malformedPayloads);

    /// <summary>Payloads refused for being larger than <c>Source:MaxPayloadBytes</c>.</summary>
    public long OversizedPayloads => Interlocked.Read(ref _oversizedPayloads);

    /// <summary>Topics whose matched levels were mapped to a short id (<see cref="IngestStreamId"/>), each time one was looked up.</summary>
    public long MappedIds => Interlocked.Read(ref _mappedIds);

    /// <summary>Distinct new streams refused because <c>MaxStreams</c> streams were active.</summary>
    public long StreamsRejected => Interlocked.Read(ref _streamsRejected);

    /// <summary>Messages dropped because their stream was refused.</summary>
    public long MessagesRejected => Interlocked.Read(ref _messagesRejected);

    /// <summary>Streams of this route that could not be created (each is retried by the topic's next message).</summary>
    public long StreamsFailed => Interlocked.Read(ref _streamsFailed);

    /// <summary>Limits the log lines of failed stream creations (each message of a failing topic tries again).</summary>
    public LogRateLimiter FailureLog { get; }

    /// <summary>Counts a stream that could not be created; true the first time this stream fails (publish the event then).</summary>
    public bool StreamFailed(string streamId, out long count)
    {
        count = Interlocked.Increment(ref _streamsFailed);
        lock (_failedStreams)
        {
            if (_failedStreams.Count >= RememberedRejections)
            {
                _failedStreams.Clear();
            }

            return _failedStreams.Add(streamId);
        }
    }

    /// <summary>A stream was created: if it fails again later, that is news again.</summary>
    public void Created(string streamId)
    {
        lock (_failedStreams)
        {
            _failedStreams.Remove(streamId);
        }
    }

    /// <summary>The stream a topic belongs to; false when the topic does not match (overlapping subscriptions).</summary>
    public bool TryGetStreamId(string topic, out string streamId)
    {
        if (!IsWildcard)
        {
            streamId = ConfigId;
            return string.Equals(topic, Filter, StringComparison.Ordinal);
        }

        if (!MqttTopicFilter.TryMatch(Filter, topic, out var levels))
        {
            streamId = string.Empty;
            return false;
        }

        if (levels.Length == 0)
        {
            streamId = ConfigId;
            return true;
        }

        var id = IngestStreamId.For(levels, out var mapped);
        streamId = $"{ConfigId}/{id}";
        if (mapped)
        {
            var count = Interlocked.Increment(ref _mappedIds);
            if (_mappedLog.TryAcquire(out var suppressed))
            {
                var printable = Printable(topic);
                LogMapped(_logger, ConfigId, printable, topic.Length, streamId, count, suppressed);
            }
        }

        return true;
    }

    /// <summary>A topic for a log line: long ones (up to 64k characters) shortened.</summary>
    public static string Printable(string topic) => topic.Length <= 200 ? topic : $"{topic[..160]}...({topic.Length} characters)";

    /// <summary>Counts and (rate-limited) logs a payload that could not be read.</summary>
    public void RejectMalformed(string topic, string reason)
    {
        var count = Interlocked.Increment(ref _malformedPayloads);
        if (reason.StartsWith(MqttPayloadParser.TooLargePrefix, StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _oversizedPayloads);
        }

        if (_malformedLog.TryAcquire(out var suppressed))
        {
            var printable = Printable(topic);
            LogMalformed(_logger, ConfigId, printable, reason, count, suppressed);
        }
    }

    /// <summary>Counts a message of a refused stream; true the first time this stream is refused (log and publish the event then).</summary>
    public bool RejectOverCap(string streamId)
    {
        Interlocked.Increment(ref _messagesRejected);
        lock (_rejectedStreams)
        {
            if (_rejectedStreams.Count >= RememberedRejections)
            {
                // Bounded memory under a flood of topics: forget, at worst an event is published again.
                _rejectedStreams.Clear();
            }

            if (!_rejectedStreams.Add(streamId))
            {
                return false;
            }
        }

        Interlocked.Increment(ref _streamsRejected);
        return true;
    }

    /// <summary>A stream got a slot: if it is refused again later, that is news again.</summary>
    public void Admitted(string streamId)
    {
        lock (_rejectedStreams)
        {
            _rejectedStreams.Remove(streamId);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor {ConfigId}: malformed payload on {Topic} rejected: {Reason} ({Count} rejected so far, {Suppressed} not logged since the last line)")]
    private static partial void LogMalformed(ILogger logger, string configId, string topic, string reason, long count, long suppressed);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sensor {ConfigId}: topic {Topic} ({TopicLength} characters) is too long or unusual for a stream id, so it is stream {StreamId} ({Count} such topics so far, {Suppressed} not logged since the last line)")]
    private static partial void LogMapped(ILogger logger, string configId, string topic, int topicLength, string streamId, long count, long suppressed);
}

/// <summary>At most one log line per interval; counts what it held back.</summary>
internal sealed class LogRateLimiter(TimeProvider timeProvider, TimeSpan interval)
{
    private readonly Lock _lock = new();
    private long _last;
    private bool _any;
    private long _suppressed;

    public bool TryAcquire(out long suppressed)
    {
        lock (_lock)
        {
            var now = timeProvider.GetTimestamp();
            if (!_any || timeProvider.GetElapsedTime(_last, now) >= interval)
            {
                _any = true;
                _last = now;
                suppressed = _suppressed;
                _suppressed = 0;
                return true;
            }

            _suppressed++;
            suppressed = 0;
            return false;
        }
    }
}
