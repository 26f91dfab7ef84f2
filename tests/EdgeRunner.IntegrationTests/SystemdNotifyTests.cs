using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using EdgeRunner.IntegrationTests.Infrastructure;
using Google.Protobuf;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// The sd_notify protocol as systemd sees it: the daemon runs as a real process with NOTIFY_SOCKET
/// pointing at a unix datagram socket this test owns, and WATCHDOG_USEC set.
/// </summary>
public sealed class SystemdNotifyTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Ready_after_models_load_then_status_and_watchdog_pings_then_stopping()
    {
        var ct = TestContext.Current.CancellationToken;
        using var folder = new TempFolder();
        using var notify = new NotifySocket(Path.Combine(folder.Path, "notify"));
        var port = FreePort.Next();
        await using var daemon = DaemonProcess.Start([], new Dictionary<string, string>
        {
            ["EDGERUNNER__Mqtt__EmbeddedBroker__Port"] = port.ToString(CultureInfo.InvariantCulture),
            ["NOTIFY_SOCKET"] = notify.Path,
            ["WATCHDOG_USEC"] = "1000000",
        });

        var beforeReady = await notify.ReadUntilAsync(m => m.Contains("READY=1", StringComparison.Ordinal), Wait, ct);
        // Models were loading (a STATUS said so) before READY; nothing pinged the watchdog before it.
        Assert.Contains(beforeReady, m => m.Contains("STATUS=loading", StringComparison.Ordinal));
        Assert.DoesNotContain(beforeReady, m => m.Contains("WATCHDOG=1", StringComparison.Ordinal));
        Assert.Contains("STATUS=", beforeReady[^1], StringComparison.Ordinal);

        // Ready means results flow: the first ones arrive on MQTT.
        await using var results = await MqttProbe.ConnectAsync(port, "edgerunner/demo/+/+/result", TimeSpan.FromSeconds(30), ct);
        await results.WaitForAsync(m => m.Topic == "edgerunner/demo/vision/synthetic/result", Wait, ct);
        await results.WaitForAsync(m => m.Topic == "edgerunner/demo/sensors/pump-1/result", Wait, ct);

        // Pings come with a current status line, while the pipelines make progress.
        var pings = 0;
        var afterReady = new List<string>();
        while (pings < 3)
        {
            var message = await notify.ReadAsync(Wait, ct);
            afterReady.Add(message);
            pings += message.Contains("WATCHDOG=1", StringComparison.Ordinal) ? 1 : 0;
        }

        // Datagrams are buffered from READY on: the first ones may predate the MQTT connection (queueing).
        Assert.All(afterReady, m => Assert.Matches(@"STATUS=1 cameras [\d.]+ inferences/s, 2 streams [\d.]+ steps/s, MQTT (connected|disconnected, queueing), \d+ published", m));
        var connected = await notify.ReadUntilAsync(m => m.Contains("MQTT connected", StringComparison.Ordinal), Wait, ct);
        Assert.Contains("WATCHDOG=1", connected[^1], StringComparison.Ordinal);
        Assert.DoesNotContain(afterReady, m => m.Contains("stalled", StringComparison.Ordinal));
        Assert.Contains("ready in", daemon.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"EdgeRunner \S+ ready in \d+ ms: ONNX Runtime \d+\.\d+\.\d+ \(/\S+libonnxruntime\.so; providers CPUExecutionProvider\); models shapes-detector on CPUExecutionProvider, vibration-lstm on CPUExecutionProvider; 1 cameras, 2 sensor streams", daemon.Stdout);

        daemon.Terminate();
        await notify.ReadUntilAsync(m => m.Contains("STOPPING=1", StringComparison.Ordinal), Wait, ct);
        Assert.Equal(0, await daemon.WaitForExitAsync(Wait, ct));
    }

    [Fact]
    public async Task Hung_inference_stops_the_watchdog_pings()
    {
        // A real hang, not a test switch: a model whose Loop runs max(pixel) * 1e12 times. Its warm-up
        // (an all-zero input) finishes at once, so the daemon gets ready; the first real frame never does.
        var ct = TestContext.Current.CancellationToken;
        using var folder = new TempFolder();
        var model = Path.Combine(folder.Path, "hang.onnx");
        await File.WriteAllBytesAsync(model, HangingClassifier(), ct);
        var config = Path.Combine(folder.Path, "config.json");
        await File.WriteAllTextAsync(config, new JsonObject
        {
            ["Device"] = new JsonObject { ["Id"] = "hang" },
            ["Mqtt"] = new JsonObject { ["EmbeddedBroker"] = new JsonObject { ["Port"] = FreePort.Next() } },
            ["Models"] = new JsonObject
            {
                ["hang"] = new JsonObject { ["Path"] = model, ["Task"] = "Classification", ["Preprocess"] = new JsonObject { ["Width"] = 32, ["Height"] = 32 } },
            },
            ["Cameras"] = new JsonObject
            {
                ["c"] = new JsonObject { ["Model"] = "hang", ["Fps"] = 20, ["Source"] = new JsonObject { ["Kind"] = "Synthetic", ["Width"] = 64, ["Height"] = 48 } },
            },
        }.ToJsonString(), ct);
        using var notify = new NotifySocket(Path.Combine(folder.Path, "notify"));
        await using var daemon = DaemonProcess.Start(["--config", config], new Dictionary<string, string>
        {
            ["NOTIFY_SOCKET"] = notify.Path,
            ["WATCHDOG_USEC"] = "1000000",
        });

        await notify.ReadUntilAsync(m => m.Contains("READY=1", StringComparison.Ordinal), Wait, ct);
        var stalled = (await notify.ReadUntilAsync(m => m.Contains("stalled", StringComparison.Ordinal), Wait, ct))[^1];
        Assert.Contains("STATUS=stalled: camera c: inference completed no frame", stalled, StringComparison.Ordinal);
        Assert.DoesNotContain("WATCHDOG=1", stalled, StringComparison.Ordinal);

        // Every check from here on reports the stall and none pings: systemd's watchdog fires.
        for (var i = 0; i < 4; i++)
        {
            var next = await notify.ReadAsync(Wait, ct);
            Assert.Contains("STATUS=stalled: camera c", next, StringComparison.Ordinal);
            Assert.DoesNotContain("WATCHDOG=1", next, StringComparison.Ordinal);
        }

        Assert.Contains("Stalled: camera c", daemon.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hung_sensor_model_step_stops_the_watchdog_pings()
    {
        // The sensor twin of the hung camera: a sequence model whose Loop runs max(chunk) * 1e12 times,
        // fed by a looped CSV at real-time speed (samples keep arriving). Its first step never finishes.
        var ct = TestContext.Current.CancellationToken;
        using var folder = new TempFolder();
        var model = Path.Combine(folder.Path, "hang.onnx");
        await File.WriteAllBytesAsync(model, HangingSequenceModel(), ct);
        var manifest = Path.Combine(folder.Path, "hang.json");
        await File.WriteAllTextAsync(manifest, new JsonObject
        {
            ["schema"] = 1,
            ["id"] = "hang",
            ["file"] = "hang.onnx",
            ["sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(model, ct))),
            ["task"] = "sequence_reconstruction",
            ["state"] = new JsonArray(),
            ["stream"] = new JsonObject { ["input"] = "x", ["sample_rate_hz"] = 100, ["channels"] = new JsonArray("v"), ["chunk_samples"] = SequenceChunk },
            ["postprocess"] = new JsonObject { ["kind"] = "sequence_reconstruction", ["output"] = "y" },
        }.ToJsonString(), ct);
        var csv = Path.Combine(folder.Path, "values.csv");
        await File.WriteAllLinesAsync(csv, ["v", .. Enumerable.Range(1, 20).Select(i => (i * 0.5).ToString(CultureInfo.InvariantCulture))], ct);
        var config = Path.Combine(folder.Path, "config.json");
        await File.WriteAllTextAsync(config, new JsonObject
        {
            ["Device"] = new JsonObject { ["Id"] = "hang-sensor" },
            ["Mqtt"] = new JsonObject { ["EmbeddedBroker"] = new JsonObject { ["Port"] = FreePort.Next() } },
            ["Models"] = new JsonObject { ["hang"] = new JsonObject { ["Manifest"] = manifest } },
            ["Sensors"] = new JsonObject
            {
                ["s"] = new JsonObject
                {
                    ["Model"] = "hang",
                    ["Source"] = new JsonObject { ["Kind"] = "Csv", ["Path"] = csv, ["Columns"] = new JsonArray("v"), ["SampleRateHz"] = 100, ["Speed"] = 1, ["Loop"] = true },
                },
            },
        }.ToJsonString(), ct);
        using var notify = new NotifySocket(Path.Combine(folder.Path, "notify"));
        await using var daemon = DaemonProcess.Start(["--config", config], new Dictionary<string, string>
        {
            ["NOTIFY_SOCKET"] = notify.Path,
            ["WATCHDOG_USEC"] = "1000000",
        });

        await notify.ReadUntilAsync(m => m.Contains("READY=1", StringComparison.Ordinal), Wait, ct);
        var stalled = (await notify.ReadUntilAsync(m => m.Contains("stalled", StringComparison.Ordinal), Wait, ct))[^1];
        Assert.Contains("STATUS=stalled: sensor stream s: a model step has not finished", stalled, StringComparison.Ordinal);
        Assert.DoesNotContain("WATCHDOG=1", stalled, StringComparison.Ordinal);

        for (var i = 0; i < 4; i++)
        {
            var next = await notify.ReadAsync(Wait, ct);
            Assert.Contains("STATUS=stalled: sensor stream s", next, StringComparison.Ordinal);
            Assert.DoesNotContain("WATCHDOG=1", next, StringComparison.Ordinal);
        }

        Assert.Contains("Stalled: sensor stream s", daemon.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_sensor_stream_without_input_is_waiting_not_hung()
    {
        // MQTT ingest on a topic nobody publishes to: the stream waits for samples, its step counter
        // stands still, and that is no reason for systemd to restart the daemon.
        var ct = TestContext.Current.CancellationToken;
        using var folder = new TempFolder();
        var config = Path.Combine(folder.Path, "config.json");
        await File.WriteAllTextAsync(config, new JsonObject
        {
            ["Device"] = new JsonObject { ["Id"] = "silent-sensor" },
            ["Mqtt"] = new JsonObject { ["EmbeddedBroker"] = new JsonObject { ["Port"] = FreePort.Next() } },
            ["Models"] = new JsonObject { ["lstm"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("vibration-lstm") } },
            ["Sensors"] = new JsonObject
            {
                ["vib"] = new JsonObject
                {
                    ["Model"] = "lstm",
                    ["Source"] = new JsonObject { ["Kind"] = "Mqtt", ["Topic"] = "plant/silent/accel", ["Columns"] = new JsonArray("ax", "ay", "az") },
                },
            },
        }.ToJsonString(), ct);
        using var notify = new NotifySocket(Path.Combine(folder.Path, "notify"));
        await using var daemon = DaemonProcess.Start(["--config", config], new Dictionary<string, string>
        {
            ["NOTIFY_SOCKET"] = notify.Path,
            ["WATCHDOG_USEC"] = "1000000",
        });

        await notify.ReadUntilAsync(m => m.Contains("READY=1", StringComparison.Ordinal), Wait, ct);
        await notify.ReadUntilAsync(m => m.Contains("MQTT connected", StringComparison.Ordinal), Wait, ct);
        // Three times the checks that make a stage hung: every one pings, none reports a stall.
        for (var i = 0; i < 6; i++)
        {
            var next = await notify.ReadAsync(Wait, ct);
            Assert.Contains("WATCHDOG=1", next, StringComparison.Ordinal);
            Assert.Contains("1 streams 0.0 steps/s", next, StringComparison.Ordinal);
            Assert.DoesNotContain("stalled", next, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("Stalled:", daemon.Stdout, StringComparison.Ordinal);
    }

    private const int SequenceChunk = 4;

    /// <summary>x [batch,1,4] → Loop(trip count = max(x) * 1e12, an empty body) → y [1,1,4] (zeros).</summary>
    private static byte[] HangingSequenceModel()
    {
        const int Bool = 9;
        var body = GraphOf(OnnxProto.WriteModel(
            7,
            [(string.Empty, 13)],
            [
                new OnnxNode("Identity", string.Empty, ["cond_in"], ["cond_out"], []),
                new OnnxNode("Identity", string.Empty, ["v_in"], ["v_out"], []),
            ],
            [],
            [("i", OnnxTensor.Int64, []), ("cond_in", Bool, []), ("v_in", OnnxTensor.Float, [1, 1, SequenceChunk])],
            [("cond_out", Bool, []), ("v_out", OnnxTensor.Float, [1, 1, SequenceChunk])]));
        return OnnxProto.WriteModel(
            8,
            [(string.Empty, 13)],
            [
                new OnnxNode("ReduceMax", string.Empty, ["x"], ["max"], [OnnxProto.IntAttribute("keepdims", 0)]),
                new OnnxNode("Mul", string.Empty, ["max", "big"], ["trips_f"], []),
                new OnnxNode("Cast", string.Empty, ["trips_f"], ["trips"], [OnnxProto.IntAttribute("to", OnnxTensor.Int64)]),
                new OnnxNode("Loop", string.Empty, ["trips", string.Empty, "v0"], ["y"], [GraphAttribute("body", body)]),
            ],
            [
                new OnnxTensor("big", OnnxTensor.Float, [], [1e12f], []),
                new OnnxTensor("v0", OnnxTensor.Float, [1, 1, SequenceChunk], [0f, 0f, 0f, 0f], []),
            ],
            [("x", OnnxTensor.Float, ["batch", 1, SequenceChunk])],
            [("y", OnnxTensor.Float, ["batch", 1, SequenceChunk])]);
    }

    /// <summary>input [1,3,32,32] → Loop(trip count = max(input) * 1e12, an empty body) → logits [1,2].</summary>
    private static byte[] HangingClassifier()
    {
        const int Bool = 9;
        var body = GraphOf(OnnxProto.WriteModel(
            7,
            [(string.Empty, 13)],
            [
                new OnnxNode("Identity", string.Empty, ["cond_in"], ["cond_out"], []),
                new OnnxNode("Identity", string.Empty, ["v_in"], ["v_out"], []),
            ],
            [],
            [("i", OnnxTensor.Int64, []), ("cond_in", Bool, []), ("v_in", OnnxTensor.Float, [1, 2])],
            [("cond_out", Bool, []), ("v_out", OnnxTensor.Float, [1, 2])]));
        return OnnxProto.WriteModel(
            7,
            [(string.Empty, 13)],
            [
                new OnnxNode("ReduceMax", string.Empty, ["input"], ["max"], [OnnxProto.IntAttribute("keepdims", 0)]),
                new OnnxNode("Mul", string.Empty, ["max", "big"], ["trips_f"], []),
                new OnnxNode("Cast", string.Empty, ["trips_f"], ["trips"], [OnnxProto.IntAttribute("to", OnnxTensor.Int64)]),
                new OnnxNode("Loop", string.Empty, ["trips", string.Empty, "v0"], ["logits"], [GraphAttribute("body", body)]),
            ],
            [
                new OnnxTensor("big", OnnxTensor.Float, [], [1e12f], []),
                new OnnxTensor("v0", OnnxTensor.Float, [1, 2], [0f, 0f], []),
            ],
            [("input", OnnxTensor.Float, [1, 3, 32, 32])],
            [("logits", OnnxTensor.Float, [1, 2])]);
    }

    /// <summary>The GraphProto (field 7) of a ModelProto.</summary>
    private static ByteString GraphOf(byte[] model)
    {
        var input = new CodedInputStream(model);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == 7)
            {
                return input.ReadBytes();
            }

            input.SkipLastField();
        }

        throw new InvalidOperationException("model has no graph");
    }

    /// <summary>An AttributeProto of type GRAPH (5): name (1), g (6), type (20).</summary>
    private static ByteString GraphAttribute(string name, ByteString graph)
    {
        using var memory = new MemoryStream();
        using (var output = new CodedOutputStream(memory, leaveOpen: true))
        {
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteString(name);
            output.WriteTag(6, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(graph);
            output.WriteTag(20, WireFormat.WireType.Varint);
            output.WriteInt32(5);
        }

        return ByteString.CopyFrom(memory.ToArray());
    }

    /// <summary>The service manager's end of NOTIFY_SOCKET: a bound unix datagram socket, each datagram one message.</summary>
    private sealed class NotifySocket : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        private readonly Channel<string> _messages = Channel.CreateUnbounded<string>();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _receiving;

        public NotifySocket(string path)
        {
            Path = path;
            _socket.Bind(new UnixDomainSocketEndPoint(path));
            _receiving = Task.Run(ReceiveAsync);
        }

        public string Path { get; }

        public async Task<string> ReadAsync(TimeSpan timeout, CancellationToken cancellationToken)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            return await _messages.Reader.ReadAsync(cts.Token);
        }

        /// <summary>Messages up to and including the first that matches.</summary>
        public async Task<List<string>> ReadUntilAsync(Func<string, bool> predicate, TimeSpan timeout, CancellationToken cancellationToken)
        {
            var read = new List<string>();
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            while (true)
            {
                var message = await _messages.Reader.ReadAsync(cts.Token);
                read.Add(message);
                if (predicate(message))
                {
                    return read;
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _socket.Dispose();
            _receiving.Wait(TimeSpan.FromSeconds(5));
            _stop.Dispose();
            File.Delete(Path);
        }

        private async Task ReceiveAsync()
        {
            var buffer = new byte[4096];
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    var count = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                    _messages.Writer.TryWrite(Encoding.UTF8.GetString(buffer, 0, count));
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                // Disposed.
            }
        }
    }
}
