using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Diagnostics;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Publishing;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Protocol;

namespace EdgeRunner.Service.Commands;

/// <summary>
/// The MQTT commands of <c>{prefix}/{device}/cmd/{name}</c> (<c>Mqtt:Commands</c>, docs/mqtt.md "Commands"): subscribes
/// when at least one command is allowed, copies each request off the MQTT receive loop into a bounded queue, and runs
/// them one at a time on its own loop, each bounded by <c>Mqtt:Commands:TimeoutSeconds</c>. Every request is answered
/// on its MQTT 5 response topic with its correlation data (a JSON reply, never retained) and counted by command and
/// outcome; an oversized, unknown, not allowed or malformed one is refused with a reply and changes nothing. A request
/// without a response topic still runs (its outcome is logged and counted).
/// </summary>
internal sealed partial class CommandService : IHostedService, IAsyncDisposable
{
    /// <summary>The schema id of a reply (<c>docs/schemas/replies/command.reply.schema.json</c>).</summary>
    public static readonly JsonEncodedText ReplySchema = JsonEncodedText.Encode("edgerunner.command.reply/1");

    /// <summary>The <c>command</c> tag of a name the daemon does not know (a tag per arbitrary name would let any client grow the metrics without bound).</summary>
    public const string UnknownCommandTag = "unknown";

    // A name in a reply or a log line is cut to this length: it is whatever a client put in the topic.
    private const int MaxNameLength = 64;

    private readonly CommandsOptions _options;
    private readonly MqttTopics _topics;
    private readonly MqttSubscriptionDispatcher _subscriptions;
    private readonly MqttConnection _connection;
    private readonly PayloadOrigin _origin;
    private readonly Dictionary<string, ICommandHandler> _handlers;
    private readonly HashSet<string> _allowed;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<CommandService> _logger;
    private readonly EdgeRunnerMetrics? _metrics;
    private readonly LogRateLimiter _refusalLog;
    private readonly LogRateLimiter _replyFailureLog;
    private readonly Channel<CommandRequest> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<(string Command, string Outcome), long> _counts = new();
    private readonly TimeSpan _publishTimeout;
    private readonly string _commandPrefix;
    private Task _loop = Task.CompletedTask;
    private long _received;
    private long _replies;
    private long _repliesFailed;
    private int _disposed;

    /// <summary>Creates the service over the daemon's MQTT connection and the registered command handlers.</summary>
    public CommandService(
        IOptions<MqttOptions> mqtt,
        MqttTopics topics,
        MqttSubscriptionDispatcher subscriptions,
        MqttConnection connection,
        PayloadOrigin origin,
        IEnumerable<ICommandHandler> handlers,
        TimeProvider timeProvider,
        ILogger<CommandService> logger,
        EdgeRunnerMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(mqtt);
        _options = mqtt.Value.Commands;
        _topics = topics;
        _subscriptions = subscriptions;
        _connection = connection;
        _origin = origin;
        _handlers = handlers.ToDictionary(h => h.Name, StringComparer.Ordinal);
        _allowed = new HashSet<string>(_options.Allow, StringComparer.Ordinal);
        _timeProvider = timeProvider;
        _logger = logger;
        _metrics = metrics;
        _refusalLog = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
        _replyFailureLog = new LogRateLimiter(timeProvider, TimeSpan.FromSeconds(10));
        _publishTimeout = TimeSpan.FromSeconds(mqtt.Value.PublishTimeoutSeconds);
        _commandPrefix = $"{topics.Base}/cmd/";
        _queue = Channel.CreateBounded<CommandRequest>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
    }

    /// <summary>The command topic filter, <c>{prefix}/{device}/cmd/+</c>.</summary>
    public string TopicFilter => _commandPrefix + "+";

    /// <summary>Requests received on the command topics (all outcomes, replies or not).</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Replies handed to the broker.</summary>
    public long Replies => Interlocked.Read(ref _replies);

    /// <summary>Replies that could not be sent (not connected, a response topic MQTT does not allow).</summary>
    public long RepliesFailed => Interlocked.Read(ref _repliesFailed);

    /// <summary>Requests of <paramref name="command"/> (<see cref="UnknownCommandTag"/> for unknown names) that ended as <paramref name="outcome"/>.</summary>
    public long Count(string command, string outcome) => _counts.TryGetValue((command, outcome), out var count) ? count : 0;

