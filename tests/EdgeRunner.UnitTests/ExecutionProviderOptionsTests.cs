using System.Runtime.CompilerServices;
using EdgeRunner.Models.Inference;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.UnitTests;

/// <summary>
/// <c>Models:{name}:ProviderOptions</c>: config keys to ONNX Runtime's provider option names, validation naming the
/// key, and provider selection (absent providers, a provider whose warm-up fails) on the real bundled detector. None
/// of TensorRT, CUDA, OpenVINO or XNNPACK is in this build: the append calls are checked where they are planned, and
/// the warm-up failure is injected at the warm-up seam behind a stand-in provider.
/// </summary>
public sealed class ExecutionProviderOptionsTests
{
    private static readonly string[] AllProviders = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider", "OpenVINOExecutionProvider", "XnnpackExecutionProvider"];

    private static IConfigurationRoot Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    private static ModelOptions Bind(IConfiguration config) =>
        config.GetSection("Models").Get<ModelsOptions>(o => o.ErrorOnUnknownConfiguration = true)!["m"];

    private static ModelSessionOptions Detector(params string[] providers) => new()
    {
        Id = "shapes",
        Path = Path.Combine(RepoRoot(), "models", "bundled", "shapes-detector", "model.onnx"),
        ExecutionProviders = providers,
    };

    [Fact]
    public void TensorRt_keys_reach_its_append_call_by_ONNX_Runtime_names_then_CUDA_for_unsupported_nodes()
    {
        var cache = Path.Combine(Path.GetTempPath(), "trt-cache-never-created");
        var model = Bind(Config(
            ("Models:m:Path", "x.onnx"),
            ("Models:m:DeviceId", "1"),
            ("Models:m:ProviderOptions:TensorRt:EngineCacheDirectory", cache),
            ("Models:m:ProviderOptions:TensorRt:Fp16", "true"),
            ("Models:m:ProviderOptions:TensorRt:Int8", "true"),
            ("Models:m:ProviderOptions:TensorRt:WorkspaceMegabytes", "2048"),
            ("Models:m:ProviderOptions:Cuda:ArenaExtendStrategy", "SameAsRequested")));

        var calls = ExecutionProviders.Plan("tensorrt", model.ProviderOptions.ToSettings(), model.DeviceId, 0, AllProviders);

        Assert.Equal(["TensorRT", "CUDA"], calls.Select(c => c.Provider));
        var trt = calls[0].Options;
        Assert.Equal("1", trt["device_id"]);
        Assert.Equal("1", trt["trt_fp16_enable"]);
        Assert.Equal("1", trt["trt_int8_enable"]);
        Assert.Equal((2048L * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), trt["trt_max_workspace_size"]);
        Assert.Equal("1", trt["trt_engine_cache_enable"]);
        Assert.Equal(cache, trt["trt_engine_cache_path"]);
        Assert.Equal("1", calls[1].Options["device_id"]);
        Assert.Equal("kSameAsRequested", calls[1].Options["arena_extend_strategy"]);
    }

    [Fact]
    public void TensorRt_alone_when_CUDA_is_turned_off_or_not_in_the_build()
    {
        var off = new ExecutionProviderSettings { TensorRt = new TensorRtSettings { CudaForUnsupportedNodes = false } };

        Assert.Equal(["TensorRT"], ExecutionProviders.Plan("tensorrt", off, 0, 0, AllProviders).Select(c => c.Provider));
        Assert.Equal(["TensorRT"], ExecutionProviders.Plan("tensorrt", new ExecutionProviderSettings(), 0, 0, ["CPUExecutionProvider", "TensorrtExecutionProvider"]).Select(c => c.Provider));
        var defaults = ExecutionProviders.Plan("tensorrt", new ExecutionProviderSettings(), 0, 0, AllProviders)[0].Options;
        Assert.Equal("0", defaults["trt_fp16_enable"]);
        Assert.False(defaults.ContainsKey("trt_engine_cache_enable"));
        Assert.False(defaults.ContainsKey("trt_max_workspace_size"));
    }

    [Fact]
    public void CUDA_OpenVINO_and_XNNPACK_keys_reach_their_append_calls()
    {
        var settings = Bind(Config(
            ("Models:m:Path", "x.onnx"),
            ("Models:m:IntraOpThreads", "2"),
            ("Models:m:ProviderOptions:Cuda:MemoryLimitMegabytes", "512"),
            ("Models:m:ProviderOptions:OpenVino:DeviceType", "AUTO:GPU,CPU"),
            ("Models:m:ProviderOptions:Xnnpack:Threads", "4"))).ProviderOptions.ToSettings();

        var cuda = Assert.Single(ExecutionProviders.Plan("cuda", settings, 0, 2, AllProviders));
        Assert.Equal("CUDA", cuda.Provider);
        Assert.Equal("kNextPowerOfTwo", cuda.Options["arena_extend_strategy"]);
        Assert.Equal((512L * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), cuda.Options["gpu_mem_limit"]);
        var openVino = Assert.Single(ExecutionProviders.Plan("openvino", settings, 0, 2, AllProviders));
        Assert.Equal("OpenVINO", openVino.Provider);
        Assert.Equal("AUTO:GPU,CPU", openVino.Options["device_type"]);
        var xnnpack = Assert.Single(ExecutionProviders.Plan("xnnpack", settings, 0, 2, AllProviders));
        Assert.Equal("XNNPACK", xnnpack.Provider);
        Assert.Equal("4", xnnpack.Options["intra_op_num_threads"]);
        Assert.Equal("2", ExecutionProviders.Plan("xnnpack", new ExecutionProviderSettings(), 0, 2, AllProviders)[0].Options["intra_op_num_threads"]);
        Assert.Empty(ExecutionProviders.Plan("cpu", settings, 0, 2, AllProviders));
    }

