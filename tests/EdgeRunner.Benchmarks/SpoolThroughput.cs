using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using EdgeRunner.Service;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Publishing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// Not BenchmarkDotNet: the daemon's real publisher (host, outbox, MQTT connection) against a local mosquitto
/// started here, QoS 1, 500-byte results on 10 topics handed to <see cref="IResultPublisher.TryPublish"/> as fast
/// as it takes them, until the broker has acknowledged every one. Prints messages per second and the process's
/// CPU per message (everything in this process: producers, spool, MQTT client; mosquitto apart), for the disk
/// spool with the default in-flight window, the spool with one publish at a time (the old loop), and memory.
///   dotnet run -c Release --project tests/EdgeRunner.Benchmarks -- spool-throughput [messages]
/// </summary>
internal static class SpoolThroughput
{
    public static void Run(int messages, TextWriter output)
    {
        var folder = Directory.CreateTempSubdirectory("edgerunner-spool-throughput-").FullName;
        var port = FreePort();
        var config = Path.Combine(folder, "mosquitto.conf");
        File.WriteAllText(config, $"listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 0\nmax_queued_messages 0\n");
        using var broker = Process.Start(new ProcessStartInfo("/usr/sbin/mosquitto", ["-c", config]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        try
        {
            Thread.Sleep(500);
            output.WriteLine($"{messages} QoS 1 messages of 500 bytes on 10 topics, local mosquitto, {Environment.ProcessorCount} cores");
            output.WriteLine("| outbox | in flight | messages/s | CPU per message (µs) | wall (s) |");
            output.WriteLine("|---|---|---|---|---|");
            foreach (var (name, spool, inFlight) in new[] { ("disk spool", true, 20), ("disk spool", true, 1), ("memory", false, 20) })
            {
                var (rate, cpuMicros, wall) = Measure(folder, port, spool, inFlight, messages);
                output.WriteLine(FormattableString.Invariant($"| {name} | {inFlight} | {rate:0} | {cpuMicros:0.0} | {wall:0.00} |"));
            }
        }
        finally
        {
            broker.Kill();
            broker.WaitForExit();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static (double Rate, double CpuMicros, double Wall) Measure(string folder, int port, bool spool, int inFlight, int messages)
    {
        var state = Path.Combine(folder, "state-" + Guid.NewGuid().ToString("N"));
        var settings = new Dictionary<string, string?>
        {
            ["Device:Id"] = "bench",
            ["Mqtt:Host"] = "127.0.0.1",
            ["Mqtt:Port"] = port.ToString(CultureInfo.InvariantCulture),
            ["Mqtt:MaxInFlight"] = inFlight.ToString(CultureInfo.InvariantCulture),
            ["Mqtt:QueueCapacity"] = (messages + 10).ToString(CultureInfo.InvariantCulture),
            ["Mqtt:QueueMaxBytes"] = (1L << 30).ToString(CultureInfo.InvariantCulture),
            ["Mqtt:Spool:MaxMegabytes"] = "1024",
            ["State:Directory"] = spool ? state : "",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var host = EdgeRunnerHost.Build(configuration);
        host.Start();
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        var results = host.Services.GetRequiredService<IResultPublisher>();
        while (!publisher.IsConnected)
        {
            Thread.Sleep(50);
        }

        var payload = new byte[500];
        Random.Shared.NextBytes(payload);
        var topics = Enumerable.Range(0, 10).Select(i => $"edgerunner/bench/sensors/s{i}/result").ToArray();
        var published = publisher.Published;
        var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < messages; i++)
        {
            if (!results.TryPublish(topics[i % topics.Length], payload))
            {
                throw new InvalidOperationException($"message {i} refused");
            }
        }

        while (publisher.Published - published < messages)
        {
            Thread.Sleep(1);
        }

        var wall = clock.Elapsed.TotalSeconds;
        process.Refresh();
        var cpuSeconds = (process.TotalProcessorTime - cpu).TotalSeconds;
        host.StopAsync().GetAwaiter().GetResult();
        return (messages / wall, cpuSeconds / messages * 1e6, wall);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
