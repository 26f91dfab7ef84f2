using System.Text.Json.Nodes;
using EdgeRunner.Service;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>
/// One end-to-end scenario: a real mosquitto on a free loopback port (or, with
/// <see cref="WithEmbeddedBroker"/>, the daemon's own embedded broker on one), a device id of its own, the
/// daemon's configuration written for that broker, connected <see cref="MqttProbe"/>s (with their
/// connect retry) and daemons started in-process or as child processes. Everything the scenario
/// started is disposed in reverse order when it is, also when a step in between failed; the test's
/// own early disposal (a host stopped to start the next) is allowed, as every part is safe to dispose twice.
/// </summary>
internal sealed class DaemonScenario : IAsyncDisposable
{
    private static readonly TimeSpan ProbeConnectWithin = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan StopWithin = TimeSpan.FromSeconds(30);

    private readonly List<object> _owned = [];
    private readonly string? _persistenceDirectory;
    private MosquittoBroker? _broker;
    private TempFolder? _folder;

    private DaemonScenario(string deviceId, MosquittoBroker? broker, int port, string? persistenceDirectory)
    {
        DeviceId = deviceId;
        _broker = broker;
        Port = port;
        _persistenceDirectory = persistenceDirectory;
    }

    /// <summary>The device id (<c>Device:Id</c>): the prefix and 8 random hex digits, so parallel tests never share topics.</summary>
    public string DeviceId { get; }

    /// <summary>The broker's port on 127.0.0.1 (mosquitto's, or the one the daemon's embedded broker is configured to).</summary>
    public int Port { get; }

    /// <summary>A folder of the scenario's own (recordings, state, models), deleted last.</summary>
    public string Folder => (_folder ??= new TempFolder()).Path;

    /// <summary>
    /// Starts the broker. With <paramref name="persistentBroker"/> it keeps sessions and queued messages
    /// across <see cref="RestartBrokerAsync"/>, as a production broker would (its folder is the scenario's to delete).
    /// </summary>
    /// <remarks>
    /// With <paramref name="auth"/> mosquitto takes only the users of its password file, each limited by its ACL: it is
    /// given the scenario's device id (the ACL names the device's topics) and returns the files (the test's to delete).
    /// </remarks>
    public static async Task<DaemonScenario> StartAsync(string deviceIdPrefix, CancellationToken cancellationToken, bool persistentBroker = false, Func<string, MosquittoAuth>? auth = null)
    {
        var persistence = persistentBroker ? Directory.CreateTempSubdirectory("edgerunner-mosquitto-persist-").FullName : null;
        try
        {
            var deviceId = NewDeviceId(deviceIdPrefix);
            var broker = await MosquittoBroker.StartAsync(cancellationToken, persistenceDirectory: persistence, auth: auth?.Invoke(deviceId));
            return new DaemonScenario(deviceId, broker, broker.Port, persistence);
        }
        catch
        {
            DeleteDirectory(persistence);
            throw;
        }
    }

    /// <summary>
    /// A scenario without mosquitto: the daemon's configuration enables its embedded broker on a free port
    /// (<see cref="Port"/>), and probes connect to that once the daemon runs (their connect retry covers its start).
    /// </summary>
    public static DaemonScenario WithEmbeddedBroker(string deviceIdPrefix) => new(NewDeviceId(deviceIdPrefix), null, FreePort.Next(), null);

    /// <summary>The device's topic <c>edgerunner/{DeviceId}/{path}</c>.</summary>
    public string Topic(string path) => $"edgerunner/{DeviceId}/{path}";

    /// <summary>
    /// Writes <paramref name="sections"/> with this scenario's <c>Device</c> id and a <c>Mqtt</c> section for
    /// its broker (<c>Host</c> and <c>Port</c>, or <c>EmbeddedBroker:Port</c> plus <paramref name="embeddedBroker"/>'s
    /// settings), plus <paramref name="mqtt"/>'s settings (e.g. <c>ReconnectMaxDelaySeconds</c>).
    /// </summary>
    public string WriteConfig(JsonObject sections, JsonObject? mqtt = null, JsonObject? embeddedBroker = null)
    {
        var embedded = _broker is null;
        Assert.True(embedded || embeddedBroker is null, "embedded broker settings in a scenario with mosquitto");
        var mqttSection = embedded
            ? new JsonObject { ["EmbeddedBroker"] = Merge(new JsonObject { [nameof(Port)] = Port }, embeddedBroker) }
            : new JsonObject { ["Host"] = "127.0.0.1", [nameof(Port)] = Port };
        sections["Device"] = new JsonObject { ["Id"] = DeviceId };
        sections["Mqtt"] = Merge(mqttSection, mqtt);
        return TestConfig.Write(sections);
    }

    /// <summary>A probe subscribed to <c>edgerunner/{DeviceId}/{topicPath}</c>.</summary>
    public Task<MqttProbe> ProbeAsync(string topicPath, CancellationToken cancellationToken, string? persistentClientId = null) =>
        ProbeTopicAsync(Topic(topicPath), cancellationToken, persistentClientId);

