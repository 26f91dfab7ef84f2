using System.Buffers.Binary;
using System.Device.Gpio;
using System.Device.I2c;

namespace EdgeRunner.UnitTests.Sensors;

/// <summary>
/// A register-addressed I2C chip: 256 byte registers and a register pointer that the first written
/// byte of a transfer sets and every byte read or written advances (auto-increment, as the ADXL345,
/// MPU6050 and BME280 do). The real bindings talk to it through the same <see cref="I2cDevice"/> API
/// as to /dev/i2c-N. The span overloads are overridden because the base class copies through new
/// arrays on each call, which would hide whether the code under test allocates.
/// </summary>
internal sealed class SimulatedI2cChip : I2cSimulatedDeviceBase
{
    private readonly byte[] _registers = new byte[256];
    private byte _pointer;

    public SimulatedI2cChip(int busId, int address)
        : base(new I2cConnectionSettings(busId, address))
    {
    }

    /// <summary>No chip at the address: every transfer fails as the kernel reports a missing ACK.</summary>
    public bool Absent { get; set; }

    /// <summary>Transfers still to fail with an <see cref="IOException"/> (a bus glitch).</summary>
    public int FailingTransfers { get; set; }

    public bool IsDisposed { get; private set; }

    public byte this[int register]
    {
        get => _registers[register];
        set => _registers[register] = value;
    }

    public void SetInt16LittleEndian(int register, short value) => BinaryPrimitives.WriteInt16LittleEndian(_registers.AsSpan(register, 2), value);

    public void SetInt16BigEndian(int register, short value) => BinaryPrimitives.WriteInt16BigEndian(_registers.AsSpan(register, 2), value);

    public override void WriteRead(byte[] inputBuffer, byte[] outputBuffer) => Transfer(inputBuffer, outputBuffer);

    public override byte ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        Transfer([], one);
        return one[0];
    }

    public override void Read(Span<byte> buffer) => Transfer([], buffer);

    public override void WriteByte(byte value) => Transfer([value], []);

    public override void Write(ReadOnlySpan<byte> buffer) => Transfer(buffer, []);

    public override void WriteRead(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer) => Transfer(writeBuffer, readBuffer);

    protected override void Dispose(bool disposing)
    {
        IsDisposed = true;
        base.Dispose(disposing);
    }

    private void Transfer(ReadOnlySpan<byte> write, Span<byte> read)
    {
        if (Absent)
        {
            throw new IOException("Error 6 (No such device or address) performing I2C data transfer.");
        }

        if (FailingTransfers > 0)
        {
            FailingTransfers--;
            throw new IOException("Error 121 (Remote I/O error) performing I2C data transfer.");
        }

        if (!write.IsEmpty)
        {
            _pointer = write[0];
            foreach (var value in write[1..])
            {
                _registers[_pointer++] = value;
            }
        }

        for (var i = 0; i < read.Length; i++)
        {
            read[i] = _registers[_pointer++];
        }
    }
}

/// <summary>Register maps of the chips as the datasheets give them, with known outputs.</summary>
internal static class SimulatedChips
{
    /// <summary>ADXL345 (DEVID 0xE5 in register 0x00); outputs in DATAX0… (0x32…, little-endian).</summary>
    public static SimulatedI2cChip Adxl345(short x, short y, short z, int busId = 1, int address = 0x53)
    {
        var chip = new SimulatedI2cChip(busId, address) { [0x00] = 0xE5 };
        SetAdxl345Output(chip, x, y, z);
        return chip;
    }

    public static void SetAdxl345Output(SimulatedI2cChip chip, short x, short y, short z)
    {
        chip.SetInt16LittleEndian(0x32, x);
        chip.SetInt16LittleEndian(0x34, y);
        chip.SetInt16LittleEndian(0x36, z);
    }

    /// <summary>MPU6050 (WHO_AM_I 0x68 in register 0x75); accelerometer outputs in ACCEL_XOUT_H… (0x3B…, big-endian).</summary>
    public static SimulatedI2cChip Mpu6050(short x, short y, short z, int busId = 1, int address = 0x68)
    {
        var chip = new SimulatedI2cChip(busId, address) { [0x75] = 0x68 };
        chip.SetInt16BigEndian(0x3B, x);
        chip.SetInt16BigEndian(0x3D, y);
        chip.SetInt16BigEndian(0x3F, z);
        return chip;
    }

