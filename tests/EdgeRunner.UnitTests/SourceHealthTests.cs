using EdgeRunner.Hardware.Supervision;

namespace EdgeRunner.UnitTests;

/// <summary>
/// One health vocabulary for cameras and sensors; the words on the retained state topics stay the ones each side
/// published before (a camera <c>reconnecting</c>, a sensor stream <c>unavailable</c>).
/// </summary>
public sealed class SourceHealthTests
{
    [Theory]
    [InlineData(SourceHealth.Opening, "opening", "opening")]
    [InlineData(SourceHealth.Streaming, "streaming", "streaming")]
    [InlineData(SourceHealth.Unavailable, "reconnecting", "unavailable")]
    [InlineData(SourceHealth.Failed, "failed", "failed")]
    [InlineData(SourceHealth.Ended, "ended", "ended")]
    public void Each_state_has_the_word_its_topic_always_published(SourceHealth health, string camera, string sensor)
    {
        Assert.Equal(camera, SourceHealthWords.ForCamera(health));
        Assert.Equal(sensor, SourceHealthWords.ForSensor(health));
    }

    [Fact]
    public void Every_state_has_a_word()
    {
        Assert.All(Enum.GetValues<SourceHealth>(), h =>
        {
            Assert.NotEmpty(SourceHealthWords.ForCamera(h));
            Assert.NotEmpty(SourceHealthWords.ForSensor(h));
        });
    }
}
