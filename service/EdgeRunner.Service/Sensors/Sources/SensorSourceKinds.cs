using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Sensors.Sources;

/// <summary>
/// What a source kind is given to open one stream's source: the stream, its model's layout, the clock and
/// loggers, and the service's hooks (the state of a supervised device, the MQTT ingest).
/// </summary>
internal sealed class SensorSourceContext
{
    /// <summary>The stream id (<c>Sensors:{id}</c>).</summary>
    public required string StreamId { get; init; }

    /// <summary>Samples per channel in one step of the model (what a simulated source delivers per read).</summary>
    public required int BlockSamples { get; init; }

    /// <summary>The model's sample rate: used when the source's own rate is 0.</summary>
    public required double ModelRateHz { get; init; }

    /// <summary>The model's channel names, in order (what a device that cannot be opened yet is taken to deliver).</summary>
    public required IReadOnlyList<string> Channels { get; init; }

    /// <summary>Clock for pacing and timestamps.</summary>
    public required TimeProvider TimeProvider { get; init; }

    /// <summary>Loggers.</summary>
    public required ILoggerFactory LoggerFactory { get; init; }

    /// <summary>The stream's logger.</summary>
    public required ILogger Logger { get; init; }

    /// <summary>Called with each supervised device source once built: the service publishes its state.</summary>
    public required Action<ReopeningSensorSource> Watch { get; init; }

    /// <summary>Opens the stream's MQTT ingest (the service owns the subscriptions and routes).</summary>
    public required Func<ISensorSource> OpenMqttIngest { get; init; }

    /// <summary>
    /// A device-backed source (I2C, GPIO, serial, live audio) that may be absent now or go away later:
    /// it is opened through a <see cref="ReopeningSensorSource"/>, which retries with backoff while the
    /// daemon runs, and its state is published retained on <c>.../sensors/{stream}/state</c> (<see cref="Watch"/>).
    /// </summary>
    /// <param name="device">The device, for logs and states (<c>serial port /dev/ttyUSB0</c>).</param>
    /// <param name="open">Opens the device; throws when it cannot.</param>
    /// <param name="sampleRateHz">The rate the device will deliver, for a device not opened yet.</param>
    public ReopeningSensorSource Supervise(string device, Func<ISensorSource> open, double sampleRateHz)
    {
        var source = new ReopeningSensorSource(device, open, Channels, sampleRateHz, TimeProvider, Logger);
        if (source.InitialError is { } error && IsInstallationProblem(error))
        {
            // A missing ffmpeg/arecord or libgpiod will not appear by waiting: stop startup saying what to
            // install. An absent device is waited for by the wrapper.
            source.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw new StartupException($"Sensors:{StreamId}:Source: {error.Message}", StartupException.ConfigError, error);
        }

        Watch(source);
        return source;
    }

    /// <summary>The rate a source runs at: its own when set (above 0), else the model's.</summary>
    public double RateOr(double configuredHz) => configuredHz > 0 ? configuredHz : ModelRateHz;

