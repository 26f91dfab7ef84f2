using System.Device.I2c;
using System.Device.Spi;

namespace EdgeRunner.Hardware.Sensors;

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
