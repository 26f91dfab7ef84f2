using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Formatter;

namespace EdgeRunner.Service.Cli;

/// <summary>
/// <c>edgerunner status</c>: asks the broker in the configuration for the running daemon's retained
/// availability, camera/stream states and last health message (<c>{prefix}/{device}/health</c>) and prints them.
/// Connects with its own client id (never the daemon's), so it cannot disturb the daemon's session, over TLS
/// when the daemon does (<c>Mqtt:Tls:*</c>, the same files and checks). Exit 0 when the daemon is online,
/// 3 when it is offline or has never published (LSB "program is not running"), 69 when no broker answers.
/// </summary>
internal static class StatusCommand
{
    /// <summary>LSB init-script status code: program is not running.</summary>
    public const int NotRunning = 3;

    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(3);

    public static Command Create(Option<FileInfo?> configOption)
    {
        var command = new Command("status", "Read the running daemon's retained status and camera/stream states from the broker in the configuration and print them. Exit 0 online, 3 offline or absent, 69 when no broker answers.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(configOption)?.FullName, parse.UnmatchedTokens, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string? configFile, IReadOnlyList<string> overrides, CancellationToken cancellationToken)
    {
        MqttOptions mqtt;
        MqttTopics topics;
        try
        {
            var configuration = EdgeRunnerHost.BuildConfiguration(configFile, overrides);
            using var host = EdgeRunnerHost.Build(configuration);
            var errors = EdgeRunnerHost.FindConfigurationErrors(configuration, host.Services);
            if (errors.Count > 0)
            {
                foreach (var error in errors)
                {
                    await Console.Error.WriteLineAsync($"edgerunner: configuration error: {error}");
                }

                return StartupException.ConfigError;
            }

            mqtt = host.Services.GetRequiredService<IOptions<MqttOptions>>().Value;
            topics = host.Services.GetRequiredService<MqttTopics>();
        }
        catch (StartupException ex)
        {
            await Console.Error.WriteLineAsync($"edgerunner: configuration error: {ex.Message}");
            return ex.ExitCode;
        }

        var embedded = string.IsNullOrWhiteSpace(mqtt.Host);
        var brokerHost = embedded ? mqtt.EmbeddedBroker.BindAddress : mqtt.Host;
        // An embedded broker bound to every address is reached on loopback.
        if (brokerHost is "0.0.0.0" or "::")
        {
            brokerHost = "127.0.0.1";
        }

        var port = embedded ? mqtt.EmbeddedBroker.Port : mqtt.Port;
        var messages = new Dictionary<string, string>(StringComparer.Ordinal);
        var lastMessage = DateTime.UtcNow;
        using var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            lock (messages)
            {
                messages[e.ApplicationMessage.Topic] = Encoding.UTF8.GetString(e.ApplicationMessage.Payload);
                lastMessage = DateTime.UtcNow;
            }

            return Task.CompletedTask;
        };

        var options = new MqttClientOptionsBuilder()
            .WithTcpServer(brokerHost, port)
            .WithClientId($"edgerunner-status-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40])
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithCleanStart(true)
            .WithTimeout(TimeSpan.FromSeconds(Math.Max(1, mqtt.ConnectTimeoutSeconds)));
        if (!string.IsNullOrEmpty(mqtt.Username))
        {
            options.WithCredentials(mqtt.Username, ReadPassword(mqtt));
        }

        // As the daemon: TLS to an external broker only (the embedded one is plain on loopback).
        string? tlsRefusal = null;
        string? tlsError = null;
        using var tls = mqtt.Tls.Enabled && !embedded ? MqttTlsMaterial.TryLoad(mqtt.Tls, out tlsError) : null;
        if (mqtt.Tls.Enabled && !embedded)
        {
            if (tls is null)
            {
                await Console.Error.WriteLineAsync($"edgerunner status: {tlsError ?? "Mqtt:Tls: files cannot be read"}");
                return StartupException.ConfigError;
            }

            var customCa = tls.TrustedCas.Count > 0;
            var allowUntrusted = mqtt.Tls.AllowUntrusted;
            options.WithTlsOptions(o =>
            {
                o.UseTls()
                    .WithSslProtocols(System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13)
                    .WithTargetHost(brokerHost)
                    .WithCertificateValidationHandler(e =>
                    {
                        var refusal = MqttTlsMaterial.WhyServerCertificateRefused(e.Certificate, e.Chain, e.SslPolicyErrors, brokerHost, customCa);
                        tlsRefusal = allowUntrusted ? null : refusal;
                        return allowUntrusted || refusal is null;
                    });
                if (customCa)
                {
                    o.WithTrustChain(tls.TrustedCas);
                }

                if (tls.ClientCertificate is { } client)
                {
                    o.WithClientCertificates([client]).WithCertificateSelectionHandler(_ => client);
                }
            });
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(Math.Max(1, mqtt.ConnectTimeoutSeconds)));
            var result = await client.ConnectAsync(options.Build(), timeout.Token);
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                await Console.Error.WriteLineAsync($"edgerunner status: broker {brokerHost}:{port} refused the connection: {result.ResultCode}");
                return StartupException.ServiceUnavailable;
            }

            lastMessage = DateTime.UtcNow;
            await client.SubscribeAsync(
                new MqttClientSubscribeOptionsBuilder()
                    .WithTopicFilter(topics.Status)
                    .WithTopicFilter(Diagnostics.HealthPublisher.HealthTopic(topics))
                    .WithTopicFilter($"{topics.Base}/vision/+/state")
                    .WithTopicFilter($"{topics.Base}/sensors/#")
                    .Build(),
                timeout.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or MQTTnet.Exceptions.MqttCommunicationException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            var why = tlsRefusal is not null ? $"TLS: {tlsRefusal}" : ex.Message;
            await Console.Error.WriteLineAsync($"edgerunner status: no MQTT broker answers at {brokerHost}:{port}{(embedded ? " (the daemon's embedded broker: is the daemon running?)" : string.Empty)}: {why}");
            return StartupException.ServiceUnavailable;
        }

        // Retained messages come right after the subscription, with no end marker: wait for a quiet spell.
        var begun = DateTime.UtcNow;
        while (DateTime.UtcNow - begun < MaxWait)
        {
            await Task.Delay(100, cancellationToken);
            lock (messages)
            {
                if (DateTime.UtcNow - lastMessage > Quiet)
                {
                    break;
                }
            }
        }

        Dictionary<string, string> seen;
        lock (messages)
        {
            seen = new Dictionary<string, string>(messages, StringComparer.Ordinal);
        }

        try
        {
            await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), CancellationToken.None);
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException)
        {
            // Gone already: nothing to tidy.
        }

        var (code, text) = Format(topics, $"{brokerHost}:{port}", seen);
        await Console.Out.WriteAsync(text);
        return code;
    }

    /// <summary>The table and the exit code for the retained messages <paramref name="seen"/> (topic → payload).</summary>
    internal static (int ExitCode, string Text) Format(MqttTopics topics, string broker, IReadOnlyDictionary<string, string> seen)
    {
        var c = CultureInfo.InvariantCulture;
        var s = new StringBuilder();
        var availability = seen.TryGetValue(topics.Status, out var status) ? status : "absent (never published on this broker)";
        s.AppendLine(c, $"{topics.Base} on {broker}: {availability}");
        var rows = new List<(string Kind, string Id, string State, string Since, string Detail)>();
        var visionPrefix = $"{topics.Base}/vision/";
        var sensorPrefix = $"{topics.Base}/sensors/";
        foreach (var (topic, payload) in seen.OrderBy(x => x.Key, StringComparer.Ordinal))
        {
            if (!topic.EndsWith("/state", StringComparison.Ordinal))
            {
                continue;
            }

            var (kind, id) = topic.StartsWith(visionPrefix, StringComparison.Ordinal)
                ? ("camera", topic[visionPrefix.Length..^"/state".Length])
                : topic.StartsWith(sensorPrefix, StringComparison.Ordinal) ? ("stream", topic[sensorPrefix.Length..^"/state".Length]) : (null, null);
            if (kind is null || id is null)
            {
                continue;
            }

            rows.Add(ParseState(kind, id, payload));
        }

        if (rows.Count > 0)
        {
            s.AppendLine(c, $"{"KIND",-7} {"ID",-20} {"STATE",-13} {"SINCE",-25} DETAIL");
            foreach (var row in rows)
            {
                s.AppendLine(c, $"{row.Kind,-7} {row.Id,-20} {row.State,-13} {row.Since,-25} {row.Detail}");
            }
        }

        if (seen.TryGetValue(Diagnostics.HealthPublisher.HealthTopic(topics), out var health))
        {
            FormatHealth(s, health);
        }

        return (status == "online" ? 0 : NotRunning, s.ToString());
    }

    /// <summary>The last health message (<c>edgerunner.health/1</c>) as a few lines; its raw text when it is not that.</summary>
    internal static void FormatHealth(StringBuilder s, string payload)
    {
        var c = CultureInfo.InvariantCulture;
        try
        {
            using var json = JsonDocument.Parse(payload);
            var root = json.RootElement;
            var mqtt = root.GetProperty("mqtt");
            s.AppendLine(c, $"health at {root.GetProperty("timestamp").GetString()}: up {Duration(root.GetProperty("uptime_s").GetDouble())}, CPU {root.GetProperty("cpu_percent").GetDouble():0.0} % of a core, RSS {root.GetProperty("rss_bytes").GetInt64() / 1048576.0:0.0} MiB, GC {string.Join("/", root.GetProperty("gc_collections").EnumerateArray().Select(g => g.GetInt32().ToString(c)))}");
            s.AppendLine(c, $"MQTT {(mqtt.GetProperty("connected").GetBoolean() ? "connected" : "disconnected")}: {mqtt.GetProperty("published").GetInt64()} published, {mqtt.GetProperty("queued").GetInt64()} queued, {mqtt.GetProperty("dropped").GetInt64()} dropped, {mqtt.GetProperty("reconnects").GetInt64()} reconnects");
            var cameras = root.GetProperty("cameras");
            if (cameras.GetArrayLength() > 0)
            {
                s.AppendLine(c, $"{"CAMERA",-20} {"MODEL",-20} {"PROVIDER",-26} {"FPS",7} {"INFER/S",7} {"DROPPED",8} {"P50 MS",8} {"P99 MS",8}");
                foreach (var camera in cameras.EnumerateArray())
                {
                    var latency = camera.GetProperty("latency_ms");
                    s.AppendLine(c, $"{camera.GetProperty("camera").GetString(),-20} {camera.GetProperty("model").GetString(),-20} {camera.GetProperty("provider").GetString(),-26} {camera.GetProperty("capture_fps").GetDouble(),7:0.0} {camera.GetProperty("inference_fps").GetDouble(),7:0.0} {camera.GetProperty("frames_dropped").GetInt64(),8} {Milliseconds(latency, "p50"),8} {Milliseconds(latency, "p99"),8}");
                }
            }

            var streams = root.GetProperty("streams");
            if (streams.GetArrayLength() > 0)
            {
                s.AppendLine(c, $"{"STREAM",-20} {"MODEL",-20} {"PROVIDER",-26} {"STEPS/S",7} {"RESETS",7} {"INVALID",8} {"P50 MS",8} {"P99 MS",8}");
                foreach (var stream in streams.EnumerateArray())
                {
                    var step = stream.GetProperty("step_ms");
                    s.AppendLine(c, $"{stream.GetProperty("stream").GetString(),-20} {stream.GetProperty("model").GetString(),-20} {stream.GetProperty("provider").GetString(),-26} {stream.GetProperty("steps_per_s").GetDouble(),7:0.0} {stream.GetProperty("state_resets").GetInt64(),7} {stream.GetProperty("invalid_samples").GetInt64(),8} {Milliseconds(step, "p50"),8} {Milliseconds(step, "p99"),8}");
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            s.AppendLine(c, $"health (not understood: {ex.Message}): {payload}");
        }
    }

    private static string Milliseconds(JsonElement percentiles, string name) =>
        percentiles.ValueKind == JsonValueKind.Object ? percentiles.GetProperty(name).GetDouble().ToString("0.00", CultureInfo.InvariantCulture) : "-";

    private static string Duration(double seconds)
    {
        var t = TimeSpan.FromSeconds(seconds);
        return t.TotalDays >= 1 ? $"{(int)t.TotalDays}d {t.Hours}h {t.Minutes}m" : t.TotalHours >= 1 ? $"{t.Hours}h {t.Minutes}m" : t.TotalMinutes >= 1 ? $"{t.Minutes}m {t.Seconds}s" : $"{t.TotalSeconds:0}s";
    }

    private static (string Kind, string Id, string State, string Since, string Detail) ParseState(string kind, string id, string payload)
    {
        try
        {
            using var json = JsonDocument.Parse(payload);
            var root = json.RootElement;
            string Text(string name) => root.ValueKind == JsonValueKind.Object && root.TryGetProperty(name, out var v) ? v.ToString() : string.Empty;
            var detail = Text("reason");
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("restarts", out var restarts) && restarts.ToString() != "0")
            {
                detail = $"{detail} (restarts {restarts})".Trim();
            }

            return (kind, id, Text("state"), Text("timestamp"), detail);
        }
        catch (JsonException)
        {
            return (kind, id, payload, string.Empty, string.Empty);
        }
    }

    private static string ReadPassword(MqttOptions mqtt)
    {
        if (string.IsNullOrEmpty(mqtt.PasswordFile))
        {
            return mqtt.Password;
        }

        try
        {
            using var reader = new StreamReader(mqtt.PasswordFile, Encoding.UTF8);
            return reader.ReadLine() ?? string.Empty;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Without the password the broker refuses, and that refusal is reported.
            return string.Empty;
        }
    }
}
