using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Preprocessing;
using EdgeRunner.Service.Vision.Sources;

namespace EdgeRunner.Service.Configuration;

/// <summary>Section <c>Device</c>: who this daemon is.</summary>
public sealed class DeviceOptions
{
    public const string SectionName = "Device";

    /// <summary>Device id used in MQTT topics; empty means the host name.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>At most one result line per camera per this many seconds is logged at Information (0 = every result).</summary>
    public double ResultLogIntervalSeconds { get; set; } = 1;
}

/// <summary>Section <c>Mqtt</c>: the broker connection and topics.</summary>
public sealed class MqttOptions
{
    public const string SectionName = "Mqtt";

    /// <summary>Broker host. Empty: start the embedded broker (<see cref="EmbeddedBroker"/>) and publish to it.</summary>
    public string Host { get; set; } = string.Empty;

    /// <summary>Broker TCP port.</summary>
    public int Port { get; set; } = 1883;

    /// <summary>MQTT client id; empty means "edgerunner-{device id}".</summary>
    public string ClientId { get; set; } = string.Empty;

    /// <summary>User name; empty for anonymous.</summary>
    public string Username { get; set; } = string.Empty;

    /// <summary>Password (prefer <see cref="PasswordFile"/>, which keeps it out of the config).</summary>
    public string Password { get; set; } = string.Empty;

    /// <summary>File whose first line is the password.</summary>
    public string PasswordFile { get; set; } = string.Empty;

    /// <summary>
    /// Name of a systemd credential holding the password: read from <c>$CREDENTIALS_DIRECTORY/{name}</c>, which
    /// systemd fills from the unit's <c>LoadCredential=</c> (or <c>SetCredentialEncrypted=</c>) lines.
    /// </summary>
    public string PasswordCredential { get; set; } = string.Empty;

    /// <summary>TLS to the broker (<c>Mqtt:Tls</c>).</summary>
    public MqttTlsOptions Tls { get; set; } = new();

    /// <summary>First topic level.</summary>
    public string TopicPrefix { get; set; } = "edgerunner";

    /// <summary>MQTT keep-alive in seconds.</summary>
    public int KeepAliveSeconds { get; set; } = 15;

    /// <summary>Timeout for one connect attempt.</summary>
    public double ConnectTimeoutSeconds { get; set; } = 5;

    /// <summary>Timeout for one publish (until the broker acknowledges QoS 1).</summary>
    public double PublishTimeoutSeconds { get; set; } = 5;

    /// <summary>First reconnect delay; doubles per failure (with jitter) up to <see cref="ReconnectMaxDelaySeconds"/>.</summary>
    public double ReconnectMinDelaySeconds { get; set; } = 0.5;

    /// <summary>Longest reconnect delay.</summary>
    public double ReconnectMaxDelaySeconds { get; set; } = 5;

    /// <summary>Messages held in memory while the broker is unreachable; beyond this the oldest are dropped and counted.</summary>
    public int QueueCapacity { get; set; } = 10000;

    /// <summary>Payload bytes held in memory at most, all producers together; beyond this the producer holding the most bytes drops its oldest.</summary>
    public long QueueMaxBytes { get; set; } = 32L * 1024 * 1024;

    /// <summary>Largest MQTT packet the broker may send the daemon (MQTT 5 Maximum Packet Size); it discards larger ones. Above every ingest <c>MaxPayloadBytes</c> plus its topic.</summary>
    public int MaxIncomingPacketBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// QoS 1/2 publishes sent before the first is acknowledged (a pipeline: one awaited publish at a time caps
    /// throughput at one round trip per message). At most the broker's receive maximum (mosquitto: 20 by default).
    /// </summary>
    public int MaxInFlight { get; set; } = 20;

    /// <summary>QoS for results (0, 1 or 2).</summary>
    public int QualityOfService { get; set; } = 1;

    /// <summary>On shutdown, how long to keep publishing queued messages before giving up.</summary>
    public double DrainTimeoutSeconds { get; set; } = 5;

    /// <summary>The in-process broker used when <see cref="Host"/> is empty.</summary>
    public EmbeddedBrokerOptions EmbeddedBroker { get; set; } = new();

    /// <summary>Store-and-forward on disk (in the state folder).</summary>
    public Publishing.Spool.SpoolOptions Spool { get; set; } = new();

