using System.Globalization;
using System.Net;
using EdgeRunner.Models.Inference;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Configuration;

/// <summary>Collects "{key}: {problem}" messages.</summary>
internal sealed class ValidationErrors
{
    private readonly List<string> _errors = [];

    public void Add(string key, string problem) => _errors.Add($"{key}: {problem}");

    public void Positive(string key, double value)
    {
        if (!(value > 0) || double.IsInfinity(value))
        {
            Add(key, $"must be greater than 0 (got {value.ToString(CultureInfo.InvariantCulture)})");
        }
    }

    public void Range(string key, double value, double min, double max)
    {
        if (!(value >= min && value <= max))
        {
            Add(key, $"must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)} (got {value.ToString(CultureInfo.InvariantCulture)})");
        }
    }

    public ValidateOptionsResult ToResult() => _errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(_errors);
}

internal sealed class DeviceOptionsValidator : IValidateOptions<DeviceOptions>
{
    public ValidateOptionsResult Validate(string? name, DeviceOptions options)
    {
        var e = new ValidationErrors();
        if (options.Id.AsSpan().IndexOfAny("+#/") >= 0)
        {
            e.Add("Device:Id", $"must not contain MQTT topic characters '+', '#' or '/' (got '{options.Id}')");
        }

        e.Range("Device:ResultLogIntervalSeconds", options.ResultLogIntervalSeconds, 0, 86400);
        return e.ToResult();
    }
}

internal sealed class MqttOptionsValidator : IValidateOptions<MqttOptions>
{
    public ValidateOptionsResult Validate(string? name, MqttOptions options)
    {
        var e = new ValidationErrors();
        e.Range("Mqtt:Port", options.Port, 1, 65535);
        e.Range("Mqtt:KeepAliveSeconds", options.KeepAliveSeconds, 0, 65535);
        e.Positive("Mqtt:ConnectTimeoutSeconds", options.ConnectTimeoutSeconds);
        e.Positive("Mqtt:PublishTimeoutSeconds", options.PublishTimeoutSeconds);
        e.Positive("Mqtt:ReconnectMinDelaySeconds", options.ReconnectMinDelaySeconds);
        e.Positive("Mqtt:ReconnectMaxDelaySeconds", options.ReconnectMaxDelaySeconds);
        if (options.ReconnectMaxDelaySeconds < options.ReconnectMinDelaySeconds)
        {
            e.Add("Mqtt:ReconnectMaxDelaySeconds", "must not be smaller than Mqtt:ReconnectMinDelaySeconds");
        }

        e.Range("Mqtt:QueueCapacity", options.QueueCapacity, 1, 10_000_000);
        e.Range("Mqtt:QueueMaxBytes", options.QueueMaxBytes, 1024, 16L * 1024 * 1024 * 1024);
        e.Range("Mqtt:MaxIncomingPacketBytes", options.MaxIncomingPacketBytes, 1024, 268_435_455);
        e.Range("Mqtt:QualityOfService", options.QualityOfService, 0, 2);
        e.Range("Mqtt:DrainTimeoutSeconds", options.DrainTimeoutSeconds, 0, 3600);
        e.Range("Mqtt:MaxInFlight", options.MaxInFlight, 1, 65535);
        e.Range("Mqtt:Spool:MaxMegabytes", options.Spool.MaxMegabytes, 1, 1024 * 1024);
        e.Range("Mqtt:Spool:MaxAgeHours", options.Spool.MaxAgeHours, 0, 24 * 3650);
        e.Range("Mqtt:Spool:FlushIntervalSeconds", options.Spool.FlushIntervalSeconds, 0, 3600);
        if (!Enum.IsDefined(options.Spool.WhenFull))
        {
            e.Add("Mqtt:Spool:WhenFull", $"must be DropOldest or DropNewest (got '{options.Spool.WhenFull}')");
        }
        if (string.IsNullOrWhiteSpace(options.TopicPrefix) || options.TopicPrefix.AsSpan().IndexOfAny("+#") >= 0)
        {
            e.Add("Mqtt:TopicPrefix", $"must be a non-empty topic without wildcards (got '{options.TopicPrefix}')");
        }

        if (!string.IsNullOrEmpty(options.PasswordFile) && !File.Exists(options.PasswordFile))
        {
            e.Add("Mqtt:PasswordFile", $"file '{options.PasswordFile}' does not exist");
        }

        ValidatePasswordSources(e, options);
        ValidateTls(e, options);
        Commands.CommandsOptions.Validate(options.Commands, e);

        if (string.IsNullOrWhiteSpace(options.Host))
        {
            e.Range("Mqtt:EmbeddedBroker:Port", options.EmbeddedBroker.Port, 1, 65535);
            if (!IPAddress.TryParse(options.EmbeddedBroker.BindAddress, out var bindAddress))
            {
                e.Add("Mqtt:EmbeddedBroker:BindAddress", $"is not an IP address (got '{options.EmbeddedBroker.BindAddress}')");
            }

            ValidateEmbeddedBrokerCredentials(e, options.EmbeddedBroker, bindAddress);
            ValidateEmbeddedBrokerTls(e, options.EmbeddedBroker);
        }

        HomeAssistant.HomeAssistantOptions.Validate(e, options.HomeAssistant);
        return e.ToResult();
    }

