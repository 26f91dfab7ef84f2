using System.Net;
using System.Net.Sockets;
using System.Text;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Diagnostics;

/// <summary>
/// <c>Metrics:Prometheus</c>: serves the daemon's meter in the Prometheus text format at
/// <c>http://{Address}:{Port}/metrics</c>, off while <c>Port</c> is 0. A port that cannot be listened on stops
/// startup (exit 69) naming the key.
/// </summary>
/// <remarks>
/// <see cref="HttpListener"/> (managed on Linux, no ASP.NET) and our own writer rather than OpenTelemetry's
/// Prometheus exporter: that exporter exists only as a beta, brings the OpenTelemetry SDK into a headless daemon for
/// one page of text, and its HttpListener binds every address for a host name. A scrape is served on the listener's
/// thread pool, reads the observable instruments then (nothing runs between scrapes) and copies the histograms
/// under the collector's lock, so the pipelines never wait for it longer than that copy.
/// </remarks>
internal sealed partial class PrometheusEndpoint : IHostedService, IDisposable
{
    /// <summary>The configuration key a listening failure names.</summary>
    public const string PortKey = "Metrics:Prometheus:Port";

    private readonly PrometheusOptions _options;
    private readonly IServiceProvider _services;
    private readonly ILogger<PrometheusEndpoint> _logger;
    private HttpListener? _listener;
    private MetricsCollector? _collector;
    private Task? _loop;
    private long _scrapes;

    public PrometheusEndpoint(IOptions<MetricsOptions> options, IServiceProvider services, ILogger<PrometheusEndpoint> logger)
    {
        _options = options.Value.Prometheus;
        _services = services;
        _logger = logger;
    }

    /// <summary>Scrapes served so far.</summary>
    public long Scrapes => Interlocked.Read(ref _scrapes);

    /// <summary>The URL served (<c>http://127.0.0.1:9464/metrics</c>); null while off.</summary>
    public string? Url { get; private set; }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_options.Port == 0)
        {
            return Task.CompletedTask;
        }

        var address = IPAddress.Parse(_options.Address);
        var host = address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        var prefix = $"http://{host}:{_options.Port}/";
        var listener = new HttpListener { IgnoreWriteExceptions = true };
        listener.Prefixes.Add(prefix);
        try
        {
            listener.Start();
        }
        catch (HttpListenerException ex)
        {
            ((IDisposable)listener).Dispose();
            throw new StartupException($"{PortKey}: cannot serve Prometheus metrics on {host}:{_options.Port}: {ex.Message} (another process listens there? choose another port, or 0 for none)", StartupException.ServiceUnavailable, ex);
        }

        _collector = _services.GetRequiredService<MetricsCollector>();
        _listener = listener;
        Url = prefix + "metrics";
        _loop = Task.Run(() => ServeAsync(listener), CancellationToken.None);
        LogListening(_logger, Url);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_listener is null)
        {
            return;
        }

        // Stop ends GetContextAsync with an exception, which ends the loop. A host stopped again after it was
        // disposed finds the listener closed already: nothing left to stop.
        try
        {
            _listener.Stop();
        }
        catch (ObjectDisposedException)
        {
            return;
        }
        if (_loop is not null)
        {
            await _loop.WaitAsync(cancellationToken);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_listener is not null)
        {
            ((IDisposable)_listener).Dispose();
        }
    }

    private async Task ServeAsync(HttpListener listener)
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                // Stopped.
                return;
            }

            try
            {
                Respond(context);
            }
            catch (Exception ex) when (ex is HttpListenerException or IOException or ObjectDisposedException or InvalidOperationException)
            {
                // The scraper went away mid-answer: its problem, not the daemon's.
                LogScrapeFailed(_logger, ex.Message);
            }
        }
    }

    private void Respond(HttpListenerContext context)
    {
        using var response = context.Response;
        var path = context.Request.Url?.AbsolutePath ?? "/";
        if (context.Request.HttpMethod is not ("GET" or "HEAD"))
        {
            response.StatusCode = (int)HttpStatusCode.MethodNotAllowed;
            return;
        }

        if (path is not ("/metrics" or "/"))
        {
            response.StatusCode = (int)HttpStatusCode.NotFound;
            var hint = Encoding.UTF8.GetBytes("Prometheus metrics are at /metrics\n");
            response.OutputStream.Write(hint);
            return;
        }

        var body = Encoding.UTF8.GetBytes(PrometheusText.Write(_collector!.Collect()));
        response.StatusCode = (int)HttpStatusCode.OK;
        response.ContentType = PrometheusText.ContentType;
        response.ContentLength64 = body.Length;
        if (context.Request.HttpMethod == "GET")
        {
            response.OutputStream.Write(body);
        }

        Interlocked.Increment(ref _scrapes);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Prometheus metrics served at {Url}")]
    private static partial void LogListening(ILogger logger, string url);

    [LoggerMessage(Level = LogLevel.Debug, Message = "A Prometheus scrape ended early: {Reason}")]
    private static partial void LogScrapeFailed(ILogger logger, string reason);
}
