using System.Buffers;
using System.Text;
using System.Text.Json;
using EdgeRunner.Models.Postprocessing;
using EdgeRunner.Service.Cli;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Sensors;

namespace EdgeRunner.Service.HomeAssistant;

/// <summary>One Home Assistant discovery config: its retained topic and JSON payload.</summary>
/// <param name="Topic"><c>{DiscoveryPrefix}/{component}/{node_id}/{object_id}/config</c>.</param>
/// <param name="Payload">The config (UTF-8 JSON).</param>
internal sealed record DiscoveryConfig(string Topic, byte[] Payload);

/// <summary>
/// The discovery configs of the configured cameras and streams (Home Assistant's MQTT discovery: key names as in its
/// MQTT sensor, binary sensor and camera platforms). One device per daemon; every entity is available while the
/// daemon's status topic says <c>online</c> (its <c>degraded</c> matches neither payload, which Home Assistant ignores,
/// so entities stay available: results still flow, some may be missing) and unavailable on <c>offline</c>.
/// </summary>
internal static class HomeAssistantEntities
{
    /// <summary>The configs for the daemon's cameras and streams, in configuration order.</summary>
    public static IReadOnlyList<DiscoveryConfig> Build(
        HomeAssistantOptions options,
        MqttTopics topics,
        string deviceId,
        CamerasOptions cameras,
        SensorsOptions sensors,
        Func<string, ModelTask> taskOf)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(topics);
        ArgumentNullException.ThrowIfNull(cameras);
        ArgumentNullException.ThrowIfNull(sensors);
        ArgumentNullException.ThrowIfNull(taskOf);
        var node = ObjectId($"edgerunner_{deviceId}");
        var entity = new EntityWriter(options.DiscoveryPrefix.TrimEnd('/'), node, deviceId, topics.Status);
        var configs = new List<DiscoveryConfig>();
        foreach (var (cameraId, camera) in cameras.Where(c => c.Value.Enabled))
        {
            var result = topics.VisionResult(cameraId);
            if (taskOf(camera.Model) == ModelTask.Detection)
            {
                configs.Add(entity.Write("sensor", $"{cameraId}_detections", $"{cameraId} detections", w =>
                {
                    w.WriteString("state_topic", result);
                    w.WriteString("value_template", "{{ value_json.detections | length }}");
                    w.WriteString("unit_of_measurement", "objects");
                    w.WriteString("state_class", "measurement");
                    w.WriteString("icon", "mdi:cctv");
                    w.WriteString("json_attributes_topic", result);
                    // The labels present and how many of each, as attributes: {"labels": [...], "counts": {"label": n}}.
                    w.WriteString(
                        "json_attributes_template",
                        "{% set ns = namespace(counts={}) %}{% for d in value_json.detections %}{% set ns.counts = dict(ns.counts, **{d.label: ns.counts.get(d.label, 0) + 1}) %}{% endfor %}{{ {'labels': ns.counts | list, 'counts': ns.counts} | tojson }}");
                }));
                if (camera.Snapshots.Enabled)
                {
                    configs.Add(entity.Write("camera", $"{cameraId}_snapshot", $"{cameraId} snapshot", w => w.WriteString("topic", topics.VisionSnapshot(cameraId))));
                }
            }
            else
            {
                configs.Add(entity.Write("sensor", $"{cameraId}_class", $"{cameraId} class", w =>
                {
                    w.WriteString("state_topic", result);
                    w.WriteString("value_template", "{{ value_json.classifications[0].label if value_json.classifications else 'none' }}");
                    w.WriteString("icon", "mdi:cctv");
                    w.WriteString("json_attributes_topic", result);
                    w.WriteString("json_attributes_template", "{{ {'classifications': value_json.classifications} | tojson }}");
                }));
            }
        }

        foreach (var (streamId, stream) in sensors.Where(s => s.Value.Enabled && !MqttIngestStreams.IsWildcardIngest(s.Value)))
        {
            var result = topics.SensorResult(streamId);
            var task = taskOf(stream.Model);
            if (task == ModelTask.SequenceClassification)
            {
                configs.Add(entity.Write("sensor", $"{streamId}_class", $"{streamId} class", w =>
                {
                    w.WriteString("state_topic", result);
                    w.WriteString("value_template", "{{ value_json.label }}");
                    w.WriteString("icon", "mdi:sine-wave");
                    w.WriteString("json_attributes_topic", result);
                    w.WriteString("json_attributes_template", "{{ value_json.probabilities | tojson }}");
                }));
            }

            configs.Add(entity.Write("sensor", $"{streamId}_score", $"{streamId} score", w =>
            {
                w.WriteString("state_topic", result);
                w.WriteString("value_template", "{{ value_json.score }}");
                w.WriteString("state_class", "measurement");
                w.WriteString("icon", "mdi:gauge");
            }));
            if (task is ModelTask.SequenceScore or ModelTask.SequenceForecast or ModelTask.SequenceReconstruction)
            {
                // A score model's condition (score over its threshold): "active" in each result while it holds.
                configs.Add(entity.Write("binary_sensor", $"{streamId}_anomaly", $"{streamId} anomaly", w =>
                {
                    w.WriteString("state_topic", result);
                    w.WriteString("value_template", "{{ 'ON' if value_json.active | default(false) else 'OFF' }}");
                    w.WriteString("payload_on", "ON");
                    w.WriteString("payload_off", "OFF");
                    w.WriteString("device_class", "problem");
                }));
            }
        }

        return configs;
    }

    /// <summary>An id Home Assistant takes as node or object id (<c>[a-zA-Z0-9_-]</c>): anything else becomes <c>_</c>.</summary>
    public static string ObjectId(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        var builder = new StringBuilder(id.Length);
        foreach (var c in id)
        {
            builder.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_');
        }

        return builder.ToString();
    }

    /// <summary>Writes the parts every config shares: ids, name, availability, device and origin.</summary>
    private sealed class EntityWriter(string prefix, string node, string deviceId, string statusTopic)
    {
        public DiscoveryConfig Write(string component, string objectId, string name, Action<Utf8JsonWriter> specific)
        {
            var id = ObjectId(objectId);
            var buffer = new ArrayBufferWriter<byte>(1024);
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("name", name);
                w.WriteString("unique_id", $"{node}_{id}");
                specific(w);
                w.WriteString("availability_topic", statusTopic);
                w.WriteString("payload_available", "online");
                w.WriteString("payload_not_available", "offline");
                w.WriteNumber("qos", 1);
                w.WriteStartObject("device");
                w.WriteStartArray("identifiers");
                w.WriteStringValue(node);
                w.WriteEndArray();
                w.WriteString("name", $"EdgeRunner {deviceId}");
                w.WriteString("manufacturer", "EdgeRunner");
                w.WriteString("model", "EdgeRunner edge inference daemon");
                w.WriteString("sw_version", AppVersion.Informational);
                w.WriteEndObject();
                w.WriteStartObject("origin");
                w.WriteString("name", "EdgeRunner");
                w.WriteString("sw_version", AppVersion.Informational);
                w.WriteEndObject();
                w.WriteEndObject();
            }

            return new DiscoveryConfig($"{prefix}/{component}/{node}/{id}/config", buffer.WrittenSpan.ToArray());
        }
    }
}