    // One source of the password, and a credential name that stays inside the credentials directory.
    private static void ValidatePasswordSources(ValidationErrors e, MqttOptions options)
    {
        const string Key = "Mqtt:PasswordCredential";
        var sources = (options.Password.Length > 0 ? 1 : 0) + (options.PasswordFile.Length > 0 ? 1 : 0) + (options.PasswordCredential.Length > 0 ? 1 : 0);
        if (sources > 1)
        {
            e.Add("Mqtt:Password", "set only one of Password, PasswordFile and PasswordCredential");
        }

        if (options.PasswordCredential.Length == 0)
        {
            return;
        }

        if (options.PasswordCredential is "." or ".." || options.PasswordCredential.Contains('/', StringComparison.Ordinal))
        {
            e.Add(Key, $"must be a credential name, not a path (got '{options.PasswordCredential}'); use PasswordFile for a path");
        }
        else if (Mqtt.MqttSecrets.CredentialPath(options.PasswordCredential) is not { } path)
        {
            e.Add(Key, $"${Mqtt.MqttSecrets.CredentialsDirectoryVariable} is not set: run the daemon from a systemd unit with LoadCredential={options.PasswordCredential}:/path/to/file, or use PasswordFile");
        }
        else if (!File.Exists(path))
        {
            e.Add(Key, $"credential '{options.PasswordCredential}' not found ('{path}' does not exist; is it in the unit's LoadCredential=?)");
        }
    }

    private static void ValidateTls(ValidationErrors e, MqttOptions options)
    {
        const string Key = "Mqtt:Tls";
        var tls = options.Tls;
        if (!tls.Enabled)
        {
            // A file or a waiver without TLS is a mistake: the daemon would silently connect in clear text.
            foreach (var (name, set) in new[] { ("CaFile", tls.CaFile.Length > 0), ("CertFile", tls.CertFile.Length > 0), ("KeyFile", tls.KeyFile.Length > 0), ("AllowUntrusted", tls.AllowUntrusted) })
            {
                if (set)
                {
                    e.Add($"{Key}:{name}", $"is set but {Key}:Enabled is false: set Enabled true to connect over TLS");
                }
            }

            return;
        }

        if (string.IsNullOrWhiteSpace(options.Host))
        {
            e.Add($"{Key}:Enabled", "applies to an external broker (Mqtt:Host); the daemon reaches its embedded broker over loopback (for a TLS listener of the embedded broker see Mqtt:EmbeddedBroker:Tls)");
            return;
        }

        if ((tls.CertFile.Length > 0) != (tls.KeyFile.Length > 0))
        {
            e.Add(tls.CertFile.Length > 0 ? $"{Key}:KeyFile" : $"{Key}:CertFile", "CertFile and KeyFile go together (mutual TLS needs the certificate and its private key)");
            return;
        }

        foreach (var (name, path) in new[] { ("CaFile", tls.CaFile), ("CertFile", tls.CertFile), ("KeyFile", tls.KeyFile) })
        {
            if (path.Length > 0 && !File.Exists(path))
            {
                e.Add($"{Key}:{name}", $"file '{path}' does not exist");
                return;
            }
        }

        // Read them as every connect will: unreadable files, no certificate, a key that is not the certificate's.
        using var material = Mqtt.MqttTlsMaterial.TryLoad(tls, out var error);
        if (error is not null)
        {
            var colon = error.IndexOf(": ", StringComparison.Ordinal);
            e.Add(error[..colon], error[(colon + 2)..]);
        }
    }

