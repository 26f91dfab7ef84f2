using System.Text;
using EdgeRunner.Service;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Publishing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests;

/// <summary>
/// The publishing side after its split: the composite that hands results to every output, the in-memory
/// outbox behind the MQTT publisher, the reconnect delay (the one backoff rule), and the MQTT registration.
/// </summary>
public sealed class PublishingTests
{
    private const string Topic = "edgerunner/dev/vision/cam/result";

    /// <summary>An output that counts what it is handed (no allocation per call) and takes it or not.</summary>
    private sealed class CountingOutput(bool takes) : IResultOutput
    {
        public int Calls { get; private set; }

        public long Bytes { get; private set; }

        public bool LastRetain { get; private set; }

        public bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain)
        {
            Calls++;
            Bytes += payload.Length;
            LastRetain = retain;
            return takes;
        }
    }

    private static MemoryOutbox Outbox(int capacity = 100) => new(capacity, 1 << 20, new FakeTimeProvider(), NullLogger.Instance);

    private static string Take(MemoryOutbox outbox)
    {
        Assert.True(outbox.TryTake(out var message));
        var text = $"{message.Topic}={Encoding.UTF8.GetString(message.Buffer, 0, message.Length)}";
        outbox.Complete(message);
        return text;
    }

    [Fact]
    public void The_composite_hands_every_result_to_every_output()
    {
        var first = new CountingOutput(takes: true);
        var second = new CountingOutput(takes: true);
        var composite = new CompositeResultPublisher([first, second]);

        Assert.True(composite.TryPublish(Topic, "{\"a\":1}"u8, retain: true));

        Assert.Equal((1, 7L, true), (first.Calls, first.Bytes, first.LastRetain));
        Assert.Equal((1, 7L, true), (second.Calls, second.Bytes, second.LastRetain));
    }

    [Fact]
    public void One_output_refusing_does_not_keep_the_result_from_the_others()
    {
        var refusing = new CountingOutput(takes: false);
        var taking = new CountingOutput(takes: true);

        Assert.True(new CompositeResultPublisher([refusing, taking]).TryPublish(Topic, "{}"u8));
        Assert.Equal(1, taking.Calls);
        Assert.False(new CompositeResultPublisher([refusing]).TryPublish(Topic, "{}"u8));
        Assert.Equal(2, refusing.Calls);
    }

    [Fact]
    public void A_composite_without_outputs_is_refused()
    {
        var ex = Assert.Throws<ArgumentException>(() => new CompositeResultPublisher([]));
        Assert.Contains("at least one result output", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Handing_a_result_through_the_composite_allocates_nothing()
    {
        var output = new CountingOutput(takes: true);
        var composite = new CompositeResultPublisher([output, new CountingOutput(takes: true)]);
        var payload = new byte[512];

        AllocationAssert.SteadyStateIsZero(() => composite.TryPublish(Topic, payload));
        Assert.True(output.Calls > 50);
    }

    [Fact]
    public void The_memory_outbox_hands_out_in_order_and_frees_what_is_completed()
    {
        var outbox = Outbox();
        Assert.True(outbox.TryAdd(Topic, "1"u8, retain: false));
        Assert.True(outbox.TryAdd(Topic, "2"u8, retain: false));
        Assert.Equal(2, outbox.Count);

        Assert.Equal($"{Topic}=1", Take(outbox));
        Assert.Equal($"{Topic}=2", Take(outbox));
        Assert.False(outbox.TryTake(out _));
        Assert.Equal(0, outbox.Count);
    }

    [Fact]
    public void The_memory_outbox_adds_the_latest_retained_state_again_after_a_connect()
    {
        var outbox = Outbox();
        const string State = "edgerunner/dev/vision/cam/state";
        outbox.TryAdd(State, "streaming"u8, retain: true);
        outbox.TryAdd(State, "reconnecting"u8, retain: true);
        outbox.TryAdd(Topic, "r"u8, retain: false);
        Assert.Equal(3, outbox.DiscardAll());

        outbox.AddRetainedAgain();

        Assert.Equal($"{State}=reconnecting", Take(outbox));
        Assert.False(outbox.TryTake(out _));
    }

    [Fact]
    public void A_closed_memory_outbox_refuses_new_messages_and_still_hands_out_the_waiting_ones()
    {
        var outbox = Outbox();
        outbox.TryAdd(Topic, "1"u8, retain: false);
        outbox.Close();

        Assert.False(outbox.TryAdd(Topic, "2"u8, retain: false));
        Assert.False(outbox.TryAdd(Topic, "3"u8, retain: true));
        Assert.Equal($"{Topic}=1", Take(outbox));
        outbox.AddRetainedAgain();
        Assert.Equal(0, outbox.Count);
    }

    [Fact]
    public void The_memory_outbox_refuses_a_message_over_the_brokers_packet_size_and_counts_it()
    {
        var outbox = Outbox();
        outbox.MaxPacketSize = 100;

        Assert.False(outbox.TryAdd(Topic, new byte[200], retain: false));
        Assert.Equal(1, outbox.Refused);
        Assert.Equal(1, outbox.RefusedFor("edgerunner/dev/vision/cam"));
    }

    [Fact]
    public void Adding_taking_and_completing_in_the_memory_outbox_allocates_nothing()
    {
        var outbox = Outbox();
        var payload = new byte[512];

        AllocationAssert.SteadyStateIsZero(() =>
        {
            outbox.TryAdd(Topic, payload, retain: false);
            outbox.TryTake(out var message);
            outbox.Complete(message);
        });
        Assert.Equal(0, outbox.Count);
    }

    [Fact]
    public async Task The_reconnect_delay_doubles_with_jitter_in_its_upper_half_and_is_capped()
    {
        var mqtt = Options.Create(new MqttOptions { Host = "127.0.0.1", ReconnectMinDelaySeconds = 0.5, ReconnectMaxDelaySeconds = 30 });
        var device = Options.Create(new DeviceOptions { Id = "dev" });
        await using var connection = new MqttConnection(mqtt, device, new EmbeddedBrokerEndpoint(mqtt, device), new MqttTopics("edgerunner", "dev"), TimeProvider.System, NullLogger<MqttConnection>.Instance);

        for (var failures = 1; failures <= 40; failures++)
        {
            var full = Math.Min(30, 0.5 * Math.Pow(2, failures - 1));
            for (var i = 0; i < 20; i++)
            {
                var delay = connection.ReconnectDelay(failures).TotalSeconds;
                Assert.InRange(delay, Math.Max(0.5, full / 2), full);
            }
        }
    }

    [Fact]
    public async Task The_mqtt_registration_makes_the_publisher_an_output_of_the_composite_and_the_dispatcher_the_subscriptions()
    {
        var external = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Device:Id"] = "dev", ["Mqtt:Host"] = "127.0.0.1" }).Build();
        var host = EdgeRunnerHost.Build(external);
        await using ((IAsyncDisposable)host)
        {
            var composite = Assert.IsType<CompositeResultPublisher>(host.Services.GetRequiredService<IResultPublisher>());
            Assert.Same(host.Services.GetRequiredService<MqttPublisher>(), Assert.Single(composite.Outputs));
            Assert.Same(host.Services.GetRequiredService<MqttSubscriptionDispatcher>(), host.Services.GetRequiredService<IMqttSubscriptions>());
            Assert.DoesNotContain(host.Services.GetServices<IHostedService>(), s => s is EmbeddedMqttBroker);
            Assert.Contains(host.Services.GetServices<IHostedService>(), s => s is MqttPublisher);
        }

        // Without Mqtt:Host the daemon runs its own broker, started before the publisher.
        var embedded = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Device:Id"] = "dev", ["Mqtt:EmbeddedBroker:Port"] = "1" }).Build();
        var embeddedHost = EdgeRunnerHost.Build(embedded);
        await using ((IAsyncDisposable)embeddedHost)
        {
            var hosted = embeddedHost.Services.GetServices<IHostedService>().ToList();
            var broker = hosted.FindIndex(s => s is EmbeddedMqttBroker);
            Assert.InRange(broker, 0, hosted.FindIndex(s => s is MqttPublisher) - 1);
        }
    }
}
