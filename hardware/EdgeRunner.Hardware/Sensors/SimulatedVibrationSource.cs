using EdgeRunner.Hardware.Sensors.Simulation;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// A 3-axis accelerometer on a simulated rotating machine (<see cref="VibrationSimulator"/>),
/// delivering blocks at the real sample rate (or as fast as asked when not paced, for evaluation): one
/// wake-up per block, on a grid shared with the other simulated machines of the same rate.
/// The true machine state of the last block is available for evaluation; it never reaches a model.
/// </summary>
public sealed class SimulatedVibrationSource : IResumableSensorSource
{
    private static readonly string[] AxisNames = ["ax", "ay", "az"];

    private readonly VibrationSimulator _simulator;
    private readonly TimeProvider _timeProvider;
    private readonly BlockPacer? _pacer;
    private readonly int _blockSamples;
    private readonly MachineState[] _truth;
    private DateTimeOffset _start;
    private bool _started;
    private int _lastSamples;

    /// <summary>Creates the source; <paramref name="paced"/> false reads as fast as the caller asks.</summary>
    public SimulatedVibrationSource(int seed, double sampleRateHz, int blockSamples, TimeProvider timeProvider, bool paced = true, VibrationScenario? scenario = null)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSamples, 1);
        _simulator = new VibrationSimulator(seed, sampleRateHz, scenario);
        _timeProvider = timeProvider;
        _blockSamples = blockSamples;
        _truth = new MachineState[blockSamples];
        // On the grid shared by every simulated machine of the same rate, so they wake together (see BlockPacer).
        _pacer = paced ? new BlockPacer(timeProvider, sampleRateHz / blockSamples) : null;
        Description = $"simulated vibration seed {seed} at {sampleRateHz} Hz, {_simulator.ShaftSpeedHz:0.0} Hz shaft";
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Channels => AxisNames;

    /// <inheritdoc />
    public double SampleRateHz => _simulator.SampleRateHz;

    /// <summary>True machine state of each sample of the last block (ground truth for evaluation).</summary>
    public ReadOnlySpan<MachineState> LastTruth => _truth.AsSpan(0, _lastSamples);

    /// <inheritdoc />
    public async ValueTask<SensorBlock> ReadAsync(Memory<float> destination, CancellationToken cancellationToken)
    {
        var samples = Math.Min(_blockSamples, destination.Length / 3);
        if (_pacer is not null)
        {
            await _pacer.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        var first = _simulator.SampleIndex;
        if (!_started)
        {
            // Time of sample 0, also when the stream resumed at a later sample.
            _start = _timeProvider.GetUtcNow() - TimeSpan.FromSeconds(first / _simulator.SampleRateHz);
            _started = true;
        }

        _simulator.ReadInterleaved(destination.Span[..(samples * 3)], _truth.AsSpan(0, samples));
        _lastSamples = samples;
        // Sample times follow the sample clock, not the wake-up time, so windows are exact.
        return new SensorBlock(samples, _start + TimeSpan.FromSeconds(first / _simulator.SampleRateHz), first);
    }

    /// <inheritdoc />
    public ValueTask SeekAsync(long sampleIndex, CancellationToken cancellationToken)
    {
        // The simulator is a deterministic generator: run it forward and discard (200 Hz × hours is cheap).
        var scratch = new float[3 * 1024];
        var truth = new MachineState[1024];
        while (_simulator.SampleIndex < sampleIndex)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = (int)Math.Min(1024, sampleIndex - _simulator.SampleIndex);
            _simulator.ReadInterleaved(scratch.AsSpan(0, 3 * n), truth.AsSpan(0, n));
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