    private static void ValidateEmbeddedBrokerTls(ValidationErrors e, EmbeddedBrokerOptions broker)
    {
        const string Key = "Mqtt:EmbeddedBroker:Tls";
        var tls = broker.Tls;
        if (tls.Port == 0)
        {
            if (tls.CertFile.Length > 0 || tls.KeyFile.Length > 0)
            {
                e.Add($"{Key}:Port", "is required with CertFile and KeyFile (the TLS listener's port, e.g. 8883)");
            }

            return;
        }

        e.Range($"{Key}:Port", tls.Port, 1, 65535);
        if (tls.Port == broker.Port)
        {
            e.Add($"{Key}:Port", $"must differ from Mqtt:EmbeddedBroker:Port ({broker.Port}): the TLS listener is a second one");
        }

        if (tls.CertFile.Length == 0 || tls.KeyFile.Length == 0)
        {
            e.Add(tls.CertFile.Length == 0 ? $"{Key}:CertFile" : $"{Key}:KeyFile", "the TLS listener needs CertFile and KeyFile (PEM)");
            return;
        }

        if (Mqtt.EmbeddedMqttBroker.TryLoadCertificate(tls, out var error) is { } certificate)
        {
            certificate.Dispose();
        }
        else
        {
            e.Add(error.Key, error.Problem);
        }
    }

    // Beyond loopback anyone on the network can reach the broker: it must not accept anonymous clients.
    private static void ValidateEmbeddedBrokerCredentials(ValidationErrors e, EmbeddedBrokerOptions broker, IPAddress? bindAddress)
    {
        const string Key = "Mqtt:EmbeddedBroker";
        var hasPassword = broker.Password.Length > 0 || broker.PasswordFile.Length > 0;
        if (broker.Username.Length == 0)
        {
            if (bindAddress is not null && !IPAddress.IsLoopback(bindAddress))
            {
                e.Add($"{Key}:Username", $"is required when {Key}:BindAddress is not a loopback address (got '{broker.BindAddress}'): clients from the network must authenticate; set Username and Password or PasswordFile");
            }
            else if (hasPassword)
            {
                e.Add($"{Key}:Username", "is required when a Password or PasswordFile is set");
            }

            return;
        }

        if (broker.Password.Length > 0 && broker.PasswordFile.Length > 0)
        {
            e.Add($"{Key}:Password", "must not be set together with PasswordFile");
        }
        else if (!hasPassword)
        {
            e.Add($"{Key}:Password", $"is required with {Key}:Username (or set PasswordFile)");
        }
        else if (broker.PasswordFile.Length > 0 && !File.Exists(broker.PasswordFile))
        {
            e.Add($"{Key}:PasswordFile", $"file '{broker.PasswordFile}' does not exist");
        }
    }
}

