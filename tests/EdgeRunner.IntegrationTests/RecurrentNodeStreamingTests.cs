using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Sequence;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The ONNX backend node tests for LSTM, GRU and RNN (../shared/onnx-node-tests) streamed through the
/// daemon's stateful runner. Each test's operator, weights and attributes are put into a graph that
/// exposes the recurrent state (initial_h/initial_c in, Y_h/Y_c out), which the runner pairs by itself.
/// That graph reproduces the node test's reference output; then a longer sequence stepped one time
/// step at a time with the state carried — three streams batched, and each alone — equals the same
/// graph run over the whole sequence at once.
/// </summary>
public sealed class RecurrentNodeStreamingTests
{
    private const int Steps = 24;

    public static TheoryData<string> NodeTests =>
    [
        "test_lstm_defaults",
        "test_lstm_with_initial_bias",
        "test_lstm_with_peepholes",
        "test_gru_defaults",
        "test_gru_with_initial_bias",
        "test_simple_rnn_defaults",
    ];

    [Theory]
    [MemberData(nameof(NodeTests))]
    public void Stepping_with_carried_state_matches_the_reference_and_the_whole_sequence(string test)
    {
        var rig = NodeRig.Create(test);
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "streaming.onnx");
        File.WriteAllBytes(path, rig.StreamingGraph());

        // 1. The streaming graph is the node test: its Y_h for the test's X and initial state is the reference output.
        using (var session = new InferenceSession(path))
        {
            var yh = rig.RunWhole(session, rig.X.Floats, rig.X.Dims[0], rig.InitialH, rig.InitialC).Yh;
            AssertClose(rig.Expected.Floats, yh, 1e-5f, $"{test}: Y_h vs reference");
        }

        // 2. Streaming equals the whole sequence, for a sequence longer than the test's.
        var random = new Random(20261127);
        var batch = rig.Batch;
        var sequence = new float[Steps * batch * rig.InputSize];
        for (var i = 0; i < sequence.Length; i++)
        {
            sequence[i] = (float)((random.NextDouble() * 2) - 1);
        }

        float[] whole;
        using (var session = new InferenceSession(path))
        {
            whole = rig.RunWhole(session, sequence, Steps, rig.InitialH, rig.InitialC).Y; // [T, 1, B, H]
        }

        using var model = SequenceModel.Load(
            new SequenceModelOptions
            {
                Id = test,
                Path = path,
                StreamInput = "X",
                StreamBatchAxis = 1,
                ResultOutput = "Y",
                ResultBatchAxis = 2,
                State = null, // inferred: initial_h → Y_h (and initial_c → Y_c)
            },
            NullLogger.Instance);
        Assert.True(model.StateInferred);
        Assert.Equal(rig.HasCellState ? ["initial_h", "initial_c"] : ["initial_h"], model.StatePairs.Select(p => p.Input));
        Assert.Equal(rig.HasCellState ? ["Y_h", "Y_c"] : ["Y_h"], model.StatePairs.Select(p => p.Output));
        Assert.All(model.StatePairs, p => Assert.Equal(1, p.BatchAxis));
        Assert.Equal(rig.InputSize, model.ChunkLength);
        Assert.Equal(rig.Hidden, model.ResultLength);

        // The node test's own input through the runner: each batch row a stream, stepped with the test's
        // initial state; one time step, so the result is the reference Y_h.
        var referenceStates = Enumerable.Range(0, batch).Select(b => InitialState(model, rig, b)).ToList();
        var referenceResults = new float[batch * rig.Hidden];
        model.StepBatch(referenceStates, rig.X.Floats, referenceResults);
        AssertClose(rig.Expected.Floats, referenceResults, 1e-5f, $"{test}: runner on the test's input vs reference");

        var batched = Enumerable.Range(0, batch).Select(b => InitialState(model, rig, b)).ToList();
        var alone = Enumerable.Range(0, batch).Select(b => InitialState(model, rig, b)).ToList();
        var chunks = new float[batch * rig.InputSize];
        var results = new float[batch * rig.Hidden];
        var single = new float[rig.Hidden];
        for (var t = 0; t < Steps; t++)
        {
            // X[t] is [B, I]: stream b's chunk is row b.
            sequence.AsSpan(t * batch * rig.InputSize, batch * rig.InputSize).CopyTo(chunks);
            model.StepBatch(batched, chunks, results);
            for (var b = 0; b < batch; b++)
            {
                var expected = whole.AsSpan(((t * batch) + b) * rig.Hidden, rig.Hidden).ToArray();
                AssertClose(expected, results.AsSpan(b * rig.Hidden, rig.Hidden).ToArray(), 1e-5f, $"{test}: step {t}, stream {b} batched");
                model.Step(alone[b], chunks.AsSpan(b * rig.InputSize, rig.InputSize), single);
                AssertClose(expected, single, 1e-5f, $"{test}: step {t}, stream {b} alone");
            }
        }

