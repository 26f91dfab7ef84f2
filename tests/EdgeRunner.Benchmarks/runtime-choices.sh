#!/usr/bin/env bash
# Memory and CPU of the daemon under each .NET runtime / ONNX Runtime choice (docs/performance.md §13).
# Runs `edgerunner bench-pipeline --no-bare --json` once per variant and round, the variants interleaved
# (A, B, C, A, B, C, ...) so a load that drifts on a shared machine hits each alike, and prints one line per
# run (load average, CPU, CPU per inferred frame, RSS at the end, peak RSS, start-to-ready) and the median
# of each variant. A variant is NAME or NAME:VAR=VALUE,VAR=VALUE (environment variables, DOTNET_* or others)
# and may add configuration overrides after a '|': NAME:VAR=VALUE|--Models:mobilenet:CpuMemArena=false
#
#   dotnet build service/EdgeRunner.Service -c Release
#   tests/EdgeRunner.Benchmarks/runtime-choices.sh CONFIG SECONDS ROUNDS VARIANT...
#
# CONFIG: demo (the built-in appsettings.json), mobilenet (mobilenetv2-12-int8 from ../shared on the Images
# source at 5 fps, 224x224), or a path to a configuration file.
# With SMAPS=1 each run also prints its /proc/PID/smaps summed by kind (GC heap, JIT code, libonnxruntime,
# other files, other anonymous memory) half-way through the measured time.
# Examples:
#   tests/EdgeRunner.Benchmarks/runtime-choices.sh demo 30 2 baseline server:DOTNET_gcServer=1 conserve:DOTNET_GCConserveMemory=5
#   SMAPS=1 tests/EdgeRunner.Benchmarks/runtime-choices.sh mobilenet 20 1 baseline
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,19p' "$0" >&2; exit 64; }
config=$1 seconds=$2 rounds=$3
shift 3
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${SHARED:-$root/../shared}
dll=${DLL:-$root/service/EdgeRunner.Service/bin/Release/net10.0/linux-x64/edgerunner.dll}
warmup=${WARMUP:-5}
work=$(mktemp -d /tmp/edgerunner-choices-XXXXXX)
trap 'rm -rf "$work"' EXIT
here=$(dirname "$0")
# A published layout (packaging/build.sh, self-contained) runs through its app host: DLL=/path/to/edgerunner
runner=(dotnet "$dll")
[[ "$dll" == *.dll ]] || runner=("$dll")

config_args=()
case "$config" in
    demo) ;;
    mobilenet)
        cat > "$work/mobilenet.json" <<EOF
{
  "Device": { "Id": "mobilenet-bench" },
  "Mqtt": { "Host": "" },
  "Models": {
    "mobilenet": {
      "Path": "$shared/models/mobilenetv2-12-int8/model.onnx", "Labels": "$shared/models/mobilenetv2-12-int8/synset.txt",
      "Task": "Classification",
      "Preprocess": { "Width": 224, "Height": 224, "Resize": "CenterCrop", "ResizeShorterSide": 256, "ChannelOrder": "Rgb", "Layout": "Nchw",
        "Scale": 0.003921569, "Mean": [ 0.485, 0.456, 0.406 ], "Std": [ 0.229, 0.224, 0.225 ] },
      "Classification": { "TopK": 3, "Softmax": true }
    }
  },
  "Cameras": { "cam": { "Model": "mobilenet", "Fps": 5, "Source": { "Kind": "Images", "Path": "$shared/images/goldfish.jpg", "Loop": true } } },
  "State": { "Directory": "$work/state" }
}
EOF
        config_args=(--config "$work/mobilenet.json") ;;
    *) config_args=(--config "$config") ;;
esac

printf '%-14s %5s %7s %9s %8s %8s %8s %6s %6s %6s %6s\n' variant load cpu% ms/frame rss_MiB peak_MiB ready_ms gen0s anon file shmem
for round in $(seq 1 "$rounds"); do
    for variant in "$@"; do
        name=${variant%%:*}
        rest=${variant#"$name"}
        rest=${rest#:}
        envs=${rest%%|*}
        overrides=()
        if [[ "$rest" == *"|"* ]]; then read -r -a overrides <<< "${rest#*|}"; fi
        env_args=()
        if [ -n "$envs" ]; then IFS=, read -r -a env_args <<< "$envs"; fi
        load=$(cut -d' ' -f1 /proc/loadavg)
        (cd "$root" && exec env "${env_args[@]}" "${runner[@]}" bench-pipeline "${config_args[@]}" --seconds "$seconds" --warmup "$warmup" --no-bare --json \
            -- "--State:Directory=$work/state" "${overrides[@]}" > "$work/out.json" 2> "$work/err.txt") &
        pid=$!
        # Half-way through the measured time: the resident set split into anonymous memory (GC heap, malloc, JIT
        # data), file pages (libraries, assemblies: shared with the page cache, how many are mapped depends on the
        # kernel) and shared memory (the runtime's W^X double-mapped code), from /proc/PID/status.
        # The bench runs in the process started here (dotnet and the app host exec nothing).
        sleep $(( warmup + seconds / 2 + 2 ))
        grep -E '^Rss(Anon|File|Shmem):' "/proc/$pid/status" | awk '{printf "%.1f ", $2/1024}' > "$work/split.txt" || true
        if [ "${SMAPS:-0}" = 1 ]; then python3 "$here/smaps-summary.py" "$pid" > "$work/smaps.txt" || true; fi
        wait "$pid" || { echo "$name: bench-pipeline failed" >&2; tail -n 20 "$work/err.txt" >&2; continue; }
        python3 - "$name" "$load" "$work/out.json" $(cat "$work/split.txt") <<'EOF' | tee -a "$work/lines.txt"
import json, sys
name, load, path = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(path))
p = r["process"]
ms = p["cpu_ms_per_frame"] if p["cpu_ms_per_frame"] is not None else float("nan")
print(f'{name:<14} {load:>5} {p["cpu_percent"]:7.1f} {ms:9.1f} {p["rss_bytes"]/2**20:8.1f} {p["peak_rss_bytes"]/2**20:8.1f} {r["ready_ms"]:8.0f} {p["gc_collections"][0]:6d} ' + ' '.join(f'{float(x):6.1f}' for x in sys.argv[4:7]))
EOF
        if [ "${SMAPS:-0}" = 1 ]; then sed 's/^/    /' "$work/smaps.txt"; fi
    done
done
echo "median per variant:"
python3 - "$work/lines.txt" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], []).append([float(x) for x in f[1:]])
for name, runs in rows.items():
    med = [statistics.median(col) for col in zip(*runs)]
    print(f'{name:<14} {med[0]:5.2f} {med[1]:7.1f} {med[2]:9.1f} {med[3]:8.1f} {med[4]:8.1f} {med[5]:8.0f} {med[6]:6.0f} ' + ' '.join(f'{x:6.1f}' for x in med[7:]) + f'  ({len(runs)} runs)')
EOF
