#!/usr/bin/env bash
# Runs the packaged arm64 build under user-mode qemu, as a Raspberry Pi 4 (Cortex-A72) and a Pi 5
# (Cortex-A76) would: `edgerunner check-config` on the packaged configuration, then `edgerunner
# evaluate` (the demo models on held-out simulator seeds), and compares evaluate's figures (mAP@0.5
# and AP per class; accuracy, macro F1 and F1 per class, the confusion matrix) with the amd64
# package's own run on this x86-64 machine: the sequence model's figures must be equal, the INT8 detector's
# AP within a tolerance (see same_figures).
#
# The sysroot (tests/arm64/sysroot.sh) holds Debian's cross glibc/libstdc++, arm64 libssl3 and a fake
# /proc/cpuinfo for the emulated CPU (ONNX Runtime picks its kernels by it). The package's tree is
# unpacked into that root. Both runs use the packaged config.json, with its two model manifests
# (/usr/share/edgerunner/models/...) pointed at the unpacked tree: qemu's -L prefix covers the loader and
# open(), not the stat() calls .NET checks paths with.
# Emulation checks correctness only; its timings say nothing about a real Pi.
#
# Needs: packaging/dist/edgerunner_*_arm64.tar.gz (or .deb) and _amd64 (packaging/build.sh); installs
# qemu-user-static and the cross libraries when missing (tests/arm64/sysroot.sh).
# Usage: packaging/arm64-check.sh [cortex-a72] [cortex-a76]     (default: both)
#        EVALUATE_ARGS="--frames 200 --seconds 300" packaging/arm64-check.sh ...   (default: the docs' --frames 500 --seconds 600)
# Prints one line per CPU and ends with "arm64-check: PASS" (exit 0) or "arm64-check: FAIL ..." (exit 1).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dist="$repo/packaging/dist"
cpus=${*:-cortex-a72 cortex-a76}
read -r -a evaluate_args <<<"${EVALUATE_ARGS:---frames 500 --seconds 600}"

package_for() {
  local arch=$1 found
  found=$(ls "$dist"/edgerunner_*_"$arch".tar.gz 2>/dev/null | tail -n 1 || true)
  [ -n "$found" ] || found=$(ls "$dist"/edgerunner_*_"$arch".deb 2>/dev/null | tail -n 1 || true)
  [ -n "$found" ] || { echo "arm64-check: FAIL: no edgerunner_*_$arch.tar.gz or .deb in $dist (run packaging/build.sh)" >&2; exit 1; }
  printf '%s\n' "$found"
}

# Unpacks what the check needs from a package into ROOT (not the unit's /lib: the sysroot's lib is a link).
unpack() {
  local package=$1 root=$2 tree
  case "$package" in
    *.tar.gz) tar -xzf "$package" -C "$root" ./usr/lib/edgerunner ./usr/share/edgerunner ./etc/edgerunner ;;
    *.deb)
      tree=$(mktemp -d "$work/deb.XXXXXX")
      dpkg-deb -x "$package" "$tree"
      mkdir -p "$root/usr/lib" "$root/usr/share" "$root/etc"
      cp -a "$tree/usr/lib/edgerunner" "$root/usr/lib/"
      cp -a "$tree/usr/share/edgerunner" "$root/usr/share/"
      cp -a "$tree/etc/edgerunner" "$root/etc/"
      rm -rf "$tree" ;;
  esac
  # The package links appsettings.json to /etc/edgerunner/config.json (absolute, as Debian wants): here
  # the link points into ROOT, so a bare `edgerunner check-config` reads the packaged configuration.
  ln -sfn ../../../etc/edgerunner/config.json "$root/usr/lib/edgerunner/appsettings.json"
}

# The figures evaluate prints (AP per class, mAP, accuracy, F1, time to detect in simulated seconds, the
# confusion matrix), without its one timing (mean inference ms/frame) or any log line.
figures() {
  grep -E '^  (mAP@0.5|accuracy|F1 per class|time to detect|confusion)|^    [^ ]|^  [A-Za-z][^ ]* +[0-9]+ +[0-9]+ +[0-9.]+$' "$1" | sed 's/   mean inference .*$//'
}

# x64 and arm64 figures agree: the sequence model's (accuracy, F1, time to detect, confusion matrix) exactly;
# the INT8 detector's AP and mAP within ARM64_MAP_TOLERANCE (default 0.01) and its prediction counts within
# 2 per class. ONNX Runtime's INT8 convolutions use different kernels on x86-64 (u8s8 with AVX2/VNNI) and on
# ARM (NEON/dot product), whose rounding differs in the last bit of some activations: near the score threshold
# a box may come or go (docs/deployment.md, "arm64 under qemu"). FP32 LSTM figures have no such freedom.
map_tolerance=${ARM64_MAP_TOLERANCE:-0.01}
same_figures() {
  /usr/bin/python3 - "$1" "$2" "$map_tolerance" <<'PY'
import re, sys
x64, arm, tol = open(sys.argv[1]).read().splitlines(), open(sys.argv[2]).read().splitlines(), float(sys.argv[3])
ap_line = re.compile(r'^  [A-Za-z]\S* +[0-9]+ +[0-9]+ +[0-9.]+$')
def close(a, b):
    if a == b:
        return True
    try:
        fa, fb = float(a), float(b)
    except ValueError:
        return False
    return abs(fa - fb) <= tol if '.' in a + b else abs(fa - fb) <= 2
ok = len(x64) == len(arm)
for a, b in zip(x64, arm):
    if a == b:
        continue
    detector = 'mAP@0.5' in a or ap_line.match(a)
    ta, tb = a.split(), b.split()
    if not detector or len(ta) != len(tb) or not all(close(p, q) for p, q in zip(ta, tb)):
        print(f'differs: {a!r} / {b!r}')
        ok = False
sys.exit(0 if ok else 1)
PY
}