    // Trimming values of the BME280 datasheet's compensation example (section 8.1/8.2), and
    // humidity trimming values as a real chip carries them.
    public const ushort T1 = 27504;
    public const short T2 = 26435;
    public const short T3 = -1000;
    public static readonly short[] P = [36477 - 65536, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000];
    public const byte H1 = 75;
    public const short H2 = 362;
    public const byte H3 = 0;
    public const short H4 = 313;
    public const short H5 = 50;
    public const sbyte H6 = 30;

    /// <summary>BME280 (chip id 0x60 in 0xD0) with calibration registers and raw 20-bit/16-bit ADC outputs.</summary>
    public static SimulatedI2cChip Bme280(int adcTemperature, int adcPressure, int adcHumidity, int busId = 1, int address = 0x77)
    {
        var chip = new SimulatedI2cChip(busId, address) { [0xD0] = 0x60 };
        chip.SetInt16LittleEndian(0x88, unchecked((short)T1));
        chip.SetInt16LittleEndian(0x8A, T2);
        chip.SetInt16LittleEndian(0x8C, T3);
        for (var i = 0; i < P.Length; i++)
        {
            chip.SetInt16LittleEndian(0x8E + (2 * i), P[i]);
        }

        chip[0xA1] = H1;
        chip.SetInt16LittleEndian(0xE1, H2);
        chip[0xE3] = H3;
        // dig_H4 and dig_H5 are 12-bit values sharing register 0xE5.
        chip[0xE4] = (byte)(H4 >> 4);
        chip[0xE5] = (byte)((H4 & 0x0F) | ((H5 & 0x0F) << 4));
        chip[0xE6] = (byte)(H5 >> 4);
        chip[0xE7] = unchecked((byte)H6);
        SetBme280Output(chip, adcTemperature, adcPressure, adcHumidity);
        return chip;
    }

    public static void SetBme280Output(SimulatedI2cChip chip, int adcTemperature, int adcPressure, int adcHumidity)
    {
        // press_msb/lsb/xlsb[7:4] at 0xF7, temp at 0xFA, hum_msb/lsb at 0xFD.
        chip[0xF7] = (byte)(adcPressure >> 12);
        chip[0xF8] = (byte)(adcPressure >> 4);
        chip[0xF9] = (byte)((adcPressure & 0x0F) << 4);
        chip[0xFA] = (byte)(adcTemperature >> 12);
        chip[0xFB] = (byte)(adcTemperature >> 4);
        chip[0xFC] = (byte)((adcTemperature & 0x0F) << 4);
        chip[0xFD] = (byte)(adcHumidity >> 8);
        chip[0xFE] = (byte)adcHumidity;
    }

    /// <summary>
    /// The BME280 datasheet's floating-point compensation (section 8.1), written from the datasheet
    /// independently of the binding: temperature °C, pressure Pa, relative humidity %.
    /// </summary>
    public static (double Celsius, double Pascals, double Percent) Bme280Reference(int adcT, int adcP, int adcH)
    {
        var var1 = ((adcT / 16384.0) - (T1 / 1024.0)) * T2;
        var var2 = ((adcT / 131072.0) - (T1 / 8192.0)) * ((adcT / 131072.0) - (T1 / 8192.0)) * T3;
        var tFine = var1 + var2;
        var celsius = tFine / 5120.0;

        var p1 = (ushort)P[0];
        var1 = (tFine / 2.0) - 64000.0;
        var2 = var1 * var1 * P[5] / 32768.0;
        var2 += var1 * P[4] * 2.0;
        var2 = (var2 / 4.0) + (P[3] * 65536.0);
        var1 = ((P[2] * var1 * var1 / 524288.0) + (P[1] * var1)) / 524288.0;
        var1 = (1.0 + (var1 / 32768.0)) * p1;
        var p = 1048576.0 - adcP;
        p = (p - (var2 / 4096.0)) * 6250.0 / var1;
        var1 = P[8] * p * p / 2147483648.0;
        var2 = p * P[7] / 32768.0;
        p += (var1 + var2 + P[6]) / 16.0;

        var h = tFine - 76800.0;
        h = (adcH - ((H4 * 64.0) + (H5 / 16384.0 * h))) * (H2 / 65536.0 * (1.0 + (H6 / 67108864.0 * h * (1.0 + (H3 / 67108864.0 * h)))));
        h *= 1.0 - (H1 * h / 524288.0);
        return (celsius, p, Math.Clamp(h, 0, 100));
    }
}

