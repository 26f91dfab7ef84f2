namespace EdgeRunner.Hardware.Sensors.Simulation;

/// <summary>
/// A deterministic 3-axis accelerometer (units g, gravity on Z ≈ +1 g) mounted on a rotating
/// machine, with a fault schedule whose true state is known for every sample.
/// </summary>
/// <remarks>
/// <para>
/// Signal model: the shaft turns at a per-stream speed of 10–20 Hz that drifts slowly (± a few %).
/// Every state has a small once-per-revolution (1×) component, a little 2×, and Gaussian sensor noise.
/// Faults add, scaled by a severity that ramps in from 0 to 1:
/// </para>
/// <list type="bullet">
/// <item><description><see cref="MachineState.Imbalance"/>: a strong 1× rotating vector, X = A cos θ, Y = A sin θ (90° apart), little on Z.</description></item>
/// <item><description><see cref="MachineState.Looseness"/>: harmonics 1×…6× and ½×, 1½×, 2½× of the shaft speed, passed through an asymmetric clip (only positive excursions are limited), mostly on Z (vertical) and X.</description></item>
/// <item><description><see cref="MachineState.BearingWear"/>: impulses at a non-integer defect order (2.6–4.2× shaft speed, with slip) that ring a damped structural resonance at 60–80 Hz, amplitude-modulated by the load zone, plus broadband noise raised up to 2.5×.</description></item>
/// </list>
/// <para>
/// Amplitudes vary per stream (seed) and slowly over time. The generator is pure: no clock, no
/// threads, no allocation per sample; the same seed, rate and scenario give the same samples.
/// </para>
/// </remarks>
public sealed class VibrationSimulator
{
    private const double TwoPi = 2 * Math.PI;
    private const double FourPi = 4 * Math.PI;

    private static readonly double[] LoosenessOrders = [1, 2, 3, 4, 5, 6, 0.5, 1.5, 2.5];

    private readonly VibrationScenario _scenario;
    private readonly Rng _scheduleRandom;
    private readonly Rng _noiseRandom;

    // Per-stream constants.
    private readonly double _speedDrift1;
    private readonly double _speedPeriod1;
    private readonly double _speedPhase1;
    private readonly double _speedDrift2;
    private readonly double _speedPeriod2;
    private readonly double _speedPhase2;
    private readonly double _ampMod;
    private readonly double _ampModPeriod;
    private readonly double _ampModPhase;
    private readonly double _base1x;
    private readonly double _base2x;
    private readonly double _baseAxial;
    private readonly double _noiseX;
    private readonly double _noiseY;
    private readonly double _noiseZ;
    private readonly double _imbalanceAmp;
    private readonly double _imbalancePhase;
    private readonly double _imbalanceYRatio;
    private readonly double _loosenessAmp;
    private readonly double _loosenessClip;
    private readonly double[] _loosenessWeights = new double[LoosenessOrders.Length];
    private readonly double[] _loosenessPhases = new double[LoosenessOrders.Length];
    private readonly double _bearingAmp;
    private readonly double _resonatorA1;
    private readonly double _resonatorA2;
    private readonly double _bearingGainY;
    private readonly double _bearingGainZ;

    // Running state.
    private double _shaftAngle;     // radians, wrapped to [0, 4π) so half orders stay continuous
    private double _defectPhase;    // revolutions of the bearing defect, wrapped to [0, 1)
    private double _res1;
    private double _res2;
    private double _spareGaussian;
    private bool _hasSpare;
    private MachineState _state;
    private long _segmentStart;
    private long _segmentEnd;
    private long _rampSamples;

    /// <summary>
    /// Creates the simulator of one machine (stream).
    /// </summary>
    /// <param name="seed">Seed of everything random: the machine's constants, its fault schedule and its noise.</param>
    /// <param name="sampleRateHz">Sample rate; the model bundled with EdgeRunner expects 200 Hz.</param>
    /// <param name="scenario">Fault schedule; null: <see cref="VibrationScenario.Default"/>.</param>
    public VibrationSimulator(int seed, double sampleRateHz = 200, VibrationScenario? scenario = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleRateHz, 20);
        _scenario = scenario ?? VibrationScenario.Default;
        _scenario.Validate();
        Seed = seed;
        SampleRateHz = sampleRateHz;