internal sealed class ModelsOptionsValidator : IValidateOptions<ModelsOptions>
{
    public ValidateOptionsResult Validate(string? name, ModelsOptions options)
    {
        var e = new ValidationErrors();
        foreach (var (id, model) in options)
        {
            var key = $"Models:{id}";
            if (!string.IsNullOrEmpty(model.Manifest))
            {
                foreach (var (setting, isSet) in new[] { ("Path", model.Path.Length > 0), ("Labels", model.Labels.Length > 0), ("Task", model.Task is not null), ("Preprocess", model.Preprocess is not null) })
                {
                    if (isSet)
                    {
                        e.Add($"{key}:{setting}", "must not be set together with Manifest (the manifest defines it)");
                    }
                }

                if (FileProblem(model.Manifest, ModelFiles.MaxTextBytes) is { } problem)
                {
                    e.Add($"{key}:Manifest", $"manifest '{model.Manifest}' {problem}");
                }
                else
                {
                    try
                    {
                        Catalog.ModelCatalog.Resolve(id, model);
                    }
                    catch (StartupException ex)
                    {
                        e.Add($"{key}:Manifest", ex.Message[(ex.Message.IndexOf(": ", StringComparison.Ordinal) + 2)..]);
                    }
                }
            }
            else if (string.IsNullOrWhiteSpace(model.Path))
            {
                e.Add($"{key}:Path", "is required (or give a Manifest)");
            }
            else if (FileProblem(model.Path, ModelFiles.MaxModelBytes) is { } problem)
            {
                e.Add($"{key}:Path", $"model file '{model.Path}' {problem}");
            }

            if (!string.IsNullOrEmpty(model.Labels) && FileProblem(model.Labels, ModelFiles.MaxTextBytes) is { } labelProblem)
            {
                e.Add($"{key}:Labels", $"label file '{model.Labels}' {labelProblem}");
            }

            foreach (var provider in model.ExecutionProviders ?? [])
            {
                if (!EdgeRunner.Models.Inference.ExecutionProviders.Known.ContainsKey(provider))
                {
                    e.Add($"{key}:ExecutionProviders", $"unknown provider '{provider}' (known: {string.Join(", ", EdgeRunner.Models.Inference.ExecutionProviders.Known.Keys)})");
                }
            }

            e.Range($"{key}:IntraOpThreads", model.IntraOpThreads, 0, 1024);
            if (!Enum.IsDefined(model.Spinning))
            {
                e.Add($"{key}:Spinning", $"'{(int)model.Spinning}' is not one of {string.Join(", ", Enum.GetNames<ModelSpinning>())}");
            }

            e.Range($"{key}:MaxBatch", model.MaxBatch, 1, 4096);
            e.Range($"{key}:BatchWaitMilliseconds", model.BatchWaitMilliseconds, 0, 10_000);
            e.Range($"{key}:DeviceId", model.DeviceId, 0, 64);
            ValidateProviderOptions(e, $"{key}:ProviderOptions", model.ProviderOptions);
            if (model.Preprocess is { } p)
            {
                e.Range($"{key}:Preprocess:Width", p.Width, 1, 8192);
                e.Range($"{key}:Preprocess:Height", p.Height, 1, 8192);
                e.Range($"{key}:Preprocess:ResizeShorterSide", p.ResizeShorterSide, 0, 16384);
                e.Range($"{key}:Preprocess:PadValue", p.PadValue, 0, 255);
                if (p.Mean is { Length: not 3 })
                {
                    e.Add($"{key}:Preprocess:Mean", $"needs exactly 3 values (got {p.Mean.Length})");
                }

                if (p.Std is { Length: not 3 })
                {
                    e.Add($"{key}:Preprocess:Std", $"needs exactly 3 values (got {p.Std.Length})");
                }
                else if (p.Std is not null && p.Std.Any(s => s == 0))
                {
                    e.Add($"{key}:Preprocess:Std", "values must not be 0");
                }
            }

            if (model.Detection is { } d)
            {
                if (d.ScoreThreshold is { } score)
                {
                    e.Range($"{key}:Detection:ScoreThreshold", score, 0, 1);
                }

                if (d.IouThreshold is { } iou)
                {
                    e.Range($"{key}:Detection:IouThreshold", iou, 0, 1);
                }

                if (d.MaxDetections is { } max)
                {
                    e.Range($"{key}:Detection:MaxDetections", max, 1, 10000);
                }
            }

            e.Range($"{key}:Classification:TopK", model.Classification.TopK, 1, 100);
        }

        return e.ToResult();
    }

    private static void ValidateProviderOptions(ValidationErrors e, string key, ProviderOptions options)
    {
        var trt = options.TensorRt;
        e.Range($"{key}:TensorRt:WorkspaceMegabytes", trt.WorkspaceMegabytes, 0, 1 << 20);
        if (!string.IsNullOrWhiteSpace(trt.EngineCacheDirectory) && CacheDirectoryProblem(trt.EngineCacheDirectory) is { } cacheProblem)
        {
            e.Add($"{key}:TensorRt:EngineCacheDirectory", cacheProblem);
        }

        if (!Enum.IsDefined(options.Cuda.ArenaExtendStrategy))
        {
            e.Add($"{key}:Cuda:ArenaExtendStrategy", $"must be NextPowerOfTwo or SameAsRequested (got {(int)options.Cuda.ArenaExtendStrategy})");
        }

        e.Range($"{key}:Cuda:MemoryLimitMegabytes", options.Cuda.MemoryLimitMegabytes, 0, 1 << 20);
        if (EdgeRunner.Models.Inference.ExecutionProviders.OpenVinoDeviceTypeProblem(options.OpenVino.DeviceType) is { } deviceProblem)
        {
            e.Add($"{key}:OpenVino:DeviceType", deviceProblem);
        }

        e.Range($"{key}:Xnnpack:Threads", options.Xnnpack.Threads, 0, 1024);
    }