    /// <summary>A probe subscribed to any <paramref name="topicFilter"/> on the scenario's broker.</summary>
    public async Task<MqttProbe> ProbeTopicAsync(string topicFilter, CancellationToken cancellationToken, string? persistentClientId = null)
    {
        var probe = await MqttProbe.ConnectAsync(Port, topicFilter, ProbeConnectWithin, cancellationToken, persistentClientId);
        _owned.Add(probe);
        return probe;
    }

    /// <summary>Writes the configuration (see <see cref="WriteConfig"/>) and starts the daemon's host in-process on it.</summary>
    public Task<IHost> StartHostAsync(JsonObject sections, CancellationToken cancellationToken, Action<IServiceCollection>? configureServices = null) =>
        StartHostAsync(WriteConfig(sections), cancellationToken, configureServices);

    /// <summary>
    /// The daemon's host built and started in the test process from <paramref name="configFile"/>, after the
    /// same configuration checks the daemon makes; <paramref name="configureServices"/> adds the test's registrations.
    /// </summary>
    public async Task<IHost> StartHostAsync(string configFile, CancellationToken cancellationToken, Action<IServiceCollection>? configureServices = null)
    {
        var configuration = EdgeRunnerHost.BuildConfiguration(configFile, []);
        var host = EdgeRunnerHost.Build(configuration, configureServices);
        var owned = new OwnedHost(host, host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopped);
        _owned.Add(owned);
        Assert.Empty(EdgeRunnerHost.FindConfigurationErrors(configuration, host.Services));
        await host.StartAsync(cancellationToken);
        owned.Started = true;
        return host;
    }

    /// <summary>The real daemon as a child process with <paramref name="arguments"/>.</summary>
    public DaemonProcess StartProcess(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var daemon = DaemonProcess.Start(arguments, environment);
        _owned.Add(daemon);
        return daemon;
    }

    /// <summary>
    /// Stops the broker gracefully (a persistent one saves its database), leaves it down for
    /// <paramref name="downFor"/>, and starts it again on the same port (and persistence folder).
    /// </summary>
    public async Task RestartBrokerAsync(CancellationToken cancellationToken, TimeSpan downFor = default)
    {
        var broker = _broker ?? throw new InvalidOperationException("This scenario runs the daemon's embedded broker: there is no mosquitto to restart.");
        await broker.StopGracefullyAsync(cancellationToken);
        await broker.DisposeAsync();
        if (downFor > TimeSpan.Zero)
        {
            await Task.Delay(downFor, cancellationToken);
        }

        _broker = await MosquittoBroker.StartAsync(cancellationToken, Port, _persistenceDirectory);
    }

    /// <summary>Disposes daemons, probes and anything else the scenario started, newest first; then the broker and the folders.</summary>
    public async ValueTask DisposeAsync()
    {
        var failures = new List<Exception>();
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            try
            {
                switch (_owned[i])
                {
                    case OwnedHost owned:
                        await owned.StopIfRunningAsync();
                        await owned.DisposeAsync();
                        break;
                    case IAsyncDisposable asyncDisposable:
                        await asyncDisposable.DisposeAsync();
                        break;
                    case IDisposable disposable:
                        disposable.Dispose();
                        break;
                }
            }
            catch (Exception ex)
            {
                failures.Add(ex);
            }
        }

        _owned.Clear();
        try
        {
            if (_broker is not null)
            {
                await _broker.DisposeAsync();
            }
        }
        catch (Exception ex)
        {
            failures.Add(ex);
        }

        DeleteDirectory(_persistenceDirectory);
        _folder?.Dispose();
        if (failures.Count > 0)
        {
            throw new AggregateException("Cleaning up the scenario failed.", failures);
        }
    }

    private static string NewDeviceId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    private static JsonObject Merge(JsonObject section, JsonObject? settings)
    {
        foreach (var (key, value) in settings ?? [])
        {
            section[key] = value?.DeepClone();
        }

        return section;
    }

    private static void DeleteDirectory(string? directory)
    {
        if (directory is not null && Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>A host the scenario built, with its "stopped" signal taken while its services could still be resolved.</summary>
    private sealed class OwnedHost(IHost host, CancellationToken stopped) : IAsyncDisposable
    {
        /// <summary>Whether its start completed (a host whose start failed is only disposed, as the daemon would).</summary>
        public bool Started { get; set; }

        /// <summary>A host the test left running (it failed before its own stop) stops as the daemon does, so its cameras and streams end.</summary>
        public async Task StopIfRunningAsync()
        {
            if (!Started || stopped.IsCancellationRequested)
            {
                return;
            }

            try
            {
                using var timeout = new CancellationTokenSource(StopWithin);
                await host.StopAsync(timeout.Token);
            }
            catch (ObjectDisposedException)
            {
                // The test disposed it already (a using declaration unwound by a failure).
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (host is IAsyncDisposable asyncDisposable)
            {
                await asyncDisposable.DisposeAsync();
            }
            else
            {
                host.Dispose();
            }
        }
    }
}