    [Fact]
    public void Unknown_provider_option_keys_are_refused_with_their_full_path()
    {
        var errors = new List<string>();
        var config = Config(("Models:m:ProviderOptions:TensorRt:Fp61", "true"), ("Models:m:ProviderOptions:Tpu:Cores", "2"));

        ConfigurationKeyChecker.CollectUnknownKeys(config.GetSection("Models"), typeof(ModelsOptions), errors);

        Assert.Contains(errors, e => e.StartsWith("Models:m:ProviderOptions:TensorRt:Fp61: unknown key", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Models:m:ProviderOptions:Tpu: unknown key", StringComparison.Ordinal));
    }

    [Fact]
    public void Bad_provider_option_values_are_refused_naming_the_key()
    {
        var folder = Directory.CreateTempSubdirectory("edgerunner-providers-");
        try
        {
            var notAFolder = Path.Combine(folder.FullName, "file");
            File.WriteAllText(notAFolder, "x");
            var model = new ModelOptions { Path = Path.Combine(RepoRoot(), "models", "bundled", "shapes-detector", "model.onnx") };
            model.ProviderOptions.TensorRt.WorkspaceMegabytes = -1;
            model.ProviderOptions.TensorRt.EngineCacheDirectory = Path.Combine(notAFolder, "engines");
            model.ProviderOptions.Cuda.MemoryLimitMegabytes = -5;
            model.ProviderOptions.OpenVino.DeviceType = "FPGA";
            model.ProviderOptions.Xnnpack.Threads = 5000;

            var result = new ModelsOptionsValidator().Validate(null, new ModelsOptions { ["m"] = model });

            var failures = result.Failures!.ToList();
            Assert.Contains(failures, f => f.StartsWith("Models:m:ProviderOptions:TensorRt:WorkspaceMegabytes: must be between 0", StringComparison.Ordinal));
            Assert.Contains(failures, f => f.StartsWith("Models:m:ProviderOptions:TensorRt:EngineCacheDirectory: ", StringComparison.Ordinal) && f.Contains("cannot be created", StringComparison.Ordinal) && f.Contains("is a file", StringComparison.Ordinal));
            Assert.Contains(failures, f => f.StartsWith("Models:m:ProviderOptions:Cuda:MemoryLimitMegabytes: must be between 0", StringComparison.Ordinal));
            Assert.Contains(failures, f => f.StartsWith("Models:m:ProviderOptions:OpenVino:DeviceType: 'FPGA' is not an OpenVINO device type", StringComparison.Ordinal));
            Assert.Contains(failures, f => f.StartsWith("Models:m:ProviderOptions:Xnnpack:Threads: must be between 0 and 1024 (got 5000)", StringComparison.Ordinal));

            // A folder that does not exist yet under a writable one is fine (TensorRT's append creates it); nothing is created by the check.
            model = new ModelOptions { Path = model.Path };
            model.ProviderOptions.TensorRt.EngineCacheDirectory = Path.Combine(folder.FullName, "engines", "detector");
            model.ProviderOptions.OpenVino.DeviceType = "GPU.1";
            Assert.False(new ModelsOptionsValidator().Validate(null, new ModelsOptions { ["m"] = model }).Failed);
            Assert.Equal(["file"], Directory.EnumerateFileSystemEntries(folder.FullName).Select(Path.GetFileName));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("CPU")]
    [InlineData("GPU")]
    [InlineData("GPU.0")]
    [InlineData("NPU")]
    [InlineData("AUTO")]
    [InlineData("AUTO:GPU,CPU")]
    [InlineData("HETERO:NPU,CPU")]
    [InlineData("")]
    public void OpenVINO_device_types_accepted(string deviceType) => Assert.Null(ExecutionProviders.OpenVinoDeviceTypeProblem(deviceType));

    [Theory]
    [InlineData("gpu")]
    [InlineData("GPU.")]
    [InlineData("CPU:GPU")]
    [InlineData("AUTO:")]
    [InlineData("AUTO:GPU,TPU")]
    public void OpenVINO_device_types_refused(string deviceType) => Assert.NotNull(ExecutionProviders.OpenVinoDeviceTypeProblem(deviceType));

    [Fact]
    public void Absent_providers_with_options_fall_back_to_CPU_visibly_or_fail_when_fallback_is_off()
    {
        Assert.SkipWhen(ExecutionProviders.Available.Count > 1, "this build has providers besides CPU");
        var settings = new ExecutionProviderSettings { TensorRt = new TensorRtSettings { Fp16 = true }, OpenVino = new OpenVinoSettings { DeviceType = "GPU" } };
        var log = new ListLogger();

        using var session = ModelSession.Load(Detector("tensorrt", "openvino", "xnnpack") with { ProviderSettings = settings }, log);

        Assert.Equal("CPUExecutionProvider", session.ExecutionProvider);
        Assert.StartsWith("TensorrtExecutionProvider is not in this ONNX Runtime build", session.FallbackReason, StringComparison.Ordinal);
        Assert.Equal(3, log.Lines.Count(l => l.Contains("not used", StringComparison.Ordinal)));
        Assert.Contains(log.Lines, l => l.StartsWith("Warning: Model shapes FELL BACK to CPUExecutionProvider", StringComparison.Ordinal));

        var ex = Assert.Throws<ModelLoadException>(() => ModelSession.Load(Detector("openvino") with { ProviderSettings = settings, AllowFallback = false }, NullLogger.Instance));
        Assert.Contains("execution provider 'openvino' unavailable and fallback is disabled: OpenVINOExecutionProvider is not in this ONNX Runtime build", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_planned_calls_are_the_ones_made_on_the_session_options()
    {
        var made = new List<ProviderAppend>();
        var host = new ProviderHost(AllProviders, (_, call, _) => made.Add(call)); // Stand-in: records, appends nothing; the session runs on CPU.
        var settings = new ExecutionProviderSettings { TensorRt = new TensorRtSettings { Int8 = true, WorkspaceBytes = 1 << 30 } };

        using var session = ModelSession.Load(Detector("tensorrt") with { ProviderSettings = settings, DeviceId = 2 }, NullLogger.Instance, host, static m => m.Run());

        Assert.Equal("TensorrtExecutionProvider", session.ExecutionProvider);
        Assert.Equal(["TensorRT", "CUDA"], made.Select(c => c.Provider));
        Assert.Equal("1", made[0].Options["trt_int8_enable"]);
        Assert.Equal("1073741824", made[0].Options["trt_max_workspace_size"]);
        Assert.Equal("2", made[1].Options["device_id"]);
    }

    [Fact]
    public void A_provider_whose_warm_up_fails_is_passed_over_like_one_that_fails_to_initialise()
    {
        // XNNPACK is not in this build: the stand-in host says it is and appends nothing, and the warm-up seam fails the
        // first run on it with a real ONNX Runtime error (the one this build gives for appending XNNPACK).
        var host = new ProviderHost(AllProviders, static (_, _, _) => { });
        var warmUps = new List<string>();
        void WarmUp(ModelSession model)
        {
            warmUps.Add(model.ExecutionProvider);
            if (model.ExecutionProvider != "CPUExecutionProvider")
            {
                using var options = new SessionOptions();
                options.AppendExecutionProvider("XNNPACK");
            }

            model.Run();
        }

        var log = new ListLogger();
        using var session = ModelSession.Load(Detector("xnnpack"), log, host, WarmUp);

        Assert.Equal(["XnnpackExecutionProvider", "CPUExecutionProvider"], warmUps);
        Assert.Equal("CPUExecutionProvider", session.ExecutionProvider);
        Assert.StartsWith("XnnpackExecutionProvider initialised but its warm-up run failed: ", session.FallbackReason, StringComparison.Ordinal);
        Assert.Contains("XNNPACK", session.FallbackReason, StringComparison.Ordinal); // ONNX Runtime's own words, in upper case.
        Assert.Contains(log.Lines, l => l.StartsWith("Warning: Model shapes: execution provider xnnpack not used: XnnpackExecutionProvider initialised but its warm-up run failed", StringComparison.Ordinal));
        Assert.Contains(log.Lines, l => l.StartsWith("Warning: Model shapes FELL BACK to CPUExecutionProvider: XnnpackExecutionProvider initialised but its warm-up run failed", StringComparison.Ordinal));
        session.Run();
        Assert.True(session.OutputCount > 0);

        warmUps.Clear();
        var ex = Assert.Throws<ModelLoadException>(() => ModelSession.Load(Detector("xnnpack") with { AllowFallback = false }, NullLogger.Instance, host, WarmUp));
        Assert.Contains("execution provider 'xnnpack' unavailable and fallback is disabled: XnnpackExecutionProvider initialised but its warm-up run failed", ex.Message, StringComparison.Ordinal);
        Assert.Equal(["XnnpackExecutionProvider"], warmUps);
    }

    [Fact]
    public void A_warm_up_failure_on_CPU_is_a_load_error()
    {
        var ex = Assert.Throws<ModelLoadException>(() => ModelSession.Load(Detector("cpu"), NullLogger.Instance, ProviderHost.Real, static _ =>
        {
            using var options = new SessionOptions();
            options.AppendExecutionProvider("NoSuchProvider");
        }));

        Assert.Contains("Model 'shapes'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("warm-up inference failed", ex.Message, StringComparison.Ordinal);
    }

    private static string RepoRoot([CallerFilePath] string path = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, "..", ".."));

    private sealed class ListLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add($"{logLevel}: {formatter(state, exception)}");
    }
}
