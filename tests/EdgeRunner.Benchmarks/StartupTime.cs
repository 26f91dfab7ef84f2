using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// Start to ready of the real daemon (docs/performance.md §13): starts <c>edgerunner run</c> on the built-in demo
/// configuration (embedded broker on a free port, state in a temporary folder) a number of times, one after the
/// other, and times each from just before the process is started to the sd_notify <c>READY=1</c> it sends once
/// every model is loaded and warmed up and the pipelines run (the moment systemd considers the unit started).
/// The daemon's notify socket is a datagram socket owned here, as systemd's would be. It also gives the time to
/// the first notification ("loading and warming up models": the runtime started, configuration read and checked),
/// the resident set at ready (VmRSS) and its peak so far (VmHWM). Each daemon gets SIGTERM after ready and must
/// exit 0. Environment variables of this process (DOTNET_*) pass to the daemon, so runtime choices can be compared.
/// "in-process" is the figure of the daemon's own ready line (from its <c>run</c> command's start: configuration,
/// host, models, warm-up); the rest of ready is the runtime's start and the command line's.
/// </summary>
internal static partial class StartupTime
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(120);

    /// <param name="runs">Daemons to start, one after the other.</param>
    /// <param name="daemon">edgerunner.dll (run with <c>dotnet</c>) or a published app host; null = the Release build of the checkout.</param>
    /// <param name="output">Where the lines go.</param>
    public static int Run(int runs, string? daemon, TextWriter output)
    {
        daemon ??= Path.Combine(Paths.RepositoryRoot, "service", "EdgeRunner.Service", "bin", "Release", "net10.0", "linux-x64", "edgerunner.dll");
        if (!File.Exists(daemon))
        {
            output.WriteLine($"startup: {daemon} not found (dotnet build service/EdgeRunner.Service -c Release)");
            return 2;
        }

        output.WriteLine($"startup: {runs} x `{Path.GetFileName(daemon)} run` on the demo configuration, from {Paths.RepositoryRoot}");
        output.WriteLine("run  first-notify_ms  ready_ms  in-process_ms  rss_at_ready_MiB  peak_MiB  load");
        var results = new List<(double First, double Ready, double InProcess, double Rss, double Peak)>();
        for (var i = 1; i <= runs; i++)
        {
            var load = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            var result = Once(daemon);
            results.Add(result);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{i,3}  {result.First,15:0}  {result.Ready,8:0}  {result.InProcess,13:0}  {result.Rss,16:0.0}  {result.Peak,8:0.0}  {load}"));
        }

        static string Summary(IEnumerable<double> values)
        {
            var sorted = values.Order().ToArray();
            return string.Create(CultureInfo.InvariantCulture, $"min {sorted[0]:0} / median {sorted[sorted.Length / 2]:0} / max {sorted[^1]:0}");
        }

        output.WriteLine($"first notification ms: {Summary(results.Select(r => r.First))}");
        output.WriteLine($"ready ms:              {Summary(results.Select(r => r.Ready))}");
        output.WriteLine($"in-process ms:         {Summary(results.Select(r => r.InProcess))}");
        output.WriteLine($"RSS at ready MiB:      {Summary(results.Select(r => r.Rss))}");
        return 0;
    }

    [GeneratedRegex(@"ready in (\d+) ms")]
    private static partial Regex ReadyLine();

    private static (double First, double Ready, double InProcess, double Rss, double Peak) Once(string daemon)
    {
        var folder = Directory.CreateTempSubdirectory("edgerunner-startup-");
        try
        {
            var socketPath = Path.Combine(folder.FullName, "notify");
            using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            notify.Bind(new UnixDomainSocketEndPoint(socketPath));
            notify.ReceiveTimeout = (int)ReadyTimeout.TotalMilliseconds;

            var start = daemon.EndsWith(".dll", StringComparison.Ordinal) ? new ProcessStartInfo("dotnet") : new ProcessStartInfo(daemon);
            if (daemon.EndsWith(".dll", StringComparison.Ordinal))
            {
                start.ArgumentList.Add(daemon);
            }

            foreach (var argument in (string[])["run", "--", $"--Mqtt:EmbeddedBroker:Port={FreePort()}", $"--State:Directory={Path.Combine(folder.FullName, "state")}"])
            {
                start.ArgumentList.Add(argument);
            }

            start.WorkingDirectory = Paths.RepositoryRoot;
            start.UseShellExecute = false;
            start.RedirectStandardOutput = true;
            start.RedirectStandardError = true;
            start.Environment["NOTIFY_SOCKET"] = socketPath;
            start.Environment["RUNTIME_DIRECTORY"] = folder.FullName;
            var log = new StringBuilder();
            using var process = new Process { StartInfo = start };
            process.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
            process.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };

            var started = Stopwatch.GetTimestamp();
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            double? first = null;
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    var length = notify.Receive(buffer);
                    var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    first ??= elapsed;
                    if (Encoding.UTF8.GetString(buffer, 0, length).Split('\n').Contains("READY=1"))
                    {
                        var (rss, peak) = Memory(process.Id);
                        Terminate(process);
                        string text;
                        lock (log)
                        {
                            text = log.ToString();
                        }

                        var line = ReadyLine().Match(text);
                        var inProcess = line.Success ? double.Parse(line.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN;
                        return (first.Value, elapsed, inProcess, rss, peak);
                    }
                }
            }
            catch (SocketException ex)
            {
                process.Kill();
                process.WaitForExit();
                lock (log)
                {
                    throw new InvalidOperationException($"The daemon sent no READY=1 ({ex.SocketErrorCode}); exit {(process.HasExited ? process.ExitCode : -1)}. Its output:\n{log}", ex);
                }
            }
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static void Terminate(Process process)
    {
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            kill.WaitForExit();
        }

        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill();
            throw new InvalidOperationException("The daemon did not exit within 60 s of SIGTERM.");
        }

        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"The daemon exited {process.ExitCode} on SIGTERM.");
        }
    }

    private static (double Rss, double Peak) Memory(int pid)
    {
        double rss = 0, peak = 0;
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                rss = KiB(line) / 1024.0;
            }
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                peak = KiB(line) / 1024.0;
            }
        }

        return (rss, peak);

        static long KiB(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
