using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Models.Postprocessing.Detection;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Publishing;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests;

/// <summary>A snapshot that throws anything is logged; the next snapshot still goes out, and disposing never throws.</summary>
public sealed class SnapshotFailureTests
{
    [Fact]
    public async Task An_unexpected_exception_while_publishing_a_snapshot_does_not_stop_the_next_one()
    {
        var time = new FakeTimeProvider();
        var publisher = new FailsOnce();
        var labels = LabelSet.FromNames(["circle", "square"]);
        var pool = new FramePool();
        using var frame = pool.Rent(64, 48, FramePixelFormat.Bgr24);
        frame.Pixels.Fill(90);
        var snapshots = new SnapshotPublisher("cam", "t/cam/snapshot", retain: false, TimeSpan.FromSeconds(1), maxWidth: 64, quality: 70, publisher, time.TimestampFrequency, NullLogger.Instance);

        snapshots.OnInferred(frame, [new Detection(0, 0.9f, 1, 1, 20, 20)], labels, time.GetTimestamp());
        await snapshots.Encoding.WaitAsync(TestContext.Current.CancellationToken);
        Assert.True(snapshots.Encoding.IsCompletedSuccessfully);
        Assert.Equal(0, snapshots.Published);

        time.Advance(TimeSpan.FromSeconds(2));
        snapshots.OnInferred(frame, [new Detection(1, 0.9f, 30, 10, 60, 40)], labels, time.GetTimestamp());
        await snapshots.Encoding.WaitAsync(TestContext.Current.CancellationToken);
        Assert.Equal(1, snapshots.Published);
        Assert.Equal(2, publisher.Calls);

        await snapshots.DisposeAsync();
    }

    private sealed class FailsOnce : IResultPublisher
    {
        public int Calls { get; private set; }

        public bool TryPublish(string topic, ReadOnlySpan<byte> payload, bool retain = false) =>
            ++Calls == 1 ? throw new NotSupportedException("simulated publisher bug") : true;
    }
}
