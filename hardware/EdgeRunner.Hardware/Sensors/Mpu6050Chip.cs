using System.Device.I2c;
using Iot.Device.Imu;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// MPU6050 accelerometer through <see cref="Mpu6050"/>: WHO_AM_I 0x68 in register 0x75, usual address 0x68
/// (0x69 with AD0 high), channels ax, ay, az in g, ranges ±2, 4, 8, 16 g.
/// </summary>
internal sealed class Mpu6050Chip : I2cChipReader
{
    /// <summary>What the chip is: id, address, channels, ranges, and how it is opened.</summary>
    public static I2cChipInfo Info { get; } = new(
        I2cSensorChip.Mpu6050,
        DefaultAddress: 0x68,
        Channels: ["ax", "ay", "az"],
        RangesG: [2, 4, 8, 16],
        Open: (device, options, where) => new Mpu6050Chip(device, options.AccelerationRangeG, where));

    private const byte WhoAmIRegister = 0x75;
    private const byte WhoAmI = 0x68;

    // The binding's GetAccelerometer() returns m/s² computed with this value of g (its docs say g);
    // dividing by the same constant gives g exactly, the unit the ADXL345 reports too.
    private const float BindingGravity = 9.807f;
    private readonly Mpu6050 _sensor;

    private Mpu6050Chip(I2cDevice device, int rangeG, string where)
        : base(Info.Channels)
    {
        var range = Range(Info, rangeG, [AccelerometerRange.Range02G, AccelerometerRange.Range04G, AccelerometerRange.Range08G, AccelerometerRange.Range16G], where);
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
