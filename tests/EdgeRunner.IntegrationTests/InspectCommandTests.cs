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

    [Fact]
    public void A_raw_grid_yolox_head_is_suggested_yolox_from_its_anchor_count_and_input_size()
    {
        using var folder = new TempFolder();
        var path = Path.Combine(folder.Path, "yolox-raw.onnx");
        File.WriteAllBytes(path, RawGridYoloxTests.RawGridHead());

        var (code, text) = InspectCommand.Run(path);

        Assert.Equal(0, code);
        Assert.Contains("detection decoder: yolox (output 'output' [1,84,6]: 84 anchors of 6 values = one per cell of the stride-8/16/32 grids over the 64x64 input (YOLOv5 has three per cell: 252) → yolox", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Detectors_of_shared_get_their_decoder_suggested_and_a_classifier_none()
    {
        var (_, faces) = InspectCommand.Run(TestPaths.SharedFile("models/ultraface-rfb-320/model.onnx"));
        var (_, fastest) = InspectCommand.Run(TestPaths.SharedFile("models/fastestdet/model.onnx"));
        var (_, mobilenet) = InspectCommand.Run(TestPaths.SharedFile("models/mobilenetv2-12-int8/model.onnx"));

        Assert.Contains("detection decoder: ssd (outputs 'scores' [1,4420,2], 'boxes' [1,4420,4]", faces, StringComparison.Ordinal);
        Assert.Contains("detection decoder: fastestdet (", fastest, StringComparison.Ordinal);
        Assert.Contains("detection decoder: none inferred, if this is a detector (", mobilenet, StringComparison.Ordinal);
    }
}
