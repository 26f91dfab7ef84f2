#!/usr/bin/env bash
# Runs the unit tests that hold every vector path to the scalar reference (image preprocessing) as
# arm64 code under user-mode qemu, on an emulated Raspberry Pi 4 (Cortex-A72) and Pi 5 (Cortex-A76),
# so the NEON paths (AdvSimd, TBL shuffles) are checked on ARM instructions, not only through the
# portable vector API on x64. Emulation proves correctness only, never speed.
# Prints one line per CPU and a last line "arm64 summary: passed=N failed=N" (tests/run.sh adds them up).
# Usage: tests/arm64/run-simd-tests.sh [WORKDIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/edgerunner-arm64-XXXXXX")}
owns_work=$([ $# -eq 0 ] && echo 1 || echo 0)
classes=(EdgeRunner.UnitTests.ImagePreprocessorVectorisedTests EdgeRunner.UnitTests.ImagePreprocessorTests)

cleanup() { [ "$owns_work" = 1 ] && rm -rf "$work"; }
trap cleanup EXIT

if ! dotnet publish tests/EdgeRunner.UnitTests -c Release -r linux-arm64 --self-contained -p:UseAppHost=true \
     -o "$work/app" --artifacts-path "$work/artifacts" >"$work/publish.log" 2>&1; then
  tail -20 "$work/publish.log"
  echo "arm64 summary: passed=0 failed=1"
  exit 1
fi

passed=0 failed=0
args=()
for class in "${classes[@]}"; do args+=(-class "$class"); done
for cpu in cortex-a72 cortex-a76; do
  tests/arm64/sysroot.sh "$work/root-$cpu" "$cpu"
  # W^X off: .NET's double-mapped code pages crash under user-mode qemu (segfault at the first JIT).
  output=$(cd "$work/app" && DOTNET_EnableWriteXorExecute=0 timeout 1200 qemu-aarch64-static -cpu "$cpu" -L "$work/root-$cpu" ./EdgeRunner.UnitTests "${args[@]}" 2>&1)
  status=$?
  summary=$(printf '%s\n' "$output" | sed 's/\x1b\[[0-9;]*m//g' | grep -o 'Total: [0-9]*, Errors: [0-9]*, Failed: [0-9]*, Skipped: [0-9]*' | tail -n 1)
  if [ $status -ne 0 ] || [ -z "$summary" ]; then
    printf '%s\n' "$output" | tail -30
    echo "$cpu: runner failed (exit $status)"
    failed=$((failed + 1))
    continue
  fi
  total=$(printf '%s' "$summary" | sed 's/Total: \([0-9]*\).*/\1/')
  bad=$(printf '%s' "$summary" | sed 's/.*Errors: \([0-9]*\), Failed: \([0-9]*\), Skipped: \([0-9]*\)/\1 \2 \3/' | awk '{print $1+$2+$3}')
  echo "$cpu (qemu): $summary"
  passed=$((passed + total - bad))
  failed=$((failed + bad))
done
echo "arm64 summary: passed=$passed failed=$failed"
[ $failed -eq 0 ]
