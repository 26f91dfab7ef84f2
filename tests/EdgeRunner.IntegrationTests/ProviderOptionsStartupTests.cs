using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// <c>Models:{name}:ProviderOptions</c> through the real daemon's <c>check-config</c> (which validates and loads every
/// model as start does): bad values and unknown keys stop it with exit 78 naming the key; good ones for providers
/// absent here leave the model on the CPU, with the fallback said.
/// </summary>
public sealed class ProviderOptionsStartupTests
{
    private const int ExConfig = 78;
    private static readonly TimeSpan Exit = TimeSpan.FromMinutes(2);

    [Theory]
    [InlineData("--Models:shapes-detector:ProviderOptions:OpenVino:DeviceType=FPGA", "Models:shapes-detector:ProviderOptions:OpenVino:DeviceType: 'FPGA' is not an OpenVINO device type")]
    [InlineData("--Models:shapes-detector:ProviderOptions:TensorRt:WorkspaceMegabytes=-1", "Models:shapes-detector:ProviderOptions:TensorRt:WorkspaceMegabytes: must be between 0")]
    [InlineData("--Models:vibration-lstm:ProviderOptions:Xnnpack:Thread=4", "Models:vibration-lstm:ProviderOptions:Xnnpack:Thread: unknown key")]
    [InlineData("--Models:shapes-detector:ProviderOptions:TensorRt:EngineCacheDirectory=/proc/self/trt-engines", "Models:shapes-detector:ProviderOptions:TensorRt:EngineCacheDirectory: ")]
    public async Task A_bad_provider_option_stops_check_config_naming_the_key(string setting, string expected)
    {
        await using var check = DaemonProcess.Start(["check-config", setting]);

        Assert.Equal(ExConfig, await check.WaitForExitAsync(Exit, TestContext.Current.CancellationToken));
        Assert.Contains(expected, check.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Options_for_absent_providers_leave_the_model_on_the_CPU_and_the_fallback_is_said()
    {
        await using var check = DaemonProcess.Start([
            "check-config",
            "--Models:shapes-detector:ExecutionProviders:0=tensorrt",
            "--Models:shapes-detector:ExecutionProviders:1=openvino",
            "--Models:shapes-detector:ProviderOptions:TensorRt:Fp16=true",
            "--Models:shapes-detector:ProviderOptions:OpenVino:DeviceType=AUTO:GPU,CPU",
            "--Models:vibration-lstm:ExecutionProviders:0=xnnpack",
            "--Models:vibration-lstm:ProviderOptions:Xnnpack:Threads=2",
        ]);

        Assert.Equal(0, await check.WaitForExitAsync(Exit, TestContext.Current.CancellationToken));
        Assert.Matches(@"shapes-detector\s+CPUExecutionProvider", check.Stdout);
        Assert.Matches(@"vibration-lstm\s+CPUExecutionProvider", check.Stdout);
        Assert.Contains("TensorrtExecutionProvider is not in this ONNX Runtime build", check.Stdout + check.Stderr, StringComparison.Ordinal);
    }
}