    /// <summary>
    /// Why TensorRT could not keep engines in <paramref name="directory"/>, or null: it (or, when missing, the nearest
    /// folder above it, where it will be created) must be a folder this process can write. Checked with a probe file
    /// that is deleted at once; nothing is created.
    /// </summary>
    internal static string? CacheDirectoryProblem(string directory)
    {
        string full;
        try
        {
            full = Path.GetFullPath(directory);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return $"'{directory}' is not a valid path: {ex.Message}";
        }

        var existing = full;
        while (!Directory.Exists(existing))
        {
            if (File.Exists(existing))
            {
                return existing == full
                    ? $"'{directory}' is a file, not a folder"
                    : $"'{directory}' cannot be created: '{existing}' is a file";
            }

            existing = Path.GetDirectoryName(existing) ?? "/";
        }

        try
        {
            using var probe = new FileStream(Path.Combine(existing, $".edgerunner-write-probe-{Environment.ProcessId}"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return existing == full
                ? $"folder '{directory}' is not writable: {ex.Message}"
                : $"'{directory}' cannot be created: '{existing}' is not writable: {ex.Message}";
        }
    }

    /// <summary>Why a model's file cannot be used (not a regular file, too large, missing), or null; decided without opening it.</summary>
    private static string? FileProblem(string path, long maxBytes) => ModelFiles.Problem(path, maxBytes) switch
    {
        "does not exist" => $"does not exist (relative paths are resolved from {Environment.CurrentDirectory}, then {AppContext.BaseDirectory})",
        var problem => problem,
    };

    /// <summary>
    /// The models for the other sections' cross-checks, or null when the Models section itself is invalid:
    /// its errors are reported once, by its own validator, and must not repeat (nor hide the section's
    /// own errors) through every validator that looks a model up.
    /// </summary>
    internal static ModelsOptions? ValidOrNull(IOptions<ModelsOptions> models)
    {
        try
        {
            return models.Value;
        }
        catch (OptionsValidationException)
        {
            return null;
        }
    }
}

internal sealed class CamerasOptionsValidator(IOptions<ModelsOptions> models) : IValidateOptions<CamerasOptions>
{
    public ValidateOptionsResult Validate(string? name, CamerasOptions options)
    {
        var e = new ValidationErrors();
        foreach (var (id, camera) in options)
        {
            var key = $"Cameras:{id}";
            if (id.AsSpan().IndexOfAny("+#/ ") >= 0)
            {
                e.Add(key, "camera ids must not contain '+', '#', '/' or spaces (they are MQTT topic levels)");
            }

            if (!camera.Enabled)
            {
                continue;
            }

            if (string.IsNullOrWhiteSpace(camera.Model))
            {
                e.Add($"{key}:Model", "is required");
            }
            else if (ModelsOptionsValidator.ValidOrNull(models) is { } known && !known.ContainsKey(camera.Model))
            {
                e.Add($"{key}:Model", $"no model named '{camera.Model}' in Models (have: {string.Join(", ", known.Keys)})");
            }

            e.Positive($"{key}:Fps", camera.Fps);
            e.Range($"{key}:QueueCapacity", camera.QueueCapacity, 1, 1000);
            e.Range($"{key}:DetectFps", camera.DetectFps, 0, 1000);

            // Every kind: the capture loop restarts its source with this backoff after an unexpected failure.
            e.Positive($"{key}:ReconnectMinDelaySeconds", camera.ReconnectMinDelaySeconds);
            e.Positive($"{key}:ReconnectMaxDelaySeconds", camera.ReconnectMaxDelaySeconds);

            // Checked even while disabled: switching a section on later (one environment variable) must not
            // be the moment a long-standing typo in it surfaces.
            var motion = camera.Motion;
            e.Range($"{key}:Motion:Threshold", motion.Threshold, 0, 255);
            e.Range($"{key}:Motion:MinAreaPercent", motion.MinAreaPercent, 0, 100);
            e.Range($"{key}:Motion:DownscaleWidth", motion.DownscaleWidth, 8, 1920);
            e.Range($"{key}:Motion:ForcedIntervalSeconds", motion.ForcedIntervalSeconds, 0, 86400);
            var snapshots = camera.Snapshots;
            e.Range($"{key}:Snapshots:MinIntervalSeconds", snapshots.MinIntervalSeconds, 0, 86400);
            e.Range($"{key}:Snapshots:Quality", snapshots.Quality, 1, 100);
            e.Range($"{key}:Snapshots:MaxWidth", snapshots.MaxWidth, 16, 8192);
            camera.Source.Validate(key, camera, e);
        }

        return e.ToResult();
    }
}

internal sealed class SensorsOptionsValidator(IOptions<ModelsOptions> models) : IValidateOptions<SensorsOptions>
{
    public ValidateOptionsResult Validate(string? name, SensorsOptions options)
    {
        var e = new ValidationErrors();
        foreach (var (id, stream) in options)
        {
            var key = $"Sensors:{id}";
            if (id.AsSpan().IndexOfAny("+#/ ") >= 0)
            {
                e.Add(key, "stream ids must not contain '+', '#', '/' or spaces (they are MQTT topic levels)");
            }

            if (!stream.Enabled)
            {
                continue;
            }

            if (string.IsNullOrWhiteSpace(stream.Model))
            {
                e.Add($"{key}:Model", "is required");
            }
            else if (ModelsOptionsValidator.ValidOrNull(models) is not { } known)
            {
                // The Models section's own errors come first (reported once, by its validator).
            }
            else if (!known.TryGetValue(stream.Model, out var model))
            {
                e.Add($"{key}:Model", $"no model named '{stream.Model}' in Models (have: {string.Join(", ", known.Keys)})");
            }
            else if (string.IsNullOrEmpty(model.Manifest))
            {
                e.Add($"{key}:Model", $"sensor streams need a model with a Manifest (its state pairs and stream layout); Models:{stream.Model} has none");
            }

            e.Range($"{key}:Source:SampleRateHz", stream.Source.SampleRateHz, 0, 1_000_000);
            e.Range($"{key}:GapResetSeconds", stream.GapResetSeconds, 0, 1e9);
            if (!(stream.MinValue < stream.MaxValue))
            {
                e.Add($"{key}:MinValue", $"must be smaller than {key}:MaxValue");
            }

            // Each kind checks its own keys (Sensors/Sources/{Kind}SourceKind.cs).
            Sensors.Sources.SensorSourceKinds.Validate($"{key}:Source", stream.Source, e);
        }

        Sensors.MqttFilterOverlap.Validate(options, e);
        return e.ToResult();
    }
}

/// <summary>
/// Points the process at <see cref="OnnxRuntimeOptions.LibraryPath"/> when set. It must run before anything
/// else touches ONNX Runtime (it is resolved first in EdgeRunnerHost.FindConfigurationErrors):
/// after that the process has its library for good.
/// </summary>
internal sealed class OnnxRuntimeOptionsValidator : IValidateOptions<OnnxRuntimeOptions>
{
    public ValidateOptionsResult Validate(string? name, OnnxRuntimeOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.LibraryPath))
        {
            return ValidateOptionsResult.Success;
        }

        try
        {
            EdgeRunner.Models.Inference.OnnxRuntimeLibrary.Use(options.LibraryPath);
            return ValidateOptionsResult.Success;
        }
        catch (EdgeRunner.Models.Inference.OnnxRuntimeLibraryException ex)
        {
            return ValidateOptionsResult.Fail($"OnnxRuntime:LibraryPath: {ex.Message}");
        }
    }
}

