using EdgeRunner.Models.Sequence;

namespace EdgeRunner.UnitTests;

public sealed class LinearResamplerTests
{
    [Fact]
    public void Upsampling_a_ramp_by_two_interpolates_the_midpoints()
    {
        var resampler = new LinearResampler(channels: 1, inputRateHz: 100, outputRateHz: 200);
        var output = new float[resampler.MaxOutput(4)];

        var n = resampler.Process([0f, 2f, 4f, 6f], output);

        Assert.Equal([0f, 1f, 2f, 3f, 4f, 5f, 6f], output[..n]);
    }

    [Fact]
    public void Chunk_boundaries_do_not_change_the_output_and_channels_stay_apart()
    {
        // Two channels: a sine at 104 Hz sampling, to 200 Hz, whole vs in uneven pieces.
        var input = new float[2 * 520];
        for (var i = 0; i < 520; i++)
        {
            input[2 * i] = MathF.Sin(i * 0.1f);
            input[(2 * i) + 1] = -i;
        }

        var whole = new LinearResampler(2, 104, 200);
        var wholeOut = new float[2 * whole.MaxOutput(520)];
        var wholeCount = whole.Process(input, wholeOut);

        var pieces = new LinearResampler(2, 104, 200);
        var piecesOut = new List<float>();
        var buffer = new float[2 * pieces.MaxOutput(300)];
        var sizes = new[] { 7, 50, 13, 1, 49, 50, 50, 300 };
        var offset = 0;
        foreach (var size in sizes)
        {
            var n = pieces.Process(input.AsSpan(2 * offset, 2 * size), buffer.AsSpan(0, 2 * pieces.MaxOutput(size)));
            piecesOut.AddRange(buffer[..(2 * n)]);
            offset += size;
        }

        Assert.Equal(520, offset);
        Assert.Equal(wholeOut[..(2 * wholeCount)], piecesOut);
        // About 200/104 outputs per input sample.
        Assert.InRange(wholeCount, 998, 1000);
        // Channel 1 is -index: linear in time, so interpolation reproduces it exactly at output time k/200 s.
        for (var k = 0; k < wholeCount; k++)
        {
            Assert.Equal(-k * 104f / 200f, wholeOut[(2 * k) + 1], 3);
        }
    }

    [Fact]
    public void Equal_rates_pass_samples_through()
    {
        var resampler = new LinearResampler(3, 200, 200);
        var input = Enumerable.Range(0, 30).Select(i => (float)i).ToArray();
        var output = new float[3 * resampler.MaxOutput(10)];

        var n = resampler.Process(input, output);

        Assert.Equal(10, n);
        Assert.Equal(input, output[..30]);
    }
}