        var p = new Rng((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + 1);
        _scheduleRandom = new Rng(((ulong)(uint)seed << 32) ^ 0xD1B54A32D192ED03UL);
        _noiseRandom = new Rng(((ulong)(uint)seed << 16) ^ 0x8CB92BA72F3D8DD7UL);

        ShaftSpeedHz = p.Uniform(10, 20);
        _speedDrift1 = p.Uniform(0.02, 0.06);
        _speedPeriod1 = p.Uniform(60, 240);
        _speedPhase1 = p.Uniform(0, TwoPi);
        _speedDrift2 = p.Uniform(0, 0.02);
        _speedPeriod2 = p.Uniform(10, 40);
        _speedPhase2 = p.Uniform(0, TwoPi);
        _ampMod = p.Uniform(0.1, 0.25);
        _ampModPeriod = p.Uniform(30, 120);
        _ampModPhase = p.Uniform(0, TwoPi);

        _base1x = p.Uniform(0.01, 0.05);
        _base2x = _base1x * p.Uniform(0.1, 0.3);
        _baseAxial = _base1x * p.Uniform(0.2, 0.5);
        var noise = p.Uniform(0.008, 0.025);
        _noiseX = noise * p.Uniform(0.8, 1.2);
        _noiseY = noise * p.Uniform(0.8, 1.2);
        _noiseZ = noise * p.Uniform(0.8, 1.2);

        // At least 4× the residual 1×, and within ±1 rad of it, so the fault never cancels the residual out.
        _imbalanceAmp = Math.Max(p.Uniform(0.10, 0.35), 4 * _base1x);
        _imbalancePhase = p.Uniform(-1, 1);
        _imbalanceYRatio = p.Uniform(0.7, 1.3);

        _loosenessAmp = p.Uniform(0.06, 0.2);
        _loosenessClip = p.Uniform(0.35, 0.7);
        var norm = 0.0;
        for (var k = 0; k < LoosenessOrders.Length; k++)
        {
            var order = LoosenessOrders[k];
            var w = order >= 1 && order == Math.Floor(order)
                ? p.Uniform(0.5, 1.0) / Math.Pow(order, 0.6)
                : p.Uniform(0.2, 0.5);
            _loosenessWeights[k] = w;
            _loosenessPhases[k] = p.Uniform(0, TwoPi);
            norm += w * w;
        }

        norm = Math.Sqrt(norm / 2); // unit RMS before clipping
        for (var k = 0; k < LoosenessOrders.Length; k++)
        {
            _loosenessWeights[k] /= norm;
        }

        var order0 = p.Uniform(2.6, 3.9);
        if (Math.Abs(order0 - Math.Round(order0)) < 0.15)
        {
            order0 += 0.3; // keep the defect order clearly non-integer
        }

        BearingDefectOrder = order0;
        ResonanceHz = Math.Min(p.Uniform(60, 80), 0.4 * sampleRateHz);
        _bearingAmp = p.Uniform(0.15, 0.5);
        var tau = p.Uniform(0.008, 0.016);
        var rho = Math.Exp(-1 / (tau * sampleRateHz));
        var omega = TwoPi * ResonanceHz / sampleRateHz;
        _resonatorA1 = 2 * rho * Math.Cos(omega);
        _resonatorA2 = -rho * rho;
        _bearingGainY = p.Uniform(0.5, 0.9);
        _bearingGainZ = p.Uniform(0.3, 0.7);

        _shaftAngle = p.Uniform(0, FourPi);
        _defectPhase = p.Uniform(0, 1);
        StartFirstSegment();
    }

    /// <summary>The seed this simulator was created with.</summary>
    public int Seed { get; }

    /// <summary>Samples per second per axis.</summary>
    public double SampleRateHz { get; }

    /// <summary>Index of the next sample <see cref="Read"/> will produce (samples produced so far).</summary>
    public long SampleIndex { get; private set; }

    /// <summary>True state of the next sample.</summary>
    public MachineState CurrentState => _state;

    /// <summary>The machine's nominal shaft speed, Hz (the actual speed drifts a few % around it).</summary>
    public double ShaftSpeedHz { get; }

    /// <summary>Bearing defect frequency as a multiple of the shaft speed (non-integer).</summary>
    public double BearingDefectOrder { get; }

    /// <summary>Frequency of the structural resonance that bearing impulses excite, Hz.</summary>
    public double ResonanceHz { get; }

    /// <summary>
    /// Produces the next <c>truth.Length</c> samples: acceleration in g on each axis and the true
    /// machine state of each sample. All four spans must have the same length.
    /// </summary>
    /// <param name="x">Radial horizontal axis, g.</param>
    /// <param name="y">Radial axis 90° from X, g.</param>
    /// <param name="z">Vertical axis, g, including +1 g of gravity.</param>
    /// <param name="truth">True state per sample.</param>
    public void Read(Span<float> x, Span<float> y, Span<float> z, Span<MachineState> truth)
    {
        if (x.Length != truth.Length || y.Length != truth.Length || z.Length != truth.Length)
        {
            throw new ArgumentException("x, y, z and truth must have the same length.");
        }

        for (var i = 0; i < truth.Length; i++)
        {
            Next(out x[i], out y[i], out z[i], out truth[i]);
        }
    }

