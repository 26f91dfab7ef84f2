using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Sequence;
using EdgeRunner.Service;
using EdgeRunner.Service.Sensors;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// A stream whose source throws what it never should is logged, counted, published as restarting and
/// run again after the backoff; a source's own declared error fails its stream for good. Either way the
/// other streams keep publishing. The failing source is put in through the service collection, the one
/// seam the daemon leaves for it; everything else is the real daemon against a real broker.
/// </summary>
public sealed class SensorSupervisionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_source_throwing_unexpectedly_is_restarted_with_backoff_and_the_other_streams_keep_publishing()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("supervise", ct);
        var deviceId = scenario.DeviceId;
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await StartAsync(
            scenario,
            (streamId, options, blockSamples, rate) => streamId == "bad"
                ? new ThrowingSource(new SimulatedVibrationSource(((EdgeRunner.Service.Sensors.Sources.SimulatedVibrationSensorOptions)options.Source).Seed, rate, blockSamples, TimeProvider.System), everyReads: 3, () => new InvalidOperationException("the driver lost its mind"))
                : null,
            ct);
        var service = host.Services.GetRequiredService<SensorService>();

        // Two failures, each published retained with the reason, with a restart (and results) between them.
        var restarting = await WaitForStatesAsync(probe, deviceId, "bad", "restarting", count: 2, ct);
        var goodAtFirstFailure = Seqs(probe, deviceId, "good").Max();
        await probe.WaitForAsync(m => m.Topic.EndsWith("/good/result", StringComparison.Ordinal) && Seq(m) > goodAtFirstFailure + 4, Wait, ct);
        await host.StopAsync(ct);

        var reason = restarting[0].GetProperty("reason").GetString()!;
        Assert.StartsWith("InvalidOperationException: the driver lost its mind; restarting in ", reason, StringComparison.Ordinal);
        Assert.Contains(probe.Seen, m => m.Topic.EndsWith("/bad/state", StringComparison.Ordinal) && m.Retain && State(m).GetProperty("reason").GetString() == "restarted");
        var bad = service.Streams.Single(s => s.StreamId == "bad");
        Assert.True(bad.UnexpectedErrors >= 2, $"{bad.UnexpectedErrors} errors counted");
        Assert.True(service.UnexpectedErrors >= 2);
        Assert.True(bad.StateResets >= 1, "the state interrupted by the error starts afresh");

        // The bad stream published between its failures; the good one never stopped nor restarted.
        Assert.True(Seqs(probe, deviceId, "bad").Count >= 4);
        Assert.Equal(0, service.Streams.Single(s => s.StreamId == "good").UnexpectedErrors);
        Assert.DoesNotContain(probe.Seen, m => m.Topic.EndsWith("/good/state", StringComparison.Ordinal) && State(m).GetProperty("state").GetString() != "streaming");
    }

    [Fact]
    public async Task A_source_failing_with_its_own_declared_error_fails_its_stream_once_and_the_others_go_on()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("supervise", ct);
        var deviceId = scenario.DeviceId;
        var probe = await scenario.ProbeAsync("sensors/#", ct);
        using var host = await StartAsync(
            scenario,
            (streamId, options, blockSamples, rate) => streamId == "bad"
                ? new ThrowingSource(new SimulatedVibrationSource(((EdgeRunner.Service.Sensors.Sources.SimulatedVibrationSensorOptions)options.Source).Seed, rate, blockSamples, TimeProvider.System), everyReads: 2, () => new SensorSourceException("line 7: not a number"))
                : null,
            ct);
        var service = host.Services.GetRequiredService<SensorService>();

        var failed = await WaitForStatesAsync(probe, deviceId, "bad", "failed", count: 1, ct);
        var goodAtFailure = Seqs(probe, deviceId, "good").DefaultIfEmpty(-1).Max();
        await probe.WaitForAsync(m => m.Topic.EndsWith("/good/result", StringComparison.Ordinal) && Seq(m) > goodAtFailure + 2, Wait, ct);
        await host.StopAsync(ct);

        Assert.Equal("line 7: not a number", failed[0].GetProperty("reason").GetString());
        Assert.Equal(1, service.StreamsFailed);
        Assert.Equal(0, service.UnexpectedErrors);
        Assert.DoesNotContain(probe.Seen, m => m.Topic.EndsWith("/bad/state", StringComparison.Ordinal) && State(m).GetProperty("state").GetString() == "restarting");
        Assert.Single(Seqs(probe, deviceId, "bad")); // one good read, one step, then the error
    }

    [Fact]
    public async Task The_step_batchers_worker_survives_an_unexpected_error_failing_only_the_step_it_had_taken()
    {
        var ct = TestContext.Current.CancellationToken;
        using var model = SequenceProcessorFactory.LoadModel(
            EdgeRunner.Service.Catalog.ModelCatalog.Resolve("lstm", new EdgeRunner.Service.Configuration.ModelOptions { Manifest = BundledModels.ManifestPath("vibration-lstm") }),
            "test",
            Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        await using var batcher = new StepBatcher(model, maxBatch: 1, TimeSpan.Zero, TimeProvider.System, _ => TimeSpan.FromMilliseconds(100));

        // A chunk longer than the model's does not fit the batch buffer: the worker's loop itself throws.
        var broken = new StepRequest(model.CreateState("broken"), new float[model.ChunkLength + 1], new float[model.ResultLength]);
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(async () => await batcher.StepAsync(broken).AsTask().WaitAsync(Wait, ct));
        Assert.Contains("The step batcher of model 'lstm' failed", failure.Message, StringComparison.Ordinal);

        // The worker runs again (after its backoff) and steps the next stream.
        var good = new StepRequest(model.CreateState("good"), new float[model.ChunkLength], new float[model.ResultLength]);
        await batcher.StepAsync(good).AsTask().WaitAsync(Wait, ct);
        Assert.Equal(1, batcher.WorkerFailures);
        Assert.Equal(1, batcher.Steps);
        Assert.Equal(1, good.State.Steps);
    }

    /// <summary>The daemon's host in-process with two simulated streams, "bad" and "good", and <paramref name="sources"/> in its service collection.</summary>
    private static Task<IHost> StartAsync(DaemonScenario scenario, SensorSourceOverride sources, CancellationToken ct) => scenario.StartHostAsync(
        new JsonObject
        {
            ["Models"] = new JsonObject { ["lstm"] = TestConfig.BundledModel("vibration-lstm") },
            ["Sensors"] = new JsonObject
            {
                ["bad"] = TestConfig.SimulatedVibration(1),
                ["good"] = TestConfig.SimulatedVibration(2),
            },
        },
        ct,
        services => services.AddSingleton(sources));

    private static async Task<List<JsonElement>> WaitForStatesAsync(MqttProbe probe, string deviceId, string stream, string state, int count, CancellationToken ct)
    {
        var topic = $"edgerunner/{deviceId}/sensors/{stream}/state";
        List<JsonElement> Matching() => [.. probe.Seen.Where(m => m.Topic == topic).Select(State).Where(s => s.GetProperty("state").GetString() == state)];
        while (Matching().Count < count)
        {
            await probe.WaitForAsync(m => m.Topic == topic, Wait, ct);
        }

        return Matching();
    }

    private static JsonElement State(ReceivedMessage message) => JsonDocument.Parse(message.Payload).RootElement;

    private static long Seq(ReceivedMessage message) => JsonDocument.Parse(message.Payload).RootElement.GetProperty("seq").GetInt64();

    private static List<long> Seqs(MqttProbe probe, string deviceId, string stream) =>
        [.. probe.Seen.Where(m => m.Topic == $"edgerunner/{deviceId}/sensors/{stream}/result").Select(Seq)];

    /// <summary>A source that throws <paramref name="error"/> on every <paramref name="everyReads"/>-th read and reads <paramref name="inner"/> otherwise.</summary>
    private sealed class ThrowingSource(ISensorSource inner, int everyReads, Func<Exception> error) : ISensorSource
    {
        private int _reads;

        public string Description => $"a source failing every {everyReads} reads";

        public IReadOnlyList<string> Channels => inner.Channels;

        public double SampleRateHz => inner.SampleRateHz;

        public ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken) =>
            ++_reads % everyReads == 0 ? throw error() : inner.ReadAsync(destination, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
