using System.Text;
using BenchmarkDotNet.Attributes;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Sensors;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// Parsing MQTT ingest payloads into channel-interleaved samples (what the MQTT receive loop does for
/// every message of an <c>Mqtt</c> sensor stream): one 3-axis sample as plain numbers, as a JSON object
/// with a timestamp, and a batch of 50 samples as a JSON array of objects.
/// </summary>
[MemoryDiagnoser]
public class MqttIngestBenchmarks
{
    private readonly MqttPayloadParser _numbers = new(3, MqttPayloadFormat.Auto, ["ax", "ay", "az"], "ts");
    private readonly MqttPayloadParser _json = new(3, MqttPayloadFormat.Auto, ["ax", "ay", "az"], "ts");
    private readonly byte[] _numbersPayload = Encoding.UTF8.GetBytes("0.0123,-0.0311,0.9987");
    private readonly byte[] _objectPayload = Encoding.UTF8.GetBytes("{\"ts\":1764206400.25,\"ax\":0.0123,\"ay\":-0.0311,\"az\":0.9987,\"device\":\"m1\"}");
    private readonly byte[] _batchPayload = Encoding.UTF8.GetBytes(
        "[" + string.Join(",", Enumerable.Range(0, 50).Select(i => FormattableString.Invariant($"{{\"ax\":{0.01 * i:0.0000},\"ay\":{-0.02 * i:0.0000},\"az\":{1 - (0.001 * i):0.0000}}}"))) + "]");

    private readonly float[] _samples = new float[3 * 64];

    [Benchmark(Description = "numbers: 1 sample")]
    public int Numbers() => Parse(_numbers, _numbersPayload);

    [Benchmark(Description = "JSON object + timestamp: 1 sample")]
    public int JsonObject() => Parse(_json, _objectPayload);

    [Benchmark(Description = "JSON array of objects: 50 samples")]
    public int JsonBatch() => Parse(_json, _batchPayload);

    private int Parse(MqttPayloadParser parser, byte[] payload) =>
        parser.TryParse(payload, _samples, out var samples, out _, out var error) ? samples : throw new InvalidOperationException(error);
}
