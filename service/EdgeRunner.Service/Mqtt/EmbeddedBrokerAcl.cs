using System.Security.Cryptography;
using System.Text;
using EdgeRunner.Service.Configuration;
using MQTTnet;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// Who may do what on the embedded broker. The daemon's own client (recognised by its per-process
/// secret, see <see cref="EmbeddedBrokerEndpoint"/>) may publish and subscribe to anything. Every other
/// client:
/// <list type="bullet">
/// <item>may subscribe to any filter (<c>#</c> included: the broker carries only this device's topics
/// and what is published to it) except <c>$</c>-topics (MQTTnet publishes no <c>$SYS</c> tree; refusing
/// says so instead of granting a subscription that never delivers);</item>
/// <item>may publish only to topics the daemon itself subscribes to (its MQTT ingest filters and its
/// command filter: learned from the daemon's own SUBSCRIBE packets, so this is never a second list
/// to keep in step), and never to the daemon's own topics: its status, and everything under
/// <c>{prefix}/{device}/vision/</c> and <c>{prefix}/{device}/sensors/</c> except the reset commands
/// (the daemon's command filter <c>sensors/#</c> would otherwise cover its results and states);</item>
/// <item>may not retain a command (it would be replayed to the daemon at every reconnect).</item>
/// </list>
/// Thread-safe: decisions read a copy-on-write array of the daemon's filters.
/// </summary>
public sealed class EmbeddedBrokerAcl
{
    private readonly MqttTopics _topics;
    private readonly string _visionPrefix;
    private readonly string _sensorsPrefix;
    private readonly Lock _lock = new();
    private string[] _daemonFilters = [];

    /// <summary>Creates the rules for one device's topics.</summary>
    public EmbeddedBrokerAcl(MqttTopics topics)
    {
        ArgumentNullException.ThrowIfNull(topics);
        _topics = topics;
        _visionPrefix = topics.Base + "/vision/";
        _sensorsPrefix = topics.Base + "/sensors/";
    }

    /// <summary>Filters the daemon has subscribed to so far (kept for the life of the process, as the daemon keeps its subscriptions).</summary>
    public IReadOnlyList<string> DaemonFilters => Volatile.Read(ref _daemonFilters);

    /// <summary>Records a filter the daemon's own client subscribed to: other clients may now publish to topics it matches.</summary>
    public void AddDaemonFilter(string filter)
    {
        ArgumentException.ThrowIfNullOrEmpty(filter);
        lock (_lock)
        {
            if (Array.IndexOf(_daemonFilters, filter) < 0)
            {
                _daemonFilters = [.. _daemonFilters, filter];
            }
        }
    }

    /// <summary>
    /// Who a CONNECT is: the daemon (it presents the per-process secret), another client, or refused:
    /// the daemon's client id without the secret (a takeover would cut the daemon off and let the
    /// client publish as it), or missing/wrong credentials where <paramref name="required"/> are set.
    /// </summary>
    public static ConnectVerdict DecideConnect(EmbeddedBrokerEndpoint endpoint, EmbeddedBrokerCredentials? required, string? clientId, string? username, ReadOnlySpan<byte> password)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (endpoint.IsDaemonSecret(username, password))
        {
            return ConnectVerdict.Daemon;
        }

        if (string.Equals(clientId, endpoint.DaemonClientId, StringComparison.Ordinal))
        {
            return ConnectVerdict.ReservedClientId;
        }