    /// <summary>Commands on <c>{prefix}/{device}/cmd/{name}</c> (<c>Mqtt:Commands</c>); off unless listed in its <c>Allow</c>.</summary>
    public Commands.CommandsOptions Commands { get; set; } = new();

    /// <summary>Home Assistant MQTT discovery (<c>Mqtt:HomeAssistant</c>).</summary>
    public EdgeRunner.Service.HomeAssistant.HomeAssistantOptions HomeAssistant { get; set; } = new();
}

/// <summary>Sub-section <c>Mqtt:Tls</c>: TLS 1.2 or newer to an external broker, the server's name always verified.</summary>
public sealed class MqttTlsOptions
{
    /// <summary>Connect over TLS.</summary>
    public bool Enabled { get; set; }

    /// <summary>PEM file of the CA certificate(s) the broker's certificate must chain to; empty: the system's trust store.</summary>
    public string CaFile { get; set; } = string.Empty;

    /// <summary>PEM file of the client certificate for mutual TLS (its first certificate); with <see cref="KeyFile"/>. Re-read on every connect.</summary>
    public string CertFile { get; set; } = string.Empty;

    /// <summary>PEM file of the client certificate's private key (unencrypted PKCS#8, PKCS#1 or SEC1). Re-read on every connect.</summary>
    public string KeyFile { get; set; } = string.Empty;

    /// <summary>Accept any server certificate (no CA, name or date check): for tests only; a warning is logged at every connect.</summary>
    public bool AllowUntrusted { get; set; }
}

/// <summary>Sub-section <c>Mqtt:EmbeddedBroker:Tls</c>: an extra TLS listener of the embedded broker.</summary>
public sealed class EmbeddedBrokerTlsOptions
{
    /// <summary>TCP port of the TLS listener; 0: none. It binds the same address as the plain listener.</summary>
    public int Port { get; set; }

    /// <summary>PEM file of the broker's certificate (its chain may follow).</summary>
    public string CertFile { get; set; } = string.Empty;

    /// <summary>PEM file of the certificate's private key (unencrypted).</summary>
    public string KeyFile { get; set; } = string.Empty;
}

/// <summary>Sub-section <c>Mqtt:EmbeddedBroker</c>.</summary>
public sealed class EmbeddedBrokerOptions
{
    /// <summary>TCP port the embedded broker listens on.</summary>
    public int Port { get; set; } = 1883;

    /// <summary>Address it binds; loopback by default so a demo never exposes a broker to the network.</summary>
    public string BindAddress { get; set; } = "127.0.0.1";

    /// <summary>User name other clients must present; required when <see cref="BindAddress"/> is not a loopback address. Empty: anonymous local clients.</summary>
    public string Username { get; set; } = string.Empty;

    /// <summary>Password that goes with <see cref="Username"/> (prefer <see cref="PasswordFile"/>).</summary>
    public string Password { get; set; } = string.Empty;

    /// <summary>File whose first line is the password (e.g. a systemd credential).</summary>
    public string PasswordFile { get; set; } = string.Empty;

    /// <summary>An optional TLS listener beside the plain one.</summary>
    public EmbeddedBrokerTlsOptions Tls { get; set; } = new();
}

/// <summary>Section <c>Models</c>: models by name.</summary>
public sealed class ModelsOptions : Dictionary<string, ModelOptions>
{
    public const string SectionName = "Models";

    public ModelsOptions()
        : base(StringComparer.OrdinalIgnoreCase)
    {
    }
}

/// <summary>One entry of <c>Models</c>.</summary>
public sealed class ModelOptions
{
    /// <summary>
    /// A model manifest (<c>model.json</c>, see docs/model-manifest.md) that defines the file, task,
    /// labels and pre-/post-processing. With a manifest, <see cref="Path"/>, <see cref="Labels"/>,
    /// <see cref="Task"/> and <see cref="Preprocess"/> must not be set.
    /// </summary>
    public string Manifest { get; set; } = string.Empty;

    /// <summary>Path of the .onnx file (relative paths: working directory first, then the daemon's folder).</summary>
    public string Path { get; set; } = string.Empty;

    /// <summary>Label file, one class per line; empty for numbered classes.</summary>
    public string Labels { get; set; } = string.Empty;

