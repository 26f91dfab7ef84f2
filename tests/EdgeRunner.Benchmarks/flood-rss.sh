#!/usr/bin/env bash
# Memory of the daemon under an MQTT ingest flood (docs/performance.md, "Memory after an ingest flood").
# Starts mosquitto and the daemon (a camera on ../shared/images/goldfish.jpg, a wildcard ingest entry),
# publishes MESSAGES payloads of SAMPLES 3-axis samples on one ingest topic and a few on another, waits
# until no more results come, and prints the daemon's RSS (peak, after the flood, after IDLE seconds),
# the results delivered per stream, the publisher's per-producer drop log lines, and its SIGTERM exit code.
#
#   dotnet build service/EdgeRunner.Service -c Release
#   tests/EdgeRunner.Benchmarks/flood-rss.sh [MESSAGES] [SAMPLES] [MAX_PAYLOAD_BYTES] [IDLE]
#
# Defaults replay the hostile-input probe: 20 payloads of 625,000 samples (about 15 MB each, 250,000
# results), with Source:MaxPayloadBytes raised to 32 MiB (and Mqtt:MaxIncomingPacketBytes 1 MiB above it)
# so they are read. With MAX_PAYLOAD_BYTES 65536 (the default) the packet limit is the default 1 MiB and
# the broker discards them.
set -euo pipefail
messages=${1:-20}
samples=${2:-625000}
max_payload=${3:-33554432}
idle=${4:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${SHARED:-$root/../shared}
dll=$root/service/EdgeRunner.Service/bin/Release/net10.0/linux-x64/edgerunner.dll
work=$(mktemp -d /tmp/edgerunner-flood-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
pids+=($!)
sleep 1

cat > "$work/config.json" <<EOF
{
  "Device": { "Id": "flood" },
  "Mqtt": { "Host": "127.0.0.1", "Port": $port, "MaxIncomingPacketBytes": $(( max_payload + 1048576 > 1048576 ? max_payload + 1048576 : 1048576 )) },
  "Models": {
    "mobilenet": { "Path": "$shared/models/mobilenetv2-12-int8/model.onnx", "Labels": "$shared/models/mobilenetv2-12-int8/synset.txt",
      "Preprocess": { "Width": 224, "Height": 224, "Resize": "CenterCrop", "ResizeShorterSide": 256, "Scale": 0.00392156862745098,
        "Mean": [0.485, 0.456, 0.406], "Std": [0.229, 0.224, 0.225] } },
    "lstm": { "Manifest": "$root/models/bundled/vibration-lstm/model.json" }
  },
  "Cameras": { "cam": { "Model": "mobilenet", "Fps": 10, "Source": { "Kind": "Images", "Path": "$shared/images/goldfish.jpg", "Loop": true } } },
  "Sensors": { "vib": { "Model": "lstm", "Source": { "Kind": "Mqtt", "Topic": "plant/+/accel", "Format": "Numbers", "MaxPayloadBytes": $max_payload } } },
  "Logging": { "LogLevel": { "Default": "Warning", "EdgeRunner.Service.Mqtt": "Information" } }
}
EOF

mosquitto_sub -p "$port" -t 'edgerunner/flood/+/+/result' -t 'edgerunner/flood/sensors/vib/+/result' -F '%t' > "$work/results.txt" &
pids+=($!)
dotnet "$dll" --config "$work/config.json" > "$work/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)
until grep -q "MQTT subscribed to plant/+/accel" "$work/daemon.log"; do sleep 0.5; done

python3 - "$samples" > "$work/payload.txt" <<'PY'
import math, sys
n = int(sys.argv[1])
sys.stdout.write("".join(f"{0.3*math.sin(i/7):.5f},{0.2*math.cos(i/7):.5f},{1+0.05*math.sin(i/3):.5f}\n" for i in range(n)))
PY
python3 - > "$work/small.txt" <<'PY'
import math
print("".join(f"{0.3*math.sin(i/7):.5f},{0.2*math.cos(i/7):.5f},1.0" + "\n" for i in range(200)), end="")
PY
rss() { awk -v k="$1" '$1 == k":" { printf "%d MiB", $2 / 1024 }' "/proc/$daemon/status"; }
echo "payload: $(stat -c %s "$work/payload.txt") bytes x $messages messages; RSS before: $(rss VmRSS)"

for _ in $(seq "$messages"); do
  mosquitto_pub -p "$port" -q 1 -t plant/flood/accel -f "$work/payload.txt"
  mosquitto_pub -p "$port" -q 1 -t plant/quiet/accel -f "$work/small.txt"
done

# Done when no sensor result came for 5 s (the camera goes on).
last=-1
while true; do
  sleep 5
  now=$(grep -c /sensors/ "$work/results.txt" || true)
  [ "$now" = "$last" ] && break
  last=$now
done
echo "after the flood: RSS $(rss VmRSS), peak $(rss VmHWM)"
sleep "$idle"
echo "after ${idle} s idle: RSS $(rss VmRSS)"
echo "results delivered per topic:"
sort "$work/results.txt" | uniq -c
echo "publisher drops (last line per producer):"
grep -o 'MQTT queue full: [^ ]* holds the most.*so far' "$work/daemon.log" | awk '{ last[$4] = $0 } END { for (p in last) print last[p] }' || true
grep -o 'malformed payload.*' "$work/daemon.log" | tail -1 || true
kill -TERM "$daemon"
code=0
wait "$daemon" || code=$?
echo "connections and failures:"
grep -o 'MQTT connected.*\|MQTT .*failed.*\|ingest queue full.*' "$work/daemon.log" | cut -c1-200 | tail -5 || true
grep -o 'MQTT publisher stopped.*' "$work/daemon.log" || true
echo "SIGTERM exit code: $code"
