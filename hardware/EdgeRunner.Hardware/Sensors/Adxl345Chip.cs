using System.Device.I2c;
using Iot.Device.Adxl345;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// ADXL345 3-axis accelerometer over I2C through <see cref="Adxl345"/>: chip id 0xE5 in register 0x00,
/// usual address 0x53 (0x1D with SDO high), channels ax, ay, az in g, ranges ±2, 4, 8, 16 g.
/// </summary>
internal sealed class Adxl345Chip : I2cChipReader
{
    /// <summary>What the chip is: id, address, channels, ranges, and how it is opened.</summary>
    public static I2cChipInfo Info { get; } = new(
        I2cSensorChip.Adxl345,
        DefaultAddress: 0x53,
        Channels: ["ax", "ay", "az"],
        RangesG: [2, 4, 8, 16],
        Open: (device, options, where) => new Adxl345Chip(device, options.AccelerationRangeG, where));

    private const byte DeviceIdRegister = 0x00;
    private const byte DeviceId = 0xE5;
    private readonly Adxl345 _sensor;

    private Adxl345Chip(I2cDevice device, int rangeG, string where)
        : base(Info.Channels)
    {
        var range = Range(Info, rangeG, [GravityRange.Range02, GravityRange.Range04, GravityRange.Range08, GravityRange.Range16], where);
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
