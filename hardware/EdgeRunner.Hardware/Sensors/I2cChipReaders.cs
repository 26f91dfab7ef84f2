using System.Device.I2c;
using System.Device.Spi;
using Iot.Device.Adxl345;
using Iot.Device.Bmxx80;
using Iot.Device.Bmxx80.PowerMode;
using Iot.Device.Imu;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// One chip behind an <see cref="I2cSensorSource"/>: checks the chip id, configures the chip
/// through its dotnet/iot binding, and reads one sample (all channels) without allocating.
/// </summary>
internal abstract class I2cChipReader : IDisposable
{
    private static readonly string[] AccelerationChannels = ["ax", "ay", "az"];
    private static readonly string[] EnvironmentChannels = ["temperature", "pressure", "humidity"];
    private static readonly int[] AccelerationRangesG = [2, 4, 8, 16];

    protected I2cChipReader(IReadOnlyList<string> channels) => Channels = channels;

    /// <summary>Channel names in the order <see cref="Read"/> writes them.</summary>
    public IReadOnlyList<string> Channels { get; }

    /// <summary>Opens the chip of <paramref name="options"/>; on failure disposes the device and throws <see cref="SensorSourceException"/>.</summary>
    public static I2cChipReader Open(I2cDevice device, I2cSensorSourceOptions options, string where)
    {
        try
        {
            return options.Chip switch
            {
                I2cSensorChip.Adxl345 => new Adxl345Reader(device, options.AccelerationRangeG, where),
                I2cSensorChip.Mpu6050 => new Mpu6050Reader(device, options.AccelerationRangeG, where),
                I2cSensorChip.Bme280 => new Bme280Reader(device, where),
                _ => throw new SensorSourceException($"{where}: unsupported chip {options.Chip}."),
            };
        }
        catch (SensorSourceException)
        {
            device.Dispose();
            throw;
        }
        catch (IOException ex)
        {
            // The id matched but configuring failed (the binding reads settings back and throws when
            // they did not stick): a flaky bus or a clone chip.
            device.Dispose();
            throw new SensorSourceException($"{where}: the chip answered but could not be configured: {ex.Message}", ex);
        }
    }

    /// <summary>Reads the current output into <paramref name="sample"/> (one value per channel). Throws <see cref="IOException"/> when the bus fails.</summary>
    public abstract void Read(Span<float> sample);

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected abstract void Dispose(bool disposing);

    /// <summary>
    /// Reads the chip's identification register so that a missing device or another chip at the
    /// address fails at start with a message that says which, instead of as garbage samples later.
    /// </summary>
    protected static void CheckChipId(I2cDevice device, byte register, byte expected, string where)
    {
        byte id;
        try
        {
            device.WriteByte(register);
            id = device.ReadByte();
        }
        catch (IOException ex)
        {
            throw new SensorSourceException(
                $"{where}: no device answered ({ex.Message}). Check the wiring, the bus id and the address (i2cdetect -y {device.ConnectionSettings.BusId} lists the addresses that answer).",
                ex);
        }

        if (id != expected)
        {
            throw new SensorSourceException(
                $"{where}: wrong chip id 0x{id:X2} in register 0x{register:X2}, expected 0x{expected:X2}; another chip is at this address (or the configured chip is wrong).");
        }
    }

    protected static string[] AccelerationChannelNames => AccelerationChannels;

    /// <summary>The channels a chip's source delivers, in order.</summary>
    public static IReadOnlyList<string> ChannelsOf(I2cSensorChip chip) => chip == I2cSensorChip.Bme280 ? EnvironmentChannels : AccelerationChannels;

    /// <summary>The binding's setting for ±2, 4, 8 or 16 g (<paramref name="settings"/> in that order).</summary>
    protected static T Range<T>(int rangeG, ReadOnlySpan<T> settings, string where)
    {
        var index = Array.IndexOf(AccelerationRangesG, rangeG);
        return index >= 0
            ? settings[index]
            : throw new SensorSourceException($"{where}: the acceleration range must be 2, 4, 8 or 16 g (got {rangeG}).");
    }

    protected static string[] EnvironmentChannelNames => EnvironmentChannels;
}

/// <summary>ADXL345 over I2C through <see cref="Adxl345"/>; acceleration in g.</summary>
internal sealed class Adxl345Reader : I2cChipReader
{
    private const byte DeviceIdRegister = 0x00;
    private const byte DeviceId = 0xE5;
    private readonly Adxl345 _sensor;

    public Adxl345Reader(I2cDevice device, int rangeG, string where)
        : base(AccelerationChannelNames)
    {
        var range = Range(rangeG, [GravityRange.Range02, GravityRange.Range04, GravityRange.Range08, GravityRange.Range16], where);
        CheckChipId(device, DeviceIdRegister, DeviceId, where);
        // The binding speaks SPI only; the ADXL345's register protocol is the same on both buses,
        // so a thin transport adapter lets the binding drive the chip over I2C.
        _sensor = new Adxl345(new I2cRegisterSpiAdapter(device), range);
    }