        return required is null || required.Matches(username, password) ? ConnectVerdict.Client : ConnectVerdict.BadCredentials;
    }

    /// <summary>Whether a client other than the daemon may publish to <paramref name="topic"/>; null when it may, else why not.</summary>
    public string? WhyNotPublish(string topic, bool retain)
    {
        ArgumentNullException.ThrowIfNull(topic);
        if (topic.StartsWith('$'))
        {
            return "topics starting with '$' are reserved";
        }

        var isCommand = _topics.StreamOfResetTopic(topic) is not null;
        if (IsDaemonTopic(topic, isCommand))
        {
            return $"the daemon's own topic (status, results, states and events under {_topics.Base}/ are written only by the daemon)";
        }

        if (!MatchesDaemonFilter(topic))
        {
            return "not an ingest or command topic (the daemon subscribes to no filter matching it)";
        }

        if (isCommand && retain)
        {
            return "a command must not be retained (it would be applied again at every reconnect)";
        }

        return null;
    }

    /// <summary>Whether a client other than the daemon may subscribe to <paramref name="filter"/>; null when it may, else why not.</summary>
    public static string? WhyNotSubscribe(string filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return filter.StartsWith('$') ? "topics starting with '$' are reserved (this broker publishes no $SYS tree)" : null;
    }

    private bool IsDaemonTopic(string topic, bool isCommand) =>
        string.Equals(topic, _topics.Status, StringComparison.Ordinal)
        || topic.StartsWith(_visionPrefix, StringComparison.Ordinal)
        || (topic.StartsWith(_sensorsPrefix, StringComparison.Ordinal) && !isCommand);

    private bool MatchesDaemonFilter(string topic)
    {
        foreach (var filter in Volatile.Read(ref _daemonFilters))
        {
            if (MqttTopicFilterComparer.Compare(topic, filter) == MqttTopicFilterCompareResult.IsMatch)
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>The outcome of <see cref="EmbeddedBrokerAcl.DecideConnect"/>.</summary>
public enum ConnectVerdict
{
    /// <summary>The daemon's own client: may do anything.</summary>
    Daemon,

    /// <summary>Another client, accepted: bound by the ACL.</summary>
    Client,

    /// <summary>Refused: the daemon's client id without the daemon's secret.</summary>
    ReservedClientId,

    /// <summary>Refused: credentials are required and these are missing or wrong.</summary>
    BadCredentials,
}

/// <summary>
/// The user name and password other clients must present (<c>Mqtt:EmbeddedBroker:Username</c> and
/// <c>Password</c>/<c>PasswordFile</c>). Only their SHA-256 hashes are kept, compared in constant time
/// (hashing first also hides the length); neither is ever logged.
/// </summary>
public sealed class EmbeddedBrokerCredentials
{
    private readonly byte[] _usernameHash;
    private readonly byte[] _passwordHash;

    /// <summary>Creates the credentials.</summary>
    public EmbeddedBrokerCredentials(string username, string password)
    {
        ArgumentException.ThrowIfNullOrEmpty(username);
        ArgumentException.ThrowIfNullOrEmpty(password);
        _usernameHash = SHA256.HashData(Encoding.UTF8.GetBytes(username));
        _passwordHash = SHA256.HashData(Encoding.UTF8.GetBytes(password));
    }

    /// <summary>
    /// The configured credentials; null when <c>Mqtt:EmbeddedBroker:Username</c> is empty (options
    /// validation has made sure that only happens on loopback). A password file is read now.
    /// </summary>
    public static EmbeddedBrokerCredentials? FromOptions(EmbeddedBrokerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Username.Length == 0)
        {
            return null;
        }

        var password = options.Password;
        if (options.PasswordFile.Length > 0)
        {
            try
            {
                using var reader = new StreamReader(options.PasswordFile, Encoding.UTF8);
                password = reader.ReadLine() ?? string.Empty;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new StartupException($"Mqtt:EmbeddedBroker:PasswordFile: '{options.PasswordFile}' cannot be read: {ex.Message}", StartupException.ConfigError, ex);
            }

            if (password.Length == 0)
            {
                throw new StartupException($"Mqtt:EmbeddedBroker:PasswordFile: the first line of '{options.PasswordFile}' is empty (it must hold the password)", StartupException.ConfigError);
            }
        }

        return new EmbeddedBrokerCredentials(options.Username, password);
    }

    /// <summary>Whether a CONNECT's user name and password are these.</summary>
    public bool Matches(string? username, ReadOnlySpan<byte> password)
    {
        var user = SHA256.HashData(Encoding.UTF8.GetBytes(username ?? string.Empty));
        var pass = SHA256.HashData(password);
        // Both compared, not short-circuited: the time says nothing about which one was wrong.
        return CryptographicOperations.FixedTimeEquals(user, _usernameHash) & CryptographicOperations.FixedTimeEquals(pass, _passwordHash);
    }
}