internal sealed class StateOptionsValidator : IValidateOptions<StateOptions>
{
    public ValidateOptionsResult Validate(string? name, StateOptions options)
    {
        var e = new ValidationErrors();
        e.Positive("State:CheckpointIntervalSeconds", options.CheckpointIntervalSeconds);
        e.Range("State:DynamicStreamRetentionDays", options.DynamicStreamRetentionDays, 0, 36500);
        if (!string.IsNullOrEmpty(options.Directory) && File.Exists(options.Directory))
        {
            e.Add("State:Directory", $"'{options.Directory}' is a file, not a folder");
        }

        return e.ToResult();
    }
}

internal sealed class MetricsOptionsValidator : IValidateOptions<MetricsOptions>
{
    public ValidateOptionsResult Validate(string? name, MetricsOptions options)
    {
        var e = new ValidationErrors();
        if (options.HealthIntervalSeconds != 0)
        {
            e.Range("Metrics:HealthIntervalSeconds", options.HealthIntervalSeconds, 1, 86400);
        }

        e.Range("Metrics:Prometheus:Port", options.Prometheus.Port, 0, 65535);
        if (!IPAddress.TryParse(options.Prometheus.Address, out _))
        {
            e.Add("Metrics:Prometheus:Address", $"must be an IP address, e.g. 127.0.0.1 (got '{options.Prometheus.Address}')");
        }

        return e.ToResult();
    }
}
