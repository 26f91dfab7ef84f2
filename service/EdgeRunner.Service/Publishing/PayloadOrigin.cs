using System.Text.Json;

namespace EdgeRunner.Service.Publishing;

/// <summary>
/// Who wrote a JSON payload: the device id and this run's boot id, written with the payload's schema id
/// at the head of every JSON message the daemon publishes. One per host (a singleton), made at start:
/// a subscriber tells two runs of the same device apart by <c>boot_id</c>, since <c>seq</c> may start
/// again at 0 after a restart. Pre-encoded, so writing it allocates nothing.
/// </summary>
public sealed class PayloadOrigin
{
    private static readonly JsonEncodedText SchemaName = JsonEncodedText.Encode("schema");
    private static readonly JsonEncodedText DeviceName = JsonEncodedText.Encode("device");
    private static readonly JsonEncodedText BootIdName = JsonEncodedText.Encode("boot_id");

    private readonly JsonEncodedText _device;
    private readonly JsonEncodedText _bootId;

    /// <summary>Creates the origin of <paramref name="device"/>'s payloads in the run <paramref name="bootId"/>.</summary>
    public PayloadOrigin(string device, Guid bootId)
    {
        ArgumentException.ThrowIfNullOrEmpty(device);
        Device = device;
        BootId = bootId.ToString("D");
        _device = JsonEncodedText.Encode(device);
        _bootId = JsonEncodedText.Encode(BootId);
    }

    /// <summary>The device id (<c>Device:Id</c>, else the host name), as in the topics.</summary>
    public string Device { get; }

    /// <summary>This run's id: a random UUID (lower-case, hyphenated) made once when the daemon starts.</summary>
    public string BootId { get; }

    /// <summary>A new run of <paramref name="device"/>: a fresh random boot id.</summary>
    public static PayloadOrigin NewBoot(string device) => new(device, Guid.NewGuid());

    /// <summary>Writes <c>"schema"</c>, <c>"device"</c> and <c>"boot_id"</c> into the object being written.</summary>
    public void WriteHeader(Utf8JsonWriter writer, JsonEncodedText schema)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteString(SchemaName, schema);
        writer.WriteString(DeviceName, _device);
        writer.WriteString(BootIdName, _bootId);
    }
}

/// <summary>
/// The schema id of each JSON payload kind, written as the payload's <c>schema</c> field:
/// <c>edgerunner.{area}.{kind}/{version}</c>. The version goes up only when a field is removed, renamed or
/// changes meaning or type; new fields keep it (subscribers ignore what they do not know). Each has a
/// JSON Schema in <c>docs/schemas/{area}.{kind}.schema.json</c> (docs/payloads.md).
/// </summary>
internal static class PayloadSchemas
{
    /// <summary>A camera's result (<c>.../vision/{camera}/result</c>).</summary>
    public static readonly JsonEncodedText VisionResult = JsonEncodedText.Encode("edgerunner.vision.result/1");

    /// <summary>A camera's retained state (<c>.../vision/{camera}/state</c>).</summary>
    public static readonly JsonEncodedText VisionState = JsonEncodedText.Encode("edgerunner.vision.state/1");

    /// <summary>A sensor stream's result (<c>.../sensors/{stream}/result</c>).</summary>
    public static readonly JsonEncodedText SensorResult = JsonEncodedText.Encode("edgerunner.sensor.result/1");

    /// <summary>A sensor stream's event (<c>.../sensors/{stream}/event</c>).</summary>
    public static readonly JsonEncodedText SensorEvent = JsonEncodedText.Encode("edgerunner.sensor.event/1");

    /// <summary>A sensor stream's retained state (<c>.../sensors/{stream}/state</c>).</summary>
    public static readonly JsonEncodedText SensorState = JsonEncodedText.Encode("edgerunner.sensor.state/1");
}
