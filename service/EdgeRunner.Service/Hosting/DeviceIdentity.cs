using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service;

/// <summary>Resolves the device id: configured, else the host name.</summary>
internal static class DeviceIdentity
{
    public static string Resolve(DeviceOptions options) =>
        string.IsNullOrWhiteSpace(options.Id) ? Environment.MachineName.ToLowerInvariant() : options.Id;
}