    /// <summary>What the output means (default Classification; from the manifest when there is one).</summary>
    public ModelTask? Task { get; set; }

    /// <summary>Execution providers in order of preference (cpu, cuda, tensorrt, openvino, xnnpack); CPU is always the last resort. Default: cpu.</summary>
    public string[]? ExecutionProviders { get; set; }

    /// <summary>False: refuse to start instead of falling back from the first provider.</summary>
    public bool AllowFallback { get; set; } = true;

    /// <summary>GPU index for GPU providers.</summary>
    public int DeviceId { get; set; }

    /// <summary>ONNX Runtime intra-op threads (0 = its default).</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>Per-provider settings, each used when that provider is tried (<c>Models:{name}:ProviderOptions</c>).</summary>
    public ProviderOptions ProviderOptions { get; set; } = new();

    /// <summary>Sequence models: most streams stepped together in one run.</summary>
    public int MaxBatch { get; set; } = 64;

    /// <summary>Sequence models: how long a step waits for other streams to join its batch (0 = batch only what is already waiting).</summary>
    public double BatchWaitMilliseconds { get; set; }

    /// <summary>Image preprocessing (defaults when absent and there is no manifest).</summary>
    public PreprocessOptions? Preprocess { get; set; }

    /// <summary>Classification postprocessing.</summary>
    public ClassificationOptions Classification { get; set; } = new();

    /// <summary>Detection postprocessing (thresholds override the manifest's).</summary>
    public DetectionOptions? Detection { get; set; }

    /// <summary>
    /// Reload the model (build and warm up a new session, then swap it in; docs/models.md "Reloading models") when its
    /// file or its manifest changes on disk, once writes have been quiet for a moment. Off by default: a model is then
    /// replaced only by the <c>reload</c> command or a restart.
    /// </summary>
    public bool ReloadOnChange { get; set; }

    /// <summary>
    /// Whether ONNX Runtime's worker threads spin-wait between runs: <see cref="ModelSpinning.Auto"/> (default) decides
    /// from the model's expected duty cycle (runs per second × time of one run), see docs/models.md "Spinning".
    /// </summary>
    public ModelSpinning Spinning { get; set; }
}

/// <summary><c>Models:{name}:ProviderOptions</c>: settings of each execution provider, used when that provider is tried.</summary>
public sealed class ProviderOptions
{
    /// <summary>TensorRT.</summary>
    public TensorRtProviderOptions TensorRt { get; set; } = new();

    /// <summary>CUDA (also the CUDA that runs after TensorRT).</summary>
    public CudaProviderOptions Cuda { get; set; } = new();

    /// <summary>OpenVINO.</summary>
    public OpenVinoProviderOptions OpenVino { get; set; } = new();

    /// <summary>XNNPACK.</summary>
    public XnnpackProviderOptions Xnnpack { get; set; } = new();

    /// <summary>The settings ONNX Runtime gets (relative cache folders against the working directory).</summary>
    internal ExecutionProviderSettings ToSettings() => new()
    {
        TensorRt = new TensorRtSettings
        {
            EngineCacheDirectory = string.IsNullOrWhiteSpace(TensorRt.EngineCacheDirectory) ? null : System.IO.Path.GetFullPath(TensorRt.EngineCacheDirectory),
            Fp16 = TensorRt.Fp16,
            Int8 = TensorRt.Int8,
            WorkspaceBytes = TensorRt.WorkspaceMegabytes * 1024L * 1024L,
            CudaForUnsupportedNodes = TensorRt.CudaForUnsupportedNodes,
        },
        Cuda = new CudaSettings { ArenaExtendStrategy = Cuda.ArenaExtendStrategy, MemoryLimitBytes = Cuda.MemoryLimitMegabytes * 1024L * 1024L },
        OpenVino = new OpenVinoSettings { DeviceType = OpenVino.DeviceType },
        Xnnpack = new XnnpackSettings { Threads = Xnnpack.Threads },
    };
}

/// <summary><c>Models:{name}:ProviderOptions:TensorRt</c>.</summary>
public sealed class TensorRtProviderOptions
{
    /// <summary>Folder for built engines, reused across starts (building one takes minutes); empty = no cache. Created if missing; must be writable.</summary>
    public string EngineCacheDirectory { get; set; } = string.Empty;

    /// <summary>Allow FP16 kernels.</summary>
    public bool Fp16 { get; set; }

