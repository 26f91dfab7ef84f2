using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.HomeAssistant;

/// <summary>Sub-section <c>Mqtt:HomeAssistant</c>: Home Assistant MQTT discovery of the daemon's cameras and streams (docs/home-assistant.md).</summary>
public sealed class HomeAssistantOptions
{
    /// <summary>True publishes retained discovery configs for every camera and stream, and removes those of entities no longer configured.</summary>
    public bool Enabled { get; set; }

    /// <summary>Home Assistant's discovery prefix (its MQTT integration's setting; <c>homeassistant</c> unless changed there).</summary>
    public string DiscoveryPrefix { get; set; } = "homeassistant";

    /// <summary>Adds the problems of <paramref name="options"/> to <paramref name="errors"/>, named by key.</summary>
    internal static void Validate(ValidationErrors errors, HomeAssistantOptions options)
    {
        var prefix = options.DiscoveryPrefix;
        if (string.IsNullOrWhiteSpace(prefix) || prefix.AsSpan().IndexOfAny("+#") >= 0 || prefix.StartsWith('/') || prefix.EndsWith('/') || prefix.StartsWith('$'))
        {
            errors.Add("Mqtt:HomeAssistant:DiscoveryPrefix", $"must be a non-empty topic without wildcards, '$' at the start or '/' at either end (got '{prefix}')");
        }
    }
}
