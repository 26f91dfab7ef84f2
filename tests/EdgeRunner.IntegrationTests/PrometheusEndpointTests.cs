using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// <c>Metrics:Prometheus</c> on the real daemon process: scraped over HTTP while a synthetic camera and a simulated
/// machine run against a real mosquitto, the text parses line by line, counters move between scrapes and the
/// histograms' buckets add up; a port already taken stops startup naming the key (exit 69), a bad address is a
/// configuration error (exit 78).
/// </summary>
public sealed class PrometheusEndpointTests
{
    private const int ExUnavailable = 69;
    private const int ExConfig = 78;
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_running_daemon_serves_its_meter_in_the_prometheus_text_format_and_the_counters_move()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("prometheus", ct);
        var port = FreePort.Next();
        var config = scenario.WriteConfig(Sections(port));
        var daemon = scenario.StartProcess(["--config", config]);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var url = $"http://127.0.0.1:{port}/metrics";

        var first = await ScrapeWhenAsync(http, url, s => Value(s, "edgerunner_frames_inferred_total", "camera=\"yard\"") > 0 && Value(s, "edgerunner_sensor_steps_total", "stream=\"pump\"") > 0, daemon, ct);
        var later = await ScrapeWhenAsync(
            http,
            url,
            s => Value(s, "edgerunner_frames_inferred_total", "camera=\"yard\"") > Value(first, "edgerunner_frames_inferred_total", "camera=\"yard\"")
                && Value(s, "edgerunner_sensor_steps_total", "stream=\"pump\"") > Value(first, "edgerunner_sensor_steps_total", "stream=\"pump\"")
                && Value(s, "edgerunner_mqtt_published_total", null) > Value(first, "edgerunner_mqtt_published_total", null),
            daemon,
            ct);