        Assert.All(batched, s => Assert.Equal(Steps, s.Steps));
    }

    [Fact]
    public void A_model_with_a_fixed_batch_of_one_runs_its_streams_one_at_a_time_with_their_own_state()
    {
        var rig = NodeRig.Create("test_gru_with_initial_bias");
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "batch1.onnx");
        File.WriteAllBytes(path, rig.StreamingGraph(fixedBatchOfOne: true));
        using var model = SequenceModel.Load(
            new SequenceModelOptions { Id = "batch1", Path = path, StreamInput = "X", StreamBatchAxis = 1, ResultOutput = "Y", ResultBatchAxis = 2 },
            NullLogger.Instance);
        Assert.Equal(1, model.MaxBatch);

        const int streams = 3;
        var random = new Random(7);
        var sequences = Enumerable.Range(0, streams).Select(_ => Enumerable.Range(0, Steps * rig.InputSize).Select(_ => (float)random.NextDouble()).ToArray()).ToArray();
        var zeros = new float[rig.Hidden];
        float[][] whole;
        using (var session = new InferenceSession(path))
        {
            whole = [.. sequences.Select(x => rig.RunWhole(session, x, Steps, zeros, zeros, batch: 1).Y)];
        }

        var states = Enumerable.Range(0, streams).Select(i => model.CreateState($"s{i}")).ToList();
        var chunks = new float[streams * rig.InputSize];
        var results = new float[streams * rig.Hidden];
        for (var t = 0; t < Steps; t++)
        {
            for (var i = 0; i < streams; i++)
            {
                sequences[i].AsSpan(t * rig.InputSize, rig.InputSize).CopyTo(chunks.AsSpan(i * rig.InputSize));
            }

            // More streams than the model's batch: the runner steps them one by one.
            model.StepBatch(states, chunks, results);
            for (var i = 0; i < streams; i++)
            {
                AssertClose(whole[i].AsSpan(t * rig.Hidden, rig.Hidden).ToArray(), results.AsSpan(i * rig.Hidden, rig.Hidden).ToArray(), 1e-5f, $"step {t}, stream {i}");
            }
        }
    }

    [Fact]
    public void A_node_model_whose_state_inputs_have_no_outputs_is_refused_naming_the_input()
    {
        // test_lstm_with_peepholes takes initial_h and initial_c but gives back only Y_h: initial_c cannot be carried.
        var path = TestPaths.SharedFile("onnx-node-tests/test_lstm_with_peepholes/model.onnx");
        var error = Assert.Throws<ModelLoadException>(() => SequenceModel.Load(
            new SequenceModelOptions
            {
                Id = "peepholes",
                Path = path,
                StreamInput = "X",
                StreamBatchAxis = 1,
                ResultOutput = "Y_h",
                ResultBatchAxis = 1,
                ConstantInputs = new Dictionary<string, double[]> { ["sequence_lens"] = [1] },
                State = null,
            },
            NullLogger.Instance));
        Assert.Contains("input", error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Matches("'(W|R|B|P|initial_h|initial_c)'.*(no output matches it|several outputs)", error.Message);
    }

    [Fact]
    public void A_state_input_without_a_matching_output_is_named()
    {
        // The streaming LSTM graph with Y_c dropped from the outputs: initial_c has nowhere to come back from.
        var rig = NodeRig.Create("test_lstm_defaults");
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "no_yc.onnx");
        File.WriteAllBytes(path, rig.StreamingGraph(dropCellOutput: true));
        var error = Assert.Throws<ModelLoadException>(() => SequenceModel.Load(
            new SequenceModelOptions { Id = "no-yc", Path = path, StreamInput = "X", StreamBatchAxis = 1, ResultOutput = "Y", ResultBatchAxis = 2 },
            NullLogger.Instance));
        Assert.Contains("'initial_c'", error.Message, StringComparison.Ordinal);
        Assert.Contains("no output matches it", error.Message, StringComparison.Ordinal);
        Assert.Contains("Y_h", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_batchwise_lstm_refused_by_onnx_runtime_gives_a_clear_load_error()
    {
        var path = TestPaths.SharedFile("onnx-node-tests/test_lstm_batchwise/model.onnx");
        var error = Assert.Throws<ModelLoadException>(() => SequenceModel.Load(
            new SequenceModelOptions { Id = "batchwise", Path = path, StreamInput = "X", ResultOutput = "Y_h", State = [] },
            NullLogger.Instance));
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("layout", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    private static StreamState InitialState(SequenceModel model, NodeRig rig, int b)
    {
        var state = model.CreateState($"stream-{b}");
        rig.InitialH.AsSpan(b * rig.Hidden, rig.Hidden).CopyTo(state.Tensor(0));
        if (rig.HasCellState)
        {
            rig.InitialC.AsSpan(b * rig.Hidden, rig.Hidden).CopyTo(state.Tensor(1));
        }

        return state;
    }

    private static void AssertClose(float[] expected, float[] actual, float tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"{what}: [{i}] expected {expected[i]}, got {actual[i]}");
        }
    }

    /// <summary>One node test: its operator and tensors, and the graph that exposes its state.</summary>
    internal sealed class NodeRig
    {
        private readonly OnnxModel _model;
        private readonly OnnxNode _node;
        private readonly Dictionary<string, OnnxTensor> _inputs;

        private NodeRig(OnnxModel model, Dictionary<string, OnnxTensor> inputs, OnnxTensor expected)
        {
            _model = model;
            _node = model.Nodes.Single();
            _inputs = inputs;
            Expected = expected;
            X = inputs[_node.Inputs[0]];
            var r = inputs[_node.Inputs[2]];
            Hidden = (int)r.Dims[2];
            Batch = (int)X.Dims[1];
            InputSize = (int)X.Dims[2];
            HasCellState = _node.OpType == "LSTM";
            InitialH = Optional(5) ?? new float[Batch * Hidden];
            InitialC = Optional(6) ?? new float[Batch * Hidden];
        }

        public OnnxTensor X { get; }

        public OnnxTensor Expected { get; }

        public int Hidden { get; }

        public int Batch { get; }

        public int InputSize { get; }

        public bool HasCellState { get; }

        public float[] InitialH { get; }

        public float[] InitialC { get; }

        public static NodeRig Create(string test)
        {
            var folder = TestPaths.SharedFile($"onnx-node-tests/{test}");
            var model = OnnxProto.ReadModel(Path.Combine(folder, "model.onnx"));
            var inputs = new Dictionary<string, OnnxTensor>();
            for (var i = 0; i < model.Inputs.Count; i++)
            {
                inputs[model.Inputs[i]] = OnnxProto.ReadTensor(Path.Combine(folder, "test_data_set_0", $"input_{i}.pb"));
            }

            var expected = OnnxProto.ReadTensor(Path.Combine(folder, "test_data_set_0", "output_0.pb"));
            Assert.Equal("Y_h", model.Outputs[0]);
            return new NodeRig(model, inputs, expected);
        }

        /// <summary>
        /// The node with X [T, batch, I] and its initial state as graph inputs, weights as
        /// initializers, Y [T, 1, batch, H] and Y_h (Y_c) as outputs.
        /// </summary>
        public byte[] StreamingGraph(bool dropCellOutput = false, bool fixedBatchOfOne = false)
        {
            object batch = fixedBatchOfOne ? 1 : "batch";
            string Input(int index) => index < _node.Inputs.Count ? _node.Inputs[index] : string.Empty;
            var weights = new[] { 1, 2, 3, 7 }.Select(Input).Where(n => n.Length > 0).Select(n => _inputs[n] with { Name = n }).ToList();
            var nodeInputs = new List<string> { "X", Input(1), Input(2), Input(3), string.Empty, "initial_h" };
            var nodeOutputs = new List<string> { "Y", "Y_h" };
            if (HasCellState)
            {
                nodeInputs.Add("initial_c");
                nodeInputs.Add(Input(7));
                nodeOutputs.Add("Y_c");
            }

            while (nodeInputs[^1].Length == 0)
            {
                nodeInputs.RemoveAt(nodeInputs.Count - 1);
            }

            var node = _node with { Inputs = nodeInputs, Outputs = nodeOutputs };
            var graphInputs = new List<(string, int, object[])>
            {
                ("X", OnnxTensor.Float, ["T", batch, InputSize]),
                ("initial_h", OnnxTensor.Float, [1, batch, Hidden]),
            };
            var graphOutputs = new List<(string, int, object[])>
            {
                ("Y", OnnxTensor.Float, ["T", 1, batch, Hidden]),
                ("Y_h", OnnxTensor.Float, [1, batch, Hidden]),
            };
            if (HasCellState)
            {
                graphInputs.Add(("initial_c", OnnxTensor.Float, [1, batch, Hidden]));
                if (!dropCellOutput)
                {
                    graphOutputs.Add(("Y_c", OnnxTensor.Float, [1, batch, Hidden]));
                }
            }

            return OnnxProto.WriteModel(_model.IrVersion, _model.Opsets, [node], weights, graphInputs, graphOutputs);
        }

        public (float[] Y, float[] Yh) RunWhole(InferenceSession session, float[] x, long steps, float[] initialH, float[] initialC, int? batch = null)
        {
            var b = batch ?? Batch;
            var inputs = new Dictionary<string, OrtValue>
            {
                ["X"] = OrtValue.CreateTensorValueFromMemory(x, [steps, b, InputSize]),
                ["initial_h"] = OrtValue.CreateTensorValueFromMemory(initialH.ToArray(), [1, b, Hidden]),
            };
            if (HasCellState)
            {
                inputs["initial_c"] = OrtValue.CreateTensorValueFromMemory(initialC.ToArray(), [1, b, Hidden]);
            }

            try
            {
                using var runOptions = new RunOptions();
                using var outputs = session.Run(runOptions, inputs.Keys.ToList(), inputs.Values.ToList(), ["Y", "Y_h"]);
                return (outputs[0].GetTensorDataAsSpan<float>().ToArray(), outputs[1].GetTensorDataAsSpan<float>().ToArray());
            }
            finally
            {
                foreach (var value in inputs.Values)
                {
                    value.Dispose();
                }
            }
        }

        private float[]? Optional(int index) =>
            index < _node.Inputs.Count && _node.Inputs[index].Length > 0 && _inputs.TryGetValue(_node.Inputs[index], out var t) ? t.Floats : null;
    }
}