    public override void Read(Span<float> sample)
    {
        // The binding scales the 10-bit output to g for the configured range.
        var acceleration = _sensor.Acceleration;
        sample[0] = acceleration.X;
        sample[1] = acceleration.Y;
        sample[2] = acceleration.Z;
    }

    protected override void Dispose(bool disposing) => _sensor.Dispose();
}

/// <summary>MPU6050 accelerometer through <see cref="Mpu6050"/>; acceleration in g.</summary>
internal sealed class Mpu6050Reader : I2cChipReader
{
    private const byte WhoAmIRegister = 0x75;
    private const byte WhoAmI = 0x68;

    // The binding's GetAccelerometer() returns m/s² computed with this value of g (its docs say g);
    // dividing by the same constant gives g exactly, the unit the ADXL345 reports too.
    private const float BindingGravity = 9.807f;
    private readonly Mpu6050 _sensor;

    public Mpu6050Reader(I2cDevice device, int rangeG, string where)
        : base(AccelerationChannelNames)
    {
        var range = Range(rangeG, [AccelerometerRange.Range02G, AccelerometerRange.Range04G, AccelerometerRange.Range08G, AccelerometerRange.Range16G], where);
        CheckChipId(device, WhoAmIRegister, WhoAmI, where);
        // Resets and wakes the chip (the binding sleeps 200 ms doing so), then sets its defaults.
        _sensor = new Mpu6050(device);
        _sensor.AccelerometerRange = range;
        // The binding folds the sample-rate divider into its acceleration scale, which is only right
        // for a divider of 0; we pace reads ourselves, so the divider stays 0.
        _sensor.SampleRateDivider = 0;
    }

    public override void Read(Span<float> sample)
    {
        var acceleration = _sensor.GetAccelerometer();
        sample[0] = acceleration.X / BindingGravity;
        sample[1] = acceleration.Y / BindingGravity;
        sample[2] = acceleration.Z / BindingGravity;
    }

    protected override void Dispose(bool disposing) => _sensor.Dispose();
}

/// <summary>BME280 through <see cref="Bme280"/>: temperature °C, pressure hPa, relative humidity %.</summary>
internal sealed class Bme280Reader : I2cChipReader
{
    private const byte ChipIdRegister = 0xD0;
    private const byte ChipId = 0x60;
    private readonly Bme280 _sensor;

    public Bme280Reader(I2cDevice device, string where)
        : base(EnvironmentChannelNames)
    {
        CheckChipId(device, ChipIdRegister, ChipId, where);
        // Reads the calibration data and resets to 1× oversampling, no IIR filter.
        _sensor = new Bme280(device);
        // Normal mode with the shortest standby: the chip measures continuously and each read takes
        // its latest result, so reading never waits (forced mode would sleep the measurement time).
        _sensor.StandbyTime = StandbyTime.Ms0_5;
        _sensor.SetPowerMode(Bmx280PowerMode.Normal);
    }

    public override void Read(Span<float> sample)
    {
        // The Try* reads return structs; Read() would allocate a result object per sample.
        sample[0] = _sensor.TryReadTemperature(out var temperature) ? (float)temperature.DegreesCelsius : float.NaN;
        // Pressure and humidity compensation need the temperature, which each of these reads again.
        sample[1] = _sensor.TryReadPressure(out var pressure) ? (float)(pressure.Pascals / 100) : float.NaN;
        sample[2] = _sensor.TryReadHumidity(out var humidity) ? (float)humidity.Percent : float.NaN;
    }

    protected override void Dispose(bool disposing) => _sensor.Dispose();
}

/// <summary>
/// Presents a register-addressed I2C device as the SPI device a register-level binding expects:
/// the first byte of an SPI transfer is the register address (with read and multi-byte flags in
/// its top bits, as ADXL345-style SPI framing has it); over I2C the same access is "write the
/// register address, then read or write the bytes", with the chip auto-incrementing the address.
/// Owns the I2C device.
/// </summary>
internal sealed class I2cRegisterSpiAdapter(I2cDevice device) : SpiDevice
{
    // ADXL345 SPI framing: bit 7 = read, bit 6 = multi-byte; the rest is the register address.
    private const byte RegisterMask = 0x3F;
    private readonly SpiConnectionSettings _settings = new(device.ConnectionSettings.BusId, 0);

    public override SpiConnectionSettings ConnectionSettings => _settings;

    public override void Read(Span<byte> buffer) => device.Read(buffer);

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        // [register, data…]: identical on I2C.
        Span<byte> frame = stackalloc byte[buffer.Length];
        buffer.CopyTo(frame);
        frame[0] &= RegisterMask;
        device.Write(frame);
    }

    public override void TransferFullDuplex(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
    {
        // SPI clocks one byte back while the address goes out; the data follow it.
        if (writeBuffer.IsEmpty || readBuffer.IsEmpty)
        {
            return;
        }

        ReadOnlySpan<byte> register = [(byte)(writeBuffer[0] & RegisterMask)];
        readBuffer[0] = 0;
        device.WriteRead(register, readBuffer[1..]);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            device.Dispose();
        }

        base.Dispose(disposing);
    }
}