    /// <summary>Allow INT8 kernels (QDQ models carry their own scales).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "TensorRT's name for its INT8 precision mode.")]
    public bool Int8 { get; set; }

    /// <summary>Most GPU memory TensorRT may use to build an engine, in MiB; 0 = ONNX Runtime's default.</summary>
    public int WorkspaceMegabytes { get; set; }

    /// <summary>Run nodes TensorRT cannot take on CUDA in the same session (else they go to the CPU).</summary>
    public bool CudaForUnsupportedNodes { get; set; } = true;
}

/// <summary><c>Models:{name}:ProviderOptions:Cuda</c> (the device is <c>Models:{name}:DeviceId</c>).</summary>
public sealed class CudaProviderOptions
{
    /// <summary>NextPowerOfTwo (ONNX Runtime's default) or SameAsRequested.</summary>
    public CudaArenaExtendStrategy ArenaExtendStrategy { get; set; }

    /// <summary>Most GPU memory the CUDA arena may hold, in MiB; 0 = no limit.</summary>
    public int MemoryLimitMegabytes { get; set; }
}

/// <summary><c>Models:{name}:ProviderOptions:OpenVino</c>.</summary>
public sealed class OpenVinoProviderOptions
{
    /// <summary>CPU, GPU, GPU.0, NPU, AUTO, or AUTO:/HETERO:/MULTI: with a device list; empty = the build's default.</summary>
    public string DeviceType { get; set; } = string.Empty;
}

/// <summary><c>Models:{name}:ProviderOptions:Xnnpack</c>.</summary>
public sealed class XnnpackProviderOptions
{
    /// <summary>XNNPACK's thread pool size; 0 = the model's IntraOpThreads (at least 1).</summary>
    public int Threads { get; set; }
}

/// <summary><c>Models:{name}:Detection</c>.</summary>
public sealed class DetectionOptions
{
    /// <summary>Decoder: yolov8, yolov5, yolox, ssd or fastestdet; empty = from the manifest, else inferred from the output shapes.</summary>
    public string Decoder { get; set; } = string.Empty;

    /// <summary>Detections below this score are dropped.</summary>
    public float? ScoreThreshold { get; set; }

    /// <summary>Class-aware NMS IoU threshold.</summary>
    public float? IouThreshold { get; set; }

    /// <summary>Most detections per frame.</summary>
    public int? MaxDetections { get; set; }

    /// <summary>YOLOX: true when the output is the raw stride-8/16/32 grid (the default YOLOX export), false when boxes are already decoded; unset = the manifest's <c>raw_grid</c>, else inferred.</summary>
    public bool? RawGrid { get; set; }
}

/// <summary><c>Models:{name}:Preprocess</c>.</summary>
public sealed class PreprocessOptions
{
    /// <summary>Model input width.</summary>
    public int Width { get; set; } = 224;

    /// <summary>Model input height.</summary>
    public int Height { get; set; } = 224;

    /// <summary>Stretch, CenterCrop or Letterbox.</summary>
    public ResizeMode Resize { get; set; } = ResizeMode.Stretch;

    /// <summary>CenterCrop: shorter side after resizing (0 = the crop size).</summary>
    public int ResizeShorterSide { get; set; }

    /// <summary>Letterbox padding value (0–255).</summary>
    public float PadValue { get; set; } = 114;

    /// <summary>Rgb or Bgr.</summary>
    public ChannelOrder ChannelOrder { get; set; } = ChannelOrder.Rgb;

    /// <summary>Nchw or Nhwc.</summary>
    public TensorLayout Layout { get; set; } = TensorLayout.Nchw;

    /// <summary>Pixel multiplier applied before mean/std.</summary>
    public float Scale { get; set; } = 1f / 255f;

    /// <summary>Per-channel mean in tensor channel order (default 0,0,0).</summary>
    public float[]? Mean { get; set; }

    /// <summary>Per-channel std in tensor channel order (default 1,1,1).</summary>
    public float[]? Std { get; set; }

    /// <summary>The spec for <see cref="ImagePreprocessor"/>.</summary>
    public ImagePreprocessingSpec ToSpec() => new()
    {
        Width = Width,
        Height = Height,
        Resize = Resize,
        ResizeShorterSide = ResizeShorterSide,
        PadValue = PadValue,
        ChannelOrder = ChannelOrder,
        Layout = Layout,
        Scale = Scale,
        Mean = Mean ?? [0f, 0f, 0f],
        Std = Std ?? [1f, 1f, 1f],
    };
}

