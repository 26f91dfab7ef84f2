namespace EdgeRunner.Hardware.Sensors;

/// <summary>A block of consecutive samples read from a sensor: how many, and when the first was taken.</summary>
/// <param name="Samples">Samples per channel written (0 = the source has ended).</param>
/// <param name="FirstSampleTime">Timestamp of the first sample of the block.</param>
/// <param name="FirstSampleIndex">Index of the first sample since the source started.</param>
public readonly record struct SensorBlock(int Samples, DateTimeOffset FirstSampleTime, long FirstSampleIndex);

/// <summary>
/// A stream of multi-channel samples at a fixed rate (an accelerometer, a microphone, a replayed
/// file). Sources pace themselves like the device they stand for, and write channel-interleaved
/// samples (c0, c1, …, c0, c1, …) into a caller-owned buffer, so reading allocates nothing.
/// </summary>
public interface ISensorSource : IAsyncDisposable
{
    /// <summary>Human-readable description for logs.</summary>
    string Description { get; }

    /// <summary>Channel names in interleaving order.</summary>
    IReadOnlyList<string> Channels { get; }

    /// <summary>Samples per second per channel.</summary>
    double SampleRateHz { get; }

    /// <summary>
    /// Waits for and reads the next block: up to <c>destination.Length / Channels.Count</c> samples.
    /// Returns a block with <see cref="SensorBlock.Samples"/> = 0 when the source has ended.
    /// </summary>
    ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken);
}

/// <summary>
/// A source that can resume at a given sample (a replay, a simulator): after a restart the stream
/// continues where its checkpoint left off instead of from the beginning.
/// </summary>
public interface IResumableSensorSource : ISensorSource
{
    /// <summary>Skips forward so that the next read starts at sample <paramref name="sampleIndex"/> (counted from the start).</summary>
    ValueTask SeekAsync(long sampleIndex, CancellationToken cancellationToken);
}
