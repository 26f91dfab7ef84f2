using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Cli;

namespace EdgeRunner.IntegrationTests;

/// <summary><c>edgerunner inspect</c>: what a model needs, or why this ONNX Runtime cannot load it.</summary>
public sealed class InspectCommandTests
{
    [Fact]
    public void A_model_onnx_runtime_refuses_gives_its_reason_and_a_data_error_exit_code()
    {
        var path = TestPaths.SharedFile("onnx-node-tests/test_lstm_batchwise/model.onnx");
        var (code, text) = InspectCommand.Run(path);
        Assert.Equal(InspectCommand.ModelError, code);
        Assert.Contains(path, text, StringComparison.Ordinal);
        Assert.Contains("Batchwise recurrent operations (layout == 1) are not supported", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Silero_vad_shows_its_state_pair_and_the_input_that_needs_a_constant()
    {
        var (code, text) = InspectCommand.Run(TestPaths.SharedFile("models/silero-vad/model.onnx"));
        Assert.Equal(0, code);
        Assert.Contains("state: Float [2, ?, 128]", text, StringComparison.Ordinal);
        Assert.Contains("state → stateN (batch axis 1", text, StringComparison.Ordinal);
        Assert.Contains("sr (Int64 [])", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bundled_manifest_is_verified_and_its_model_described()
    {
        var (code, text) = InspectCommand.Run(BundledModels.ManifestPath("vibration-lstm"));
        Assert.Equal(0, code);
        Assert.Contains("SHA-256 verified", text, StringComparison.Ordinal);
        Assert.Contains("x: Float [batch, steps, 3, 50]", text, StringComparison.Ordinal);
        Assert.Contains("h0 → hn (batch axis 1", text, StringComparison.Ordinal);
        Assert.Contains("c0 → cn (batch axis 1", text, StringComparison.Ordinal);
    }
}
