namespace EdgeRunner.Hardware.Sensors;

/// <summary>
/// A source that rides out the loss of its device by itself (a serial port it reopens, a capture it
/// restarts) and so blocks in <see cref="ISensorSource.ReadAsync"/> instead of throwing while the
/// device is gone. It says so through <see cref="AvailabilityChanged"/>, which
/// <see cref="ReopeningSensorSource"/> mirrors into its state: otherwise the stream would be reported
/// <c>streaming</c> for as long as the device is unplugged.
/// </summary>
public interface IDeviceAvailability
{
    /// <summary>
    /// Raised with <see cref="DeviceAvailabilityChangedEventArgs.Available"/> false (and the device's
    /// reason) when the device was lost and the source starts reconnecting, and with true when samples
    /// flow again. Raised on the thread that is reading, from within <see cref="ISensorSource.ReadAsync"/>.
    /// </summary>
    event EventHandler<DeviceAvailabilityChangedEventArgs>? AvailabilityChanged;
}

/// <summary>A source's device was lost or is delivering again.</summary>
/// <param name="available">True when samples flow again; false when the device was lost.</param>
/// <param name="reason">Why: the device's own error when lost.</param>
public sealed class DeviceAvailabilityChangedEventArgs(bool available, string reason) : EventArgs
{
    /// <summary>True when samples flow again; false when the device was lost.</summary>
    public bool Available { get; } = available;

    /// <summary>Why: the device's own error when lost.</summary>
    public string Reason { get; } = reason;
}
