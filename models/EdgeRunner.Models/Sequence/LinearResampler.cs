namespace EdgeRunner.Models.Sequence;

/// <summary>
/// Streaming linear-interpolation resampler for channel-interleaved samples, so a sensor recorded at
/// one rate (the ST fan data at 104 Hz) can feed a model trained at another (200 Hz). It keeps the
/// last input sample and the fractional read position between calls, so chunk boundaries do not
/// matter: resampling a stream in pieces gives the same output as resampling it whole. Linear
/// interpolation does not low-pass filter: downsampling by a large factor aliases, so it is meant for
/// rates within a factor of about two. Allocates nothing after construction.
/// </summary>
public sealed class LinearResampler
{
    private readonly int _channels;
    private readonly double _step;
    private readonly float[] _previous;
    private bool _hasPrevious;

    // Position of the next output sample, in input samples, relative to _previous (0 = _previous, 1 = next input).
    private double _position;

    /// <summary>Creates a resampler from <paramref name="inputRateHz"/> to <paramref name="outputRateHz"/>.</summary>
    public LinearResampler(int channels, double inputRateHz, double outputRateHz)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputRateHz);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outputRateHz);
        _channels = channels;
        _step = inputRateHz / outputRateHz;
        _previous = new float[channels];
    }

    /// <summary>Output samples produced per input sample.</summary>
    public double Ratio => 1 / _step;

    /// <summary>The most output samples <see cref="Process"/> can write for <paramref name="inputSamples"/> input samples.</summary>
    public int MaxOutput(int inputSamples) => (int)Math.Ceiling((inputSamples + 1) / _step) + 1;

    /// <summary>Consumes <paramref name="input"/> (interleaved) and writes interpolated samples into <paramref name="output"/>; returns how many samples were written.</summary>
    public int Process(ReadOnlySpan<float> input, Span<float> output)
    {
        var inputSamples = input.Length / _channels;
        var written = 0;
        var capacity = output.Length / _channels;
        for (var i = 0; i < inputSamples; i++)
        {
            var current = input.Slice(i * _channels, _channels);
            if (!_hasPrevious)
            {
                // The first sample is output as it is; interpolation starts from it.
                current.CopyTo(_previous);
                _hasPrevious = true;
                if (written < capacity)
                {
                    current.CopyTo(output.Slice(written * _channels, _channels));
                    written++;
                }

                _position = _step;
                continue;
            }

            // Emit every output position that falls in (previous, current].
            while (_position <= 1.0 && written < capacity)
            {
                var t = (float)_position;
                var destination = output.Slice(written * _channels, _channels);
                for (var c = 0; c < _channels; c++)
                {
                    destination[c] = _previous[c] + ((current[c] - _previous[c]) * t);
                }

                written++;
                _position += _step;
            }

            _position -= 1.0;
            current.CopyTo(_previous);
        }

        return written;
    }

    /// <summary>Values <see cref="SaveState"/> writes: whether a sample was seen, the read position, the last sample.</summary>
    public int StateLength => _channels + 2;

    /// <summary>Writes the resampler's position and last sample (for a checkpoint), so a restored stream continues on the same grid.</summary>
    public void SaveState(Span<double> state)
    {
        state[0] = _hasPrevious ? 1 : 0;
        state[1] = _position;
        for (var c = 0; c < _channels; c++)
        {
            state[2 + c] = _previous[c];
        }
    }

    /// <summary>Restores what <see cref="SaveState"/> wrote.</summary>
    public void RestoreState(ReadOnlySpan<double> state)
    {
        _hasPrevious = state[0] > 0.5;
        _position = state[1];
        for (var c = 0; c < _channels; c++)
        {
            _previous[c] = (float)state[2 + c];
        }
    }

    /// <summary>Forgets the stream (after a gap): the next sample starts afresh.</summary>
    public void Reset()
    {
        _hasPrevious = false;
        _position = 0;
    }
}