/// <summary>
/// A GPIO controller's driver with scripted input levels: <see cref="Drive"/> changes a pin's level
/// and raises the edge callbacks registered for it, as the kernel's line events would.
/// </summary>
internal sealed class ScriptedGpioDriver : GpioDriver
{
    private readonly Dictionary<int, PinValue> _levels = [];
    private readonly Dictionary<int, PinMode> _modes = [];
    private readonly List<(int Pin, PinEventTypes Types, PinChangeEventHandler Handler)> _callbacks = [];

    public HashSet<int> OpenPins { get; } = [];

    public int CallbackCount => _callbacks.Count;

    public bool IsDisposed { get; private set; }

    public PinMode ModeOf(int pin) => _modes[pin];

    /// <summary>When set, every level read fails with it (the GPIO chip went away).</summary>
    public IOException? ReadFailure { get; set; }

    /// <summary>How many level reads fail with an I/O error before reads work again (a glitch).</summary>
    public int FailingReads { get; set; }

    /// <summary>Sets the level of an input; a change raises the matching edge callbacks.</summary>
    public void Drive(int pin, PinValue level)
    {
        var previous = _levels.GetValueOrDefault(pin, PinValue.Low);
        _levels[pin] = level;
        if (previous == level)
        {
            return;
        }

        var change = level == PinValue.High ? PinEventTypes.Rising : PinEventTypes.Falling;
        foreach (var (callbackPin, types, handler) in _callbacks.ToArray())
        {
            if (callbackPin == pin && (types & change) != 0)
            {
                handler(this, new PinValueChangedEventArgs(change, pin));
            }
        }
    }

    /// <summary>A full pulse: up then down (one rising and one falling edge).</summary>
    public void Pulse(int pin)
    {
        Drive(pin, PinValue.High);
        Drive(pin, PinValue.Low);
    }

    protected override int PinCount => 64;

    protected override void OpenPin(int pinNumber) => OpenPins.Add(pinNumber);

    protected override void ClosePin(int pinNumber) => OpenPins.Remove(pinNumber);

    protected override void SetPinMode(int pinNumber, PinMode mode) => _modes[pinNumber] = mode;

    protected override PinMode GetPinMode(int pinNumber) => _modes[pinNumber];

    protected override bool IsPinModeSupported(int pinNumber, PinMode mode) => pinNumber < PinCount;

    protected override PinValue Read(int pinNumber)
    {
        if (ReadFailure is { } failure)
        {
            throw failure;
        }

        if (FailingReads > 0)
        {
            FailingReads--;
            throw new IOException("Input/output error");
        }

        return _levels.GetValueOrDefault(pinNumber, PinValue.Low);
    }

    protected override void Write(int pinNumber, PinValue value) => throw new NotSupportedException("inputs only");

    protected override WaitForEventResult WaitForEvent(int pinNumber, PinEventTypes eventTypes, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the source uses callbacks");

    protected override void AddCallbackForPinValueChangedEvent(int pinNumber, PinEventTypes eventTypes, PinChangeEventHandler callback) =>
        _callbacks.Add((pinNumber, eventTypes, callback));

    protected override void RemoveCallbackForPinValueChangedEvent(int pinNumber, PinChangeEventHandler callback) =>
        _callbacks.RemoveAll(c => c.Pin == pinNumber && c.Handler == callback);

    protected override void Dispose(bool disposing)
    {
        IsDisposed = true;
        base.Dispose(disposing);
    }
}

/// <summary>Waits for a condition that another thread brings about (a timer continuation), failing clearly if it never comes.</summary>
internal static class Eventually
{
    /// <summary>
    /// Advances fake time by <paramref name="step"/> until <paramref name="condition"/> holds: for a
    /// source that may be waiting on a sample period or a backoff. Only the values reached are
    /// asserted, never how much time it took.
    /// </summary>
    public static async Task TrueAdvancing(Microsoft.Extensions.Time.Testing.FakeTimeProvider time, TimeSpan step, Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            time.Advance(step);
            await Task.Delay(1, TestContext.Current.CancellationToken);
        }
    }

    public static async Task True(Func<bool> condition, string what)
    {
        // Generous: this bounds a hang, it does not measure anything.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(1, TestContext.Current.CancellationToken);
        }
    }
}