    private static bool IsInstallationProblem(Exception error)
    {
        for (var e = (Exception?)error; e is not null; e = e.InnerException)
        {
            if (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException or PlatformNotSupportedException
                || (e is System.ComponentModel.Win32Exception win32 && win32.NativeErrorCode == 2)) // ENOENT starting a program
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>
/// One kind of sensor source (<c>Sensors:{id}:Source:Kind</c>): its options type (only its keys), their
/// validation, how the source is built, and how many channels its configuration gives. Each kind lives in its
/// own file next to this one and is listed once in <see cref="SensorSourceKinds"/>.
/// </summary>
internal interface ISensorSourceKind
{
    /// <summary>The kind's <c>Kind</c> value.</summary>
    SensorSourceKind Kind { get; }

    /// <summary>The kind's options type: <c>Sensors:{id}:Source</c> is bound to it, and its public properties are the kind's keys.</summary>
    Type OptionsType { get; }

    /// <summary>Adds one error per bad key, each named under <paramref name="key"/> (<c>Sensors:{id}:Source</c>).</summary>
    void Validate(string key, SensorSourceOptions options, ValidationErrors errors);

    /// <summary>
    /// Opens the stream's source. Throws <see cref="SensorSourceException"/> (prefixed with the source's key by
    /// the caller) when the configured file, device or port cannot be used, <see cref="StartupException"/> for
    /// an installation problem.
    /// </summary>
    ISensorSource Create(SensorSourceOptions options, SensorSourceContext context);

    /// <summary>
    /// How many channels the configuration gives (null for kinds whose source says it once opened): checked
    /// against the model from the configuration too, since a device absent at start must not pass a check it
    /// would fail present.
    /// </summary>
    int? ConfiguredChannels(SensorSourceOptions options);
}

/// <summary>A kind over its own options type <typeparamref name="TOptions"/>.</summary>
internal abstract class SensorSourceKindBase<TOptions> : ISensorSourceKind
    where TOptions : SensorSourceOptions, new()
{
    public SensorSourceKind Kind { get; } = new TOptions().Kind;

    public Type OptionsType => typeof(TOptions);

    public void Validate(string key, SensorSourceOptions options, ValidationErrors errors) => Validate(key, (TOptions)options, errors);

    public ISensorSource Create(SensorSourceOptions options, SensorSourceContext context) => Create((TOptions)options, context);

    public int? ConfiguredChannels(SensorSourceOptions options) => ConfiguredChannels((TOptions)options);

    /// <inheritdoc cref="ISensorSourceKind.Validate"/>
    protected abstract void Validate(string key, TOptions options, ValidationErrors errors);

    /// <inheritdoc cref="ISensorSourceKind.Create"/>
    protected abstract ISensorSource Create(TOptions options, SensorSourceContext context);

    /// <inheritdoc cref="ISensorSourceKind.ConfiguredChannels"/>
    protected virtual int? ConfiguredChannels(TOptions options) => null;
}

/// <summary>The registry of sensor source kinds, keyed by <see cref="SensorSourceKind"/>.</summary>
internal static class SensorSourceKinds
{
    /// <summary>Every kind, by its <c>Kind</c> value.</summary>
    public static IReadOnlyDictionary<SensorSourceKind, ISensorSourceKind> All { get; } = new ISensorSourceKind[]
    {
        new SimulatedVibrationSourceKind(),
        new CsvSourceKind(),
        new I2cSourceKind(),
        new GpioSourceKind(),
        new AudioSourceKind(),
        new SerialSourceKind(),
        new MqttSourceKind(),
    }.ToDictionary(k => k.Kind);

    /// <summary>The kind of a source written without a <c>Kind</c> key.</summary>
    public const SensorSourceKind DefaultKind = SensorSourceKind.SimulatedVibration;

    /// <summary>The kind of <paramref name="options"/>. Throws <see cref="StartupException"/> for a kind not registered.</summary>
    public static ISensorSourceKind Of(SensorSourceOptions options, string streamId) =>
        All.TryGetValue(options.Kind, out var kind)
            ? kind
            : throw new StartupException($"Sensors:{streamId}:Source:Kind: unsupported kind {options.Kind}", StartupException.ConfigError);

    /// <summary>Opens the source of a stream through its kind (see <see cref="ISensorSourceKind.Create"/>).</summary>
    public static ISensorSource Create(SensorSourceOptions options, SensorSourceContext context) =>
        Of(options, context.StreamId).Create(options, context);

    /// <summary>How many channels the configuration of a source gives (see <see cref="ISensorSourceKind.ConfiguredChannels"/>).</summary>
    public static int? ConfiguredChannels(SensorSourceOptions options, string streamId) =>
        Of(options, streamId).ConfiguredChannels(options);

    /// <summary>Validates a stream's source through its kind; <paramref name="key"/> is <c>Sensors:{id}:Source</c>.</summary>
    public static void Validate(string key, SensorSourceOptions options, ValidationErrors errors)
    {
        if (All.TryGetValue(options.Kind, out var kind))
        {
            kind.Validate(key, options, errors);
        }
        else
        {
            errors.Add($"{key}:Kind", $"must be one of {string.Join(", ", All.Keys)} (got {options.Kind})");
        }
    }

    /// <summary>
    /// Binds <c>Sensors:{id}:Source</c> to its kind's options type (the binder cannot bind one property to
    /// several types): the <c>Kind</c> key picks the type, <see cref="DefaultKind"/> without one. Unknown keys
    /// and values that do not convert throw as the binder does for every section, naming the key.
    /// </summary>
    public static SensorSourceOptions Bind(IConfigurationSection source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var kindKey = source.GetSection(nameof(SensorSourceOptions.Kind));
        var kindValue = kindKey.Get<SensorSourceKind?>() ?? DefaultKind;
        if (!All.TryGetValue(kindValue, out var kind))
        {
            throw new InvalidOperationException($"Failed to convert configuration value at '{kindKey.Path}' to a source kind: '{kindKey.Value}' is none of {string.Join(", ", All.Keys)}");
        }

        var options = (SensorSourceOptions)Activator.CreateInstance(kind.OptionsType)!;
        source.Bind(options, o => o.ErrorOnUnknownConfiguration = true);
        return options;
    }
}

/// <summary>
/// Binds every stream's <c>Source</c> to its kind's options type, right after the <c>Sensors</c> section is
/// bound (which leaves <see cref="SensorStreamOptions.Source"/> alone: it has no public setter).
/// </summary>
internal sealed class SensorSourceBinder(IConfiguration configuration) : IConfigureOptions<SensorsOptions>
{
    public void Configure(SensorsOptions options)
    {
        var sensors = configuration.GetSection(SensorsOptions.SectionName);
        foreach (var (id, stream) in options)
        {
            stream.Source = SensorSourceKinds.Bind(sensors.GetSection(id).GetSection(nameof(SensorStreamOptions.Source)));
        }
    }
}