        // Every sample line is "name{labels} value" with a TYPE line before it.
        var typed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in later.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                typed.Add(line.Split(' ')[2]);
                continue;
            }

            if (line.StartsWith('#'))
            {
                Assert.StartsWith("# HELP ", line, StringComparison.Ordinal);
                continue;
            }

            var sample = Parse(line);
            var family = sample.Name.EndsWith("_bucket", StringComparison.Ordinal) ? sample.Name[..^7]
                : sample.Name.EndsWith("_sum", StringComparison.Ordinal) && !typed.Contains(sample.Name) ? sample.Name[..^4]
                : sample.Name.EndsWith("_count", StringComparison.Ordinal) && !typed.Contains(sample.Name) ? sample.Name[..^6]
                : sample.Name;
            Assert.True(typed.Contains(family), $"no TYPE line before {line}");
        }

        Assert.Contains("edgerunner_frames_captured_total", typed);
        Assert.Contains("edgerunner_mqtt_queued", typed);
        Assert.Contains("edgerunner_inference_duration_milliseconds", typed);
        Assert.Contains("# TYPE edgerunner_inference_duration_milliseconds histogram", later.Text, StringComparison.Ordinal);
        Assert.True(Value(later, "edgerunner_process_cpu_time_seconds_total", null) > 0);
        Assert.True(Value(later, "edgerunner_process_memory_usage_bytes", null) > 0);

        // The camera's latency histogram: cumulative buckets, +Inf equal to the count, which is at most the frames inferred.
        var buckets = later.Samples.Where(s => s.Name == "edgerunner_result_latency_milliseconds_bucket" && s.Labels.Contains("camera=\"yard\"", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(buckets);
        Assert.True(buckets.Zip(buckets.Skip(1)).All(p => p.Second.Value >= p.First.Value), "buckets are not cumulative");
        Assert.Contains("le=\"+Inf\"", buckets[^1].Labels, StringComparison.Ordinal);
        var count = Value(later, "edgerunner_result_latency_milliseconds_count", "camera=\"yard\"");
        Assert.Equal(count, buckets[^1].Value);
        Assert.True(count > 0);
        Assert.True(Value(later, "edgerunner_result_latency_milliseconds_sum", "camera=\"yard\"") > 0);

        // Anything but /metrics is not found.
        using (var missing = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/nothing"), ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        daemon.Terminate();
        Assert.Equal(0, await daemon.WaitForExitAsync(Within, ct));
        Assert.Contains($"Prometheus metrics served at http://127.0.0.1:{port}/metrics", daemon.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_port_already_in_use_stops_startup_naming_the_key()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("prometheus-busy", ct);
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        var daemon = scenario.StartProcess(["--config", scenario.WriteConfig(Sections(port))]);

        Assert.Equal(ExUnavailable, await daemon.WaitForExitAsync(Within, ct));
        Assert.Contains($"Metrics:Prometheus:Port: cannot serve Prometheus metrics on 127.0.0.1:{port}", daemon.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_address_that_is_not_an_ip_address_is_a_configuration_error()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("prometheus-address", ct);
        var sections = Sections(FreePort.Next());
        sections["Metrics"]!["Prometheus"]!["Address"] = "localhost";
        var daemon = scenario.StartProcess(["--config", scenario.WriteConfig(sections)]);

        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(Within, ct));
        Assert.Contains("Metrics:Prometheus:Address: must be an IP address", daemon.Stderr, StringComparison.Ordinal);
    }

    private static JsonObject Sections(int port) => new()
    {
        ["Metrics"] = new JsonObject { ["Prometheus"] = new JsonObject { ["Port"] = port } },
        ["Models"] = new JsonObject
        {
            ["detector"] = TestConfig.BundledModel("shapes-detector"),
            ["lstm"] = TestConfig.BundledModel("vibration-lstm"),
        },
        ["Cameras"] = new JsonObject
        {
            ["yard"] = new JsonObject { ["Model"] = "detector", ["Fps"] = 10, ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 320, ["Height"] = 240, ["Seed"] = 3 } },
        },
        ["Sensors"] = new JsonObject { ["pump"] = TestConfig.SimulatedVibration(5) },
    };

    /// <summary>Scrapes until <paramref name="condition"/> holds (the endpoint opens once the models are loaded).</summary>
    private static async Task<Scrape> ScrapeWhenAsync(HttpClient http, string url, Func<Scrape, bool> condition, DaemonProcess daemon, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + Within;
        while (true)
        {
            try
            {
                using var response = await http.GetAsync(new Uri(url), ct);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
                var text = await response.Content.ReadAsStringAsync(ct);
                var scrape = new Scrape(text, [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')).Select(Parse)]);
                if (condition(scrape))
                {
                    return scrape;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            Assert.True(DateTime.UtcNow < deadline, $"the scrape never met its condition; daemon output:\n{daemon.Stdout}\n{daemon.Stderr}");
            await Task.Delay(200, ct);
        }
    }

    /// <summary>The value of the one sample of <paramref name="name"/> whose labels contain <paramref name="label"/> (no labels when null).</summary>
    private static double Value(Scrape scrape, string name, string? label) =>
        Assert.Single(scrape.Samples, s => s.Name == name && (label is null ? s.Labels.Length == 0 : s.Labels.Contains(label, StringComparison.Ordinal))).Value;

    /// <summary>"name{a="x",le="5"} 12" → its name, its label text and its value.</summary>
    private static Sample Parse(string line)
    {
        var space = line.LastIndexOf(' ');
        Assert.True(space > 0, $"not a sample: {line}");
        var head = line[..space];
        var brace = head.IndexOf('{', StringComparison.Ordinal);
        var name = brace < 0 ? head : head[..brace];
        var labels = brace < 0 ? string.Empty : head[(brace + 1)..^1];
        Assert.Matches("^[a-zA-Z_:][a-zA-Z0-9_:]*$", name);
        Assert.True(brace < 0 || head.EndsWith('}'), $"labels not closed: {line}");
        var text = line[(space + 1)..];
        var value = text switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            _ => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
        };
        return new Sample(name, labels, value);
    }

    private sealed record Sample(string Name, string Labels, double Value);

    private sealed record Scrape(string Text, IReadOnlyList<Sample> Samples);
}
