using System.Device.I2c;

namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// What one supported chip is (dotnet/iot style, one file per chip: <c>Adxl345Chip.cs</c>, <c>Mpu6050Chip.cs</c>,
/// <c>Bme280Chip.cs</c>): its usual address, its channels in order, the acceleration ranges it takes (empty:
/// none to set), and how it is opened on a device.
/// </summary>
/// <param name="Chip">The configuration value naming it.</param>
/// <param name="DefaultAddress">The 7-bit address used when the configuration gives 0.</param>
/// <param name="Channels">Channel names in the order a read writes them.</param>
/// <param name="RangesG">Full-scale ranges in g it can be set to, in the order of the binding's settings.</param>
/// <param name="Open">Checks the chip id and configures the chip; throws <see cref="SensorSourceException"/> or <see cref="IOException"/>.</param>
internal sealed record I2cChipInfo(
    I2cSensorChip Chip,
    int DefaultAddress,
    IReadOnlyList<string> Channels,
    IReadOnlyList<int> RangesG,
    Func<I2cDevice, I2cSensorSourceOptions, string, I2cChipReader> Open);

/// <summary>
/// One chip behind an <see cref="I2cSensorSource"/>: checks the chip id, configures the chip
/// through its dotnet/iot binding, and reads one sample (all channels) without allocating.
/// </summary>
internal abstract class I2cChipReader : IDisposable
{
    /// <summary>
    /// Every supported chip, by its configuration value (a new chip: its file, its enum value, one line here).
    /// The chips' Info reads nothing of this class, so whichever type is touched first, no static is read half-built.
    /// </summary>
    public static IReadOnlyDictionary<I2cSensorChip, I2cChipInfo> Chips { get; } =
        new[] { Adxl345Chip.Info, Mpu6050Chip.Info, Bme280Chip.Info }.ToDictionary(c => c.Chip);

    protected I2cChipReader(IReadOnlyList<string> channels) => Channels = channels;

    /// <summary>Channel names in the order <see cref="Read"/> writes them.</summary>
    public IReadOnlyList<string> Channels { get; }

    /// <summary>What <paramref name="chip"/> is; throws <see cref="SensorSourceException"/> for a value that names no supported chip.</summary>
    public static I2cChipInfo InfoOf(I2cSensorChip chip, string where = "I2C") =>
        Chips.TryGetValue(chip, out var info) ? info : throw new SensorSourceException($"{where}: unsupported chip {chip}.");

    /// <summary>Opens the chip of <paramref name="options"/>; on failure disposes the device and throws <see cref="SensorSourceException"/>.</summary>
    public static I2cChipReader Open(I2cDevice device, I2cSensorSourceOptions options, string where)
    {
        try
        {
            return InfoOf(options.Chip, where).Open(device, options, where);
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

    /// <summary>The binding's setting for <paramref name="rangeG"/>: <paramref name="settings"/> are in the order of the chip's <see cref="I2cChipInfo.RangesG"/>.</summary>
    protected static T Range<T>(I2cChipInfo chip, int rangeG, ReadOnlySpan<T> settings, string where)
    {
        for (var i = 0; i < chip.RangesG.Count; i++)
        {
            if (chip.RangesG[i] == rangeG)
            {
                return settings[i];
            }
        }

        throw new SensorSourceException($"{where}: the acceleration range must be {I2cSensorSource.Describe(chip.RangesG)} g (got {rangeG}).");
    }
}
