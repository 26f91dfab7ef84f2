using EdgeRunner.Hardware.Supervision;

namespace EdgeRunner.Hardware.Cameras;

/// <summary>
/// A frame source that keeps its camera running by itself (reopens it after a failure or a stall, as
/// <see cref="SupervisedFrameSource"/> does) and so reports the camera's health itself: its reader publishes
/// <see cref="StateChanged"/> instead of inferring <c>streaming</c> from the first frame. The camera side's
/// counterpart of the sensors' <c>IDeviceAvailability</c>.
/// </summary>
public interface ICameraHealth
{
    /// <summary>Raised on every change of the camera's <see cref="SourceHealth"/>, with the reason, on the reading thread.</summary>
    event EventHandler<SourceHealthChangedEventArgs>? StateChanged;

    /// <summary>How many times the source reopened its camera after a failure, stall or unexpected end.</summary>
    long Restarts { get; }
}