/// <summary><c>Models:{name}:Classification</c>.</summary>
public sealed class ClassificationOptions
{
    /// <summary>Classes reported per result.</summary>
    public int TopK { get; set; } = 5;

    /// <summary>Apply softmax to the model's scores (for models that output logits).</summary>
    public bool Softmax { get; set; } = true;

    /// <summary>Classes below this score are not reported.</summary>
    public float MinScore { get; set; }
}

/// <summary>Section <c>Cameras</c>: cameras by id.</summary>
public sealed class CamerasOptions : Dictionary<string, CameraOptions>
{
    public const string SectionName = "Cameras";

    public CamerasOptions()
        : base(StringComparer.OrdinalIgnoreCase)
    {
    }
}

/// <summary>One entry of <c>Cameras</c>.</summary>
public sealed class CameraOptions
{
    /// <summary>False skips the camera.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Name of the model (key of <c>Models</c>) run on this camera.</summary>
    public string Model { get; set; } = string.Empty;

    /// <summary>Frames per second taken from the source.</summary>
    public double Fps { get; set; } = 5;

    /// <summary>Frames waiting for inference; when full the oldest is dropped (newest frame wins) and counted.</summary>
    public int QueueCapacity { get; set; } = 2;

    /// <summary>Live sources (File with Loop, V4l2, Rtsp, HttpMjpeg): restart capture when no frame arrived for this long.</summary>
    public double StallTimeoutSeconds { get; set; } = 10;

    /// <summary>Live sources: first delay before a restart; doubles per failure (jittered) up to <see cref="ReconnectMaxDelaySeconds"/>.</summary>
    public double ReconnectMinDelaySeconds { get; set; } = 1;

    /// <summary>Live sources: longest delay between restarts.</summary>
    public double ReconnectMaxDelaySeconds { get; set; } = 30;

    /// <summary>
    /// Most frames per second run through the model, independent of <see cref="Fps"/> (0 = every frame
    /// delivered). Frames arriving sooner than 1/DetectFps after the last inferred one are skipped and counted.
    /// </summary>
    public double DetectFps { get; set; }

    /// <summary>Skip inference while nothing moves.</summary>
    public CameraMotionOptions Motion { get; set; } = new();

    /// <summary>Annotated JPEG snapshots when the detected labels change.</summary>
    public CameraSnapshotOptions Snapshots { get; set; } = new();

    /// <summary>
    /// Where frames come from (<c>Cameras:{id}:Source</c>): the options of the source's Kind, one type per kind.
    /// Not public, so the configuration binder leaves it alone (it cannot choose a type by a key);
    /// <see cref="CameraSourceKinds.BindSources"/> binds it per kind, and <see cref="CameraSourceKinds.CollectKeyErrors"/>
    /// checks its keys.
    /// </summary>
    [KindSection]
    internal CameraSourceOptions Source { get; set; } = new SyntheticSourceOptions();
}

/// <summary><c>Cameras:{id}:Motion</c>: motion gating before inference.</summary>
public sealed class CameraMotionOptions
{
    /// <summary>True runs the model only on frames that differ from the previous one (plus the forced periodic run).</summary>
    public bool Enabled { get; set; }

    /// <summary>Grey-level difference (0–255) at which a downscaled pixel counts as changed.</summary>
    public int Threshold { get; set; } = 25;

    /// <summary>Percentage of the downscaled frame's pixels that must change to count as motion.</summary>
    public double MinAreaPercent { get; set; } = 0.5;

    /// <summary>Width of the grey image compared (height keeps the aspect ratio); smaller is cheaper and less noisy.</summary>
    public int DownscaleWidth { get; set; } = 160;

    /// <summary>Run inference at least this often even without motion (0 = never), so a still object is still reported.</summary>
    public double ForcedIntervalSeconds { get; set; } = 10;
}

/// <summary><c>Cameras:{id}:Snapshots</c>: annotated JPEGs on MQTT.</summary>
public sealed class CameraSnapshotOptions
{
    /// <summary>True publishes a snapshot when a label appears that was not in the previous inferred frame (detection models only).</summary>
    public bool Enabled { get; set; }