    /// <summary>Requests that ended as <paramref name="outcome"/>, all commands.</summary>
    public long CountOutcome(string outcome) => _counts.Where(c => c.Key.Outcome == outcome).Sum(c => c.Value);

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_allowed.Count == 0)
        {
            LogCommandsOff(_logger);
            return Task.CompletedTask;
        }

        _loop = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        _subscriptions.SubscribeMessages(TopicFilter, OnRequest);
        var allowed = string.Join(", ", _allowed.Order(StringComparer.Ordinal));
        LogCommandsOn(_logger, TopicFilter, allowed);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return; // a host that failed may be disposed before it is stopped
        }

        _queue.Writer.TryComplete();
        await _stopping.CancelAsync();
        await _loop.WaitAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _stopping.CancelAsync();
        await _loop;
        _stopping.Dispose();
    }

    /// <summary>On the MQTT receive loop: copies what the request needs and queues it; never blocks, never parses.</summary>
    private void OnRequest(MqttApplicationMessage message)
    {
        Interlocked.Increment(ref _received);
        var name = message.Topic.Length > _commandPrefix.Length ? message.Topic[_commandPrefix.Length..] : string.Empty;
        var length = message.Payload.Length;
        // An oversized payload is not even copied: its length is all the refusal needs.
        var payload = length <= _options.MaxPayloadBytes ? message.Payload.ToArray() : null;
        byte[]? correlation = message.CorrelationData is { } data ? [.. data] : null;
        var request = new CommandRequest(name, payload, length, message.ResponseTopic, correlation);
        if (!_queue.Writer.TryWrite(request))
        {
            Refused(request, "busy", $"{_options.QueueCapacity} commands are waiting already (Mqtt:Commands:QueueCapacity)");
        }
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        try
        {
            await foreach (var request in _queue.Reader.ReadAllAsync(stopping))
            {
                try
                {
                    await HandleAsync(request, stopping);
                }
#pragma warning disable CA1031 // A bug in handling one request (writing its reply, say) must not end the loop that takes every later one.
                catch (Exception ex) when (!stopping.IsCancellationRequested && !MqttConnection.IsFatal(ex))
#pragma warning restore CA1031
                {
                    LogCommandCrashed(_logger, ex, Shorten(request.Name));
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Stopping: what still waits is not run.
        }
    }

    private async Task HandleAsync(CommandRequest request, CancellationToken stopping)
    {
        if (request.Payload is null)
        {
            await RefuseAsync(request, "oversized", $"the payload is {request.Length} bytes; at most {_options.MaxPayloadBytes} are taken (Mqtt:Commands:MaxPayloadBytes)", stopping);
            return;
        }

        if (!_handlers.TryGetValue(request.Name, out var handler))
        {
            await RefuseAsync(request, "unknown", $"unknown command '{Shorten(request.Name)}' (known: {string.Join(", ", CommandNames.All)})", stopping);
            return;
        }

        if (!_allowed.Contains(request.Name))
        {
            await RefuseAsync(request, "not-allowed", $"command '{request.Name}' is not allowed on this device (Mqtt:Commands:Allow)", stopping);
            return;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(request.Payload.Length == 0 ? "{}"u8.ToArray() : request.Payload);
        }
        catch (JsonException ex)
        {
            await RefuseAsync(request, "malformed", $"the payload is not JSON: {ex.Message}", stopping);
            return;
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                await RefuseAsync(request, "malformed", $"the payload must be a JSON object (got {document.RootElement.ValueKind.ToString().ToLowerInvariant()})", stopping);
                return;
            }

            var (outcomeName, outcome) = await ExecuteAsync(handler, document.RootElement, stopping);
            Tally(request.Name, outcomeName);
            if (outcome.Ok)
            {
                LogCommandDone(_logger, request.Name, request.ResponseTopic ?? "-");
            }
            else if (_refusalLog.TryAcquire(out var suppressed))
            {
                LogCommandFailed(_logger, request.Name, outcomeName, outcome.Error ?? "-", suppressed);
            }

            await ReplyAsync(request, outcomeName, outcome, stopping);
        }
    }

    /// <summary>Runs the handler, bounded by the command timeout; a handler that ignores its token is no longer waited for.</summary>
    private async Task<(string Outcome, CommandOutcome Result)> ExecuteAsync(ICommandHandler handler, JsonElement arguments, CancellationToken stopping)
    {
        var timeout = TimeSpan.FromSeconds(_options.TimeoutSeconds);
        using var timer = new CancellationTokenSource(timeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping, timer.Token);
        try
        {
            var result = await handler.ExecuteAsync(arguments, linked.Token).WaitAsync(linked.Token);
            return (result.Ok ? "ok" : "failed", result);
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !stopping.IsCancellationRequested)
        {
            return ("timeout", CommandOutcome.Failed($"did not finish within {timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s (Mqtt:Commands:TimeoutSeconds)"));
        }
        catch (OperationCanceledException ex) when (!stopping.IsCancellationRequested)
        {
            // Cancelled by something of its own (not the timeout, not the daemon stopping): answered like any failure.
            return ("failed", CommandOutcome.Failed($"was cancelled ({ex.Message})"));
        }
#pragma warning disable CA1031 // A command's bug is answered and logged; it must not end the command loop.
        catch (Exception ex) when (ex is not OperationCanceledException && !MqttConnection.IsFatal(ex))
#pragma warning restore CA1031
        {
            LogCommandCrashed(_logger, ex, handler.Name);
            return ("failed", CommandOutcome.Failed($"failed unexpectedly ({ex.GetType().Name}: {ex.Message})"));
        }
    }

    private Task RefuseAsync(CommandRequest request, string outcome, string error, CancellationToken stopping)
    {
        Refused(request, outcome, error);
        return ReplyAsync(request, outcome, CommandOutcome.Failed(error), stopping);
    }

    private void Refused(CommandRequest request, string outcome, string error)
    {
        Tally(request.Name, outcome);
        if (_refusalLog.TryAcquire(out var suppressed))
        {
            LogCommandRefused(_logger, Shorten(request.Name), outcome, error, request.ResponseTopic ?? "-", suppressed);
        }
    }

    private void Tally(string name, string outcome)
    {
        var command = _handlers.ContainsKey(name) ? name : UnknownCommandTag;
        _counts.AddOrUpdate((command, outcome), 1, static (_, count) => count + 1);
        _metrics?.RecordCommand(command, outcome);
    }

    /// <summary>Publishes the reply on the request's response topic (QoS 0, not retained) with its correlation data; nothing without a response topic.</summary>
    private async Task ReplyAsync(CommandRequest request, string outcomeName, CommandOutcome outcome, CancellationToken stopping)
    {
        if (string.IsNullOrEmpty(request.ResponseTopic))
        {
            return;
        }

        if (MqttTopicRules.Problem(request.ResponseTopic, out _) is { } problem)
        {
            ReplyFailed(request, $"the response topic is not a topic MQTT allows: {problem}");
            return;
        }

        var builder = new MqttApplicationMessageBuilder()
            .WithTopic(request.ResponseTopic)
            .WithPayload(WriteReply(request, outcomeName, outcome))
            .WithContentType("application/json")
            // QoS 0: a reply must not take a slot of the broker's receive maximum that the result pipeline fills.
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtMostOnce)
            .WithRetainFlag(false);
        if (request.CorrelationData is { } correlation)
        {
            builder.WithCorrelationData(correlation);
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            timeout.CancelAfter(_publishTimeout);
            await _connection.Client.PublishAsync(builder.Build(), timeout.Token);
            Interlocked.Increment(ref _replies);
        }
#pragma warning disable CA1031 // Not connected, broker gone, timed out: the reply is lost, the command's effect stays; logged.
        catch (Exception ex) when (!MqttConnection.IsFatal(ex) && !stopping.IsCancellationRequested)
#pragma warning restore CA1031
        {
            ReplyFailed(request, ex.Message);
        }
    }

    private void ReplyFailed(CommandRequest request, string reason)
    {
        Interlocked.Increment(ref _repliesFailed);
        if (_replyFailureLog.TryAcquire(out var suppressed))
        {
            LogReplyFailed(_logger, Shorten(request.Name), request.ResponseTopic ?? "-", reason, suppressed);
        }
    }

    private byte[] WriteReply(CommandRequest request, string outcomeName, CommandOutcome outcome)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            _origin.WriteHeader(writer, ReplySchema);
            writer.WriteString("command", Shorten(request.Name));
            writer.WriteBoolean("ok", outcome.Ok);
            writer.WriteString("outcome", outcomeName);
            if (outcome.Error is { } error)
            {
                writer.WriteString("error", error);
            }

            writer.WriteString("timestamp", _timeProvider.GetUtcNow());
            foreach (var (key, value) in outcome.Details ?? [])
            {
                // The fields above are the reply's own; a handler adds beside them.
                if (key is not ("schema" or "device" or "boot_id" or "command" or "ok" or "outcome" or "error" or "timestamp"))
                {
                    writer.WritePropertyName(key);
                    if (value is null)
                    {
                        writer.WriteNullValue();
                    }
                    else
                    {
                        value.WriteTo(writer);
                    }
                }
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static string Shorten(string name) => name.Length <= MaxNameLength ? name : name[..MaxNameLength] + "…";

    private sealed record CommandRequest(string Name, byte[]? Payload, long Length, string? ResponseTopic, byte[]? CorrelationData);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT commands are off (Mqtt:Commands:Allow is empty)")]
    private static partial void LogCommandsOff(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT commands on {TopicFilter}: {Allowed}")]
    private static partial void LogCommandsOn(ILogger logger, string topicFilter, string allowed);

    [LoggerMessage(Level = LogLevel.Information, Message = "Command {Command} done (reply to {ResponseTopic})")]
    private static partial void LogCommandDone(ILogger logger, string command, string responseTopic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Command {Command} {Outcome}: {Error} ({Suppressed} refusals and failures not logged since the last line)")]
    private static partial void LogCommandFailed(ILogger logger, string command, string outcome, string error, long suppressed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Command '{Command}' refused ({Outcome}): {Error}; reply to {ResponseTopic} ({Suppressed} refusals and failures not logged since the last line)")]
    private static partial void LogCommandRefused(ILogger logger, string command, string outcome, string error, string responseTopic, long suppressed);

    [LoggerMessage(Level = LogLevel.Error, Message = "Command {Command} failed unexpectedly; the command loop goes on")]
    private static partial void LogCommandCrashed(ILogger logger, Exception exception, string command);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reply to command '{Command}' on {ResponseTopic} not sent: {Reason} ({Suppressed} not logged since the last line)")]
    private static partial void LogReplyFailed(ILogger logger, string command, string responseTopic, string reason, long suppressed);
}