    /// <summary>
    /// Produces the next <c>truth.Length</c> samples interleaved as x, y, z, x, y, z, …;
    /// <paramref name="xyz"/> must hold exactly three values per sample.
    /// </summary>
    /// <param name="xyz">Interleaved acceleration, g.</param>
    /// <param name="truth">True state per sample.</param>
    public void ReadInterleaved(Span<float> xyz, Span<MachineState> truth)
    {
        if (xyz.Length != 3 * truth.Length)
        {
            throw new ArgumentException("xyz must hold three values per truth entry.", nameof(xyz));
        }

        for (var i = 0; i < truth.Length; i++)
        {
            Next(out xyz[3 * i], out xyz[(3 * i) + 1], out xyz[(3 * i) + 2], out truth[i]);
        }
    }

    private void Next(out float x, out float y, out float z, out MachineState truth)
    {
        var n = SampleIndex;

        var fs = SampleRateHz;
        var t = n / fs;
        var speed = ShaftSpeedHz * (1
            + (_speedDrift1 * Math.Sin((TwoPi * t / _speedPeriod1) + _speedPhase1))
            + (_speedDrift2 * Math.Sin((TwoPi * t / _speedPeriod2) + _speedPhase2)));
        var gain = 1 + (_ampMod * Math.Sin((TwoPi * t / _ampModPeriod) + _ampModPhase));
        var severity = _rampSamples > 0 ? Math.Min(1.0, (double)(n - _segmentStart + 1) / _rampSamples) : 1.0;
        var theta = _shaftAngle;

        // Healthy machine: small 1× (rotating, X/Y in quadrature), a little 2×, a little axial 1×.
        var (s1, c1) = Math.SinCos(theta);
        var s2 = Math.Sin((2 * theta) + 0.7);
        var ax = gain * ((_base1x * c1) + (_base2x * s2));
        var ay = gain * ((_base1x * s1) + (_base2x * Math.Cos((2 * theta) + 0.7)));
        var az = 1.0 + (gain * _baseAxial * s1);
        var noiseScale = 1.0;

        switch (_state)
        {
            case MachineState.Imbalance:
            {
                var a = severity * gain * _imbalanceAmp;
                var (si, ci) = Math.SinCos(theta + _imbalancePhase);
                ax += a * ci;
                ay += a * _imbalanceYRatio * si;
                az += 0.08 * a * si;
                break;
            }

            case MachineState.Looseness:
            {
                var v = 0.0;
                for (var k = 0; k < LoosenessOrders.Length; k++)
                {
                    v += _loosenessWeights[k] * Math.Sin((LoosenessOrders[k] * theta) + _loosenessPhases[k]);
                }

                // Asymmetric response: the loose part lifts freely but is stopped when it comes down (positive side limited).
                var clip = _loosenessClip * 1.5;
                if (v > clip)
                {
                    v = clip + (0.1 * (v - clip));
                }

                var a = severity * gain * _loosenessAmp;
                az += a * v;
                ax += 0.6 * a * v;
                ay += 0.3 * a * Math.Abs(v);
                break;
            }

            case MachineState.BearingWear:
            {
                var u = 0.0;
                _defectPhase += BearingDefectOrder * speed / fs * (1 + (0.02 * _noiseRandom.Gaussian()));
                if (_defectPhase >= 1)
                {
                    _defectPhase -= Math.Floor(_defectPhase);
                    var loadZone = 1 + (0.5 * c1);
                    u = severity * gain * _bearingAmp * loadZone * (1 + (0.3 * _noiseRandom.Gaussian()));
                }

                var r = (_resonatorA1 * _res1) + (_resonatorA2 * _res2) + u;
                _res2 = _res1;
                _res1 = r;
                ax += r;
                ay += _bearingGainY * r;
                az += _bearingGainZ * r;
                noiseScale = 1 + (1.5 * severity);
                break;
            }

            default:
                break;
        }

        if (_state != MachineState.BearingWear)
        {
            // Let the resonance die out after a bearing fault ends.
            var r = (_resonatorA1 * _res1) + (_resonatorA2 * _res2);
            _res2 = _res1;
            _res1 = r;
            ax += r;
            ay += _bearingGainY * r;
            az += _bearingGainZ * r;
        }

        ax += noiseScale * _noiseX * NextGaussian();
        ay += noiseScale * _noiseY * NextGaussian();
        az += noiseScale * _noiseZ * NextGaussian();

        x = (float)ax;
        y = (float)ay;
        z = (float)az;
        truth = _state;

        theta += TwoPi * speed / fs;
        if (theta >= FourPi)
        {
            theta -= FourPi;
        }

        _shaftAngle = theta;
        SampleIndex = n + 1;
        if (SampleIndex >= _segmentEnd)
        {
            StartNextSegment(); // eagerly, so CurrentState is the next sample's state
        }
    }