    /// <summary>At most one snapshot per this many seconds.</summary>
    public double MinIntervalSeconds { get; set; } = 5;

    /// <summary>Publish snapshots retained, so a new subscriber gets the latest.</summary>
    public bool Retain { get; set; }

    /// <summary>JPEG quality, 1–100.</summary>
    public int Quality { get; set; } = 80;

    /// <summary>Frames wider than this are scaled down (aspect ratio kept) before encoding.</summary>
    public int MaxWidth { get; set; } = 640;
}

/// <summary>Kinds of sensor source.</summary>
public enum SensorSourceKind
{
    /// <summary>A simulated 3-axis accelerometer on a rotating machine with injected faults.</summary>
    SimulatedVibration,

    /// <summary>A recorded stream replayed from a CSV/TSV file.</summary>
    Csv,

    /// <summary>A sensor chip on an I2C bus (ADXL345, MPU6050, BME280), polled at <see cref="SensorSourceOptions.SampleRateHz"/>.</summary>
    I2c,

    /// <summary>GPIO digital inputs: one channel per pin, the level or an edge count per sample period.</summary>
    Gpio,

    /// <summary>PCM audio: an audio file replayed, or live ALSA capture (through ffmpeg or arecord).</summary>
    Audio,

    /// <summary>A device on a serial line printing one sample per line (delimited numbers or JSON).</summary>
    Serial,

    /// <summary>Samples published to an MQTT topic (filter with wildcards: one stream per matching topic), received over the daemon's own connection.</summary>
    Mqtt,
}

/// <summary>How an MQTT ingest payload is read.</summary>
public enum MqttPayloadFormat
{
    /// <summary>JSON when the payload starts with '{' or '[', plain numbers otherwise.</summary>
    Auto,

    /// <summary>Plain text numbers separated by commas, semicolons or white space; one sample per line.</summary>
    Numbers,

    /// <summary>A JSON object (named fields), an array of numbers (one sample), or an array of objects or of arrays (a batch).</summary>
    Json,
}

/// <summary>Section <c>Sensors</c>: sensor streams by id.</summary>
public sealed class SensorsOptions : Dictionary<string, SensorStreamOptions>
{
    public const string SectionName = "Sensors";

    public SensorsOptions()
        : base(StringComparer.OrdinalIgnoreCase)
    {
    }
}

/// <summary>One entry of <c>Sensors</c>.</summary>
public sealed class SensorStreamOptions
{
    /// <summary>False skips the stream.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Name of the sequence model (key of <c>Models</c>, with a manifest) run on this stream.</summary>
    public string Model { get; set; } = string.Empty;

    /// <summary>
    /// Where samples come from: the options of the source's kind. No public setter, so the binder leaves it to
    /// <c>SensorSourceBinder</c>, which binds the section to the type its <c>Kind</c> names.
    /// </summary>
    public SensorSourceOptions Source { get; internal set; } = null!;

    /// <summary>What to do with a sample that is NaN, infinite or outside [<see cref="MinValue"/>, <see cref="MaxValue"/>]: Hold (repeat the channel's last good value), Drop (skip the sample) or Reset (start the stream's state afresh). Always counted.</summary>
    public InvalidSamplePolicy InvalidSamples { get; set; } = InvalidSamplePolicy.Hold;

    /// <summary>Smallest valid value of any channel (in the source's units).</summary>
    public double MinValue { get; set; } = double.MinValue;

    /// <summary>Largest valid value of any channel.</summary>
    public double MaxValue { get; set; } = double.MaxValue;

    /// <summary>A jump in the samples' timestamps larger than this resets the stream's state (logged, counted); 0 = never.</summary>
    public double GapResetSeconds { get; set; } = 5;
}

/// <summary>How a stream treats invalid samples.</summary>
public enum InvalidSamplePolicy
{
    /// <summary>Replace the invalid value with the channel's last good value.</summary>
    Hold,

    /// <summary>Skip the whole sample.</summary>
    Drop,

    /// <summary>Reset the stream's recurrent state and continue from the next good sample.</summary>
    Reset,
}