# The packaged configuration's model manifests, in the tree unpacked at ROOT.
models_in() {
  printf '%s\n' "--Models:shapes-detector:Manifest=$1/usr/share/edgerunner/models/shapes-detector/model.json" \
    "--Models:vibration-lstm:Manifest=$1/usr/share/edgerunner/models/vibration-lstm/model.json"
}

seconds_since() { awk -v start="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.0f", now - start }'; }

work=$(mktemp -d "${TMPDIR:-/tmp}/edgerunner-arm64-check.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
arm64=$(package_for arm64)
amd64=$(package_for amd64)
echo "arm64 package: $arm64"
echo "amd64 package: $amd64 (the reference, run natively)"

# The reference: the amd64 package on this machine.
x64="$work/x64"
mkdir -p "$x64"
unpack "$amd64" "$x64"
mapfile -t models < <(models_in "$x64")
start=$(date +%s.%N)
if ! "$x64/usr/lib/edgerunner/edgerunner" evaluate "${evaluate_args[@]}" "${models[@]}" >"$work/x64.txt" 2>&1; then
  cat "$work/x64.txt"
  echo "arm64-check: FAIL: evaluate of the amd64 package failed"
  exit 1
fi
printf 'x64 (native): evaluate %s in %s s\n' "${evaluate_args[*]}" "$(seconds_since "$start")"
cat "$work/x64.txt"
figures "$work/x64.txt" >"$work/x64.figures"
grep -q 'mAP@0.5' "$work/x64.figures" && grep -q 'accuracy' "$work/x64.figures" \
  || { echo "arm64-check: FAIL: the x64 run printed no mAP or accuracy"; exit 1; }
rm -rf "$x64"

failures=()
for cpu in $cpus; do
  root="$work/root-$cpu"
  "$repo/tests/arm64/sysroot.sh" "$root" "$cpu"
  unpack "$arm64" "$root"
  app="$root/usr/lib/edgerunner/edgerunner"
  file -L "$app" | grep -q aarch64 || { echo "arm64-check: FAIL: $app is not an arm64 executable"; exit 1; }
  # W^X off: .NET's double-mapped code pages crash under user-mode qemu (segfault at the first JIT).
  mapfile -t models < <(models_in "$root")
  run() { DOTNET_EnableWriteXorExecute=0 timeout 3600 qemu-aarch64-static -cpu "$cpu" -L "$root" "$app" "$@"; }

  start=$(date +%s.%N)
  code=0
  run check-config "${models[@]}" >"$work/check-$cpu.txt" 2>&1 || code=$?
  if [ $code -ne 0 ]; then
    cat "$work/check-$cpu.txt"
    echo "$cpu (qemu): check-config exited $code"
    failures+=("$cpu check-config")
    continue
  fi
  printf '%s (qemu): check-config exit 0 in %s s (emulated)\n' "$cpu" "$(seconds_since "$start")"
  sed 's/^/  /' "$work/check-$cpu.txt"

  start=$(date +%s.%N)
  code=0
  run evaluate "${evaluate_args[@]}" "${models[@]}" >"$work/arm64-$cpu.txt" 2>&1 || code=$?
  if [ $code -ne 0 ]; then
    cat "$work/arm64-$cpu.txt"
    echo "$cpu (qemu): evaluate exited $code"
    failures+=("$cpu evaluate")
    continue
  fi
  printf '%s (qemu): evaluate %s in %s s (emulated)\n' "$cpu" "${evaluate_args[*]}" "$(seconds_since "$start")"
  cat "$work/arm64-$cpu.txt"
  figures "$work/arm64-$cpu.txt" >"$work/arm64-$cpu.figures"
  diff -u --label x64 --label "arm64 $cpu" "$work/x64.figures" "$work/arm64-$cpu.figures" || true
  if same_figures "$work/x64.figures" "$work/arm64-$cpu.figures"; then
    echo "$cpu (qemu): the same accuracy, F1 and confusion matrix as x64; detector AP within $map_tolerance"
  else
    echo "$cpu (qemu): figures differ from x64 beyond the tolerance (above)"
    failures+=("$cpu figures")
  fi
  rm -rf "$root"
done

if [ ${#failures[@]} -gt 0 ]; then
  echo "arm64-check: FAIL: ${failures[*]}"
  exit 1
fi
echo "arm64-check: PASS"