    private double NextGaussian()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spareGaussian;
        }

        var (g1, g2) = _noiseRandom.GaussianPair();
        _spareGaussian = g2;
        _hasSpare = true;
        return g1;
    }

    private void StartFirstSegment()
    {
        if (_scenario.ConstantState is { } constant)
        {
            _state = constant;
            _segmentStart = 0;
            _segmentEnd = long.MaxValue;
            _rampSamples = 0;
            return;
        }

        // Streams mostly start healthy, but not always, so a model cannot assume it.
        var r = _scheduleRandom;
        _state = r.Uniform(0, 1) < 0.6 ? MachineState.Normal : RandomFault(MachineState.Normal);
        var duration = _state == MachineState.Normal
            ? r.Uniform(_scenario.MinNormalSeconds, _scenario.MaxNormalSeconds)
            : r.Uniform(_scenario.MinFaultSeconds, _scenario.MaxFaultSeconds);
        _segmentStart = 0;
        _segmentEnd = Math.Max(1, (long)(duration * r.Uniform(0.25, 1) * SampleRateHz));
        _rampSamples = 0;
    }

    private void StartNextSegment()
    {
        var r = _scheduleRandom;
        var previous = _state;
        double duration;
        if (previous == MachineState.Normal)
        {
            _state = RandomFault(MachineState.Normal);
        }
        else
        {
            _state = r.Uniform(0, 1) < _scenario.FaultToFaultProbability ? RandomFault(previous) : MachineState.Normal;
        }

        if (_state == MachineState.Normal)
        {
            duration = r.Uniform(_scenario.MinNormalSeconds, _scenario.MaxNormalSeconds);
            _rampSamples = 0;
        }
        else
        {
            duration = r.Uniform(_scenario.MinFaultSeconds, _scenario.MaxFaultSeconds);
            _rampSamples = (long)(r.Uniform(0, _scenario.MaxRampSeconds) * SampleRateHz);
        }

        _segmentStart = _segmentEnd;
        _segmentEnd = _segmentStart + Math.Max(1, (long)(duration * SampleRateHz));
    }

    private MachineState RandomFault(MachineState except)
    {
        while (true)
        {
            var s = (MachineState)(1 + (int)(_scheduleRandom.Next() % 3));
            if (s != except)
            {
                return s;
            }
        }
    }

    /// <summary>xoshiro256** seeded through SplitMix64: fixed across runtimes and platforms, unlike <see cref="Random"/>'s unseeded algorithm.</summary>
    private sealed class Rng
    {
        private ulong _s0;
        private ulong _s1;
        private ulong _s2;
        private ulong _s3;

        public Rng(ulong seed)
        {
            _s0 = SplitMix(ref seed);
            _s1 = SplitMix(ref seed);
            _s2 = SplitMix(ref seed);
            _s3 = SplitMix(ref seed);
        }

        public ulong Next()
        {
            var result = ulong.RotateLeft(_s1 * 5, 7) * 9;
            var t = _s1 << 17;
            _s2 ^= _s0;
            _s3 ^= _s1;
            _s1 ^= _s2;
            _s0 ^= _s3;
            _s2 ^= t;
            _s3 = ulong.RotateLeft(_s3, 45);
            return result;
        }

        /// <summary>Uniform in [0, 1).</summary>
        public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

        public double Uniform(double min, double max) => min + ((max - min) * NextDouble());

        public (double A, double B) GaussianPair()
        {
            var u1 = 1.0 - NextDouble(); // (0, 1]
            var u2 = NextDouble();
            var radius = Math.Sqrt(-2 * Math.Log(u1));
            var (s, c) = Math.SinCos(TwoPi * u2);
            return (radius * c, radius * s);
        }

        public double Gaussian() => GaussianPair().A;

        private static ulong SplitMix(ref ulong state)
        {
            var z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BEE7013101UL;
            return z ^ (z >> 31);
        }
    }
}