/// <summary>
/// <c>Sensors:{id}:Source</c>: the keys every kind reads. Each kind's own keys are in its options type, in its
/// file under <c>Sensors/Sources/</c> (<c>CsvSourceKind.cs</c> holds <c>CsvSensorOptions</c>), and the section
/// is bound to that type by its <see cref="Kind"/> (<c>SensorSourceKinds.Bind</c>): a key of another kind is
/// an unknown key there.
/// </summary>
public abstract class SensorSourceOptions
{
    /// <summary>Initialises the options of <paramref name="kind"/>.</summary>
    protected SensorSourceOptions(SensorSourceKind kind) => Kind = kind;

    /// <summary>Source kind; it picks the options type, so it is only ever set to the kind of that type.</summary>
    public SensorSourceKind Kind { get; set; }

    /// <summary>Samples per second of the source (SimulatedVibration and Audio: 0 = the model's rate; Csv without a timestamp column: the recording's rate; Serial: the device's nominal rate, required). Streams at another rate than the model's are resampled.</summary>
    public double SampleRateHz { get; set; }

    /// <summary>Resolves the kind's file paths with <paramref name="resolve"/> (<see cref="PathResolver.Resolve"/>); kinds that read no file have none.</summary>
    internal virtual void ResolvePaths(Func<string, string> resolve)
    {
    }
}

/// <summary>Section <c>OnnxRuntime</c>: which native ONNX Runtime library the daemon uses.</summary>
public sealed class OnnxRuntimeOptions
{
    public const string SectionName = "OnnxRuntime";

    /// <summary>
    /// A <c>libonnxruntime.so</c> to use instead of the one shipped with the daemon (a Jetson build with
    /// TensorRT/CUDA, an ACL or QNN build); empty uses the shipped one. Checked at start: a missing,
    /// unloadable or too old library stops startup naming this key, the file and the reason.
    /// </summary>
    public string LibraryPath { get; set; } = string.Empty;
}

/// <summary>Section <c>State</c>: where stateful streams keep their checkpoints.</summary>
public sealed class StateOptions
{
    public const string SectionName = "State";

    /// <summary>Folder for per-stream state checkpoints; empty disables checkpoints (state starts fresh at every start).</summary>
    public string Directory { get; set; } = string.Empty;

    /// <summary>Seconds between periodic checkpoints of each stream (one is always written on a clean stop).</summary>
    public double CheckpointIntervalSeconds { get; set; } = 60;

    /// <summary>Checkpoints of dynamic (MQTT wildcard) streams not written for this many days are deleted at start, so topics that come and go do not fill the disk; 0 keeps them.</summary>
    public double DynamicStreamRetentionDays { get; set; } = 30;
}

/// <summary>Section <c>Metrics</c>: the Prometheus text endpoint and the periodic health message (docs/metrics.md).</summary>
public sealed class MetricsOptions
{
    public const string SectionName = "Metrics";

    /// <summary>
    /// Seconds between retained health messages on <c>{prefix}/{device}/health</c> (rates, latency percentiles, CPU,
    /// RSS, uptime; <c>edgerunner status</c> prints the last one); 0 publishes none.
    /// </summary>
    public double HealthIntervalSeconds { get; set; } = 30;

    /// <summary>The Prometheus text endpoint (<c>GET /metrics</c>); off unless <see cref="PrometheusOptions.Port"/> is set.</summary>
    public PrometheusOptions Prometheus { get; set; } = new();
}

/// <summary>Section <c>Metrics:Prometheus</c>: an HTTP endpoint serving the daemon's meter in the Prometheus text format.</summary>
public sealed class PrometheusOptions
{
    /// <summary>TCP port of the endpoint; 0 (the default) serves none.</summary>
    public int Port { get; set; }

    /// <summary>The address it listens on: loopback by default, so only the device itself (or an SSH tunnel) can scrape it.</summary>
    public string Address { get; set; } = "127.0.0.1";
}

/// <summary><c>Models:{name}:Spinning</c>: whether ONNX Runtime's worker threads spin-wait for the next run.</summary>
public enum ModelSpinning
{
    /// <summary>On when the model is busy at least half the time (or its rate is unknown), off otherwise.</summary>
    Auto,

    /// <summary>Always spin: the lowest latency for back-to-back runs, a busy core between runs.</summary>
    On,

    /// <summary>Never spin: workers sleep between runs (a little wake-up latency per run, no CPU between runs).</summary>
    Off,
}
