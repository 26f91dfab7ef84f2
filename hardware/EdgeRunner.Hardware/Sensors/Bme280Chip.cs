using System.Device.I2c;
using Iot.Device.Bmxx80;
using Iot.Device.Bmxx80.PowerMode;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// BME280 environment sensor through <see cref="Bme280"/>: chip id 0x60 in register 0xD0, usual address 0x77
/// (0x76 with SDO low), channels temperature °C, pressure hPa, relative humidity %; no range to set.
/// </summary>
internal sealed class Bme280Chip : I2cChipReader
{
    /// <summary>What the chip is: id, address, channels, ranges, and how it is opened.</summary>
    public static I2cChipInfo Info { get; } = new(
        I2cSensorChip.Bme280,
        DefaultAddress: 0x77,
        Channels: ["temperature", "pressure", "humidity"],
        RangesG: [],
        Open: (device, _, where) => new Bme280Chip(device, where));

    private const byte ChipIdRegister = 0xD0;
    private const byte ChipId = 0x60;
    private readonly Bme280 _sensor;

    private Bme280Chip(I2cDevice device, string where)
        : base(Info.Channels)
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
