#!/usr/bin/env bash
# Runs every EdgeRunner test project and ends with: tests: N passed, N failed, N skipped
# Installs the Debian packages the tests need (real mosquitto broker, ffmpeg) when missing.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
configuration=${CONFIGURATION:-Release}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
# OnnxRuntimeLibraryTests compile stand-in native libraries (an old ONNX Runtime, one with a missing dependency).
[ -x /usr/bin/gcc ] || missing+=(gcc libc6-dev)
# SystemdUnitTests: systemd-analyze verify / security --offline on the unit files.
[ -x /usr/bin/systemd-analyze ] || missing+=(systemd)
# RTSP capture tests: a real RTSP server (gst-rtsp-server through python3-gi) serving videotestsrc as MJPEG/RTP.
[ -x /usr/bin/python3 ] || missing+=(python3)
/usr/bin/python3 -c 'import gi' >/dev/null 2>&1 || missing+=(python3-gi)
ls /usr/lib/*/girepository-1.0/GstRtspServer-1.0.typelib >/dev/null 2>&1 || missing+=(gir1.2-gst-rtsp-server-1.0)
ls /usr/lib/*/gstreamer-1.0/libgstvideotestsrc.so >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-base)
ls /usr/lib/*/gstreamer-1.0/libgstrtp.so /usr/lib/*/gstreamer-1.0/libgstjpeg.so >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-good)
# Packaging checks after the tests: packaging/build.sh (dpkg-buildpackage, debhelper, lintian, file),
# packaging/install-test.sh (debootstrap), packaging/arm64-check.sh by hand and tests/arm64 (qemu-user-static and the arm64 cross
# libraries; tests/arm64/sysroot.sh adds arm64 libssl3 itself).
command -v dpkg-buildpackage >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v dh >/dev/null 2>&1 || missing+=(debhelper)
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
command -v file >/dev/null 2>&1 || missing+=(file)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing+=(libc6-arm64-cross)
[ -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || missing+=(libstdc++6-arm64-cross libgcc-s1-arm64-cross)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The distribution starts a mosquitto on 1883 after install; the tests start their own on free ports.

dotnet restore EdgeRunner.sln || { echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
dotnet build EdgeRunner.sln -c "$configuration" --no-restore || { echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }

results="$root/TestResults"
rm -rf "$results"

# Strict: a missing tool or reference file fails instead of skipping (tests/Shared/Requirement.cs).
export EDGERUNNER_TESTS_STRICT=1
# Every test process and everything they start (daemons, mosquitto, ffmpeg) writes its temporary files
# under one folder, so what a test leaves behind can be found and named below. 0755: mosquitto, started
# as root, drops to its own user and must reach its folder inside.
test_tmp=$(mktemp -d "${TMPDIR:-/tmp}/edgerunner-run-XXXXXX")
chmod 0755 "$test_tmp"
TMPDIR="$test_tmp" dotnet test --solution EdgeRunner.sln -c "$configuration" --no-build \
  --report-trx --results-directory "$results" --timeout 20m
status=$?

passed=0 failed=0 skipped=0
shopt -s nullglob
trx_files=("$results"/*.trx)
for trx in "${trx_files[@]}"; do
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  get() { printf '%s' "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  skipped=$((skipped + $(get notExecuted)))
done
if [ ${#trx_files[@]} -eq 0 ] && [ $status -ne 0 ]; then failed=1; fi
[ $status -ne 0 ] && [ $failed -eq 0 ] && failed=1

# Skipped tests, by name. Only those on the allow-list (tests/skip-allowlist.txt: GPU-only paths,
# hardware absent here) may skip; any other skip fails the run.
allowlist="$root/tests/skip-allowlist.txt"
unexpected=0
if [ ${#trx_files[@]} -gt 0 ]; then
  while IFS= read -r name; do
    [ -n "$name" ] || continue
    if grep -v '^#' "$allowlist" 2>/dev/null | cut -d' ' -f1 | grep -qxF "$name"; then
      echo "skipped (allowed): $name"
    else
      echo "skipped (NOT on tests/skip-allowlist.txt): $name"
      unexpected=$((unexpected + 1))
    fi
  done < <(grep -ho '<UnitTestResult [^>]*outcome="NotExecuted"[^>]*>' "${trx_files[@]}" | grep -o 'testName="[^"]*"' | sed 's/^testName="//; s/"$//' | sed 's/(.*$//' | sort -u)
fi
if [ $unexpected -gt 0 ]; then
  echo "error: $unexpected test(s) skipped that are not on the allow-list"
  failed=$((failed + unexpected))
  status=1
fi

# Nothing left behind: no process started by the tests still alive, no file left in the temp folder.
leftover_pids=()
for environ in /proc/[0-9]*/environ; do
  pid=${environ#/proc/}; pid=${pid%/environ}
  [ "$pid" = "$$" ] && continue
  if { tr '\0' '\n' < "$environ"; } 2>/dev/null | grep -qxF "TMPDIR=$test_tmp"; then
    leftover_pids+=("$pid")
  fi
done
if [ ${#leftover_pids[@]} -gt 0 ]; then
  echo "error: processes started by the tests are still running:"
  for pid in "${leftover_pids[@]}"; do
    printf '  %s %s\n' "$pid" "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"
    kill -9 "$pid" 2>/dev/null
  done
  failed=$((failed + 1))
  status=1
fi
# Not the tests': .ses is the test platform's session file; the others are the runtime's own.
leftover_files=$(cd "$test_tmp" && find . -mindepth 1 -maxdepth 1 ! -name '.dotnet' ! -name '.ses' ! -name 'dotnet-diagnostic-*' ! -name 'clr-debug-pipe-*' ! -name 'system-commandline-sentinel-files' ! -name '.NETCoreApp*' ! -name 'MSBuildTemp*' | sort)
if [ -n "$leftover_files" ]; then
  echo "error: the tests left files in the temporary folder:"
  printf '  %s\n' $leftover_files
  failed=$((failed + 1))
  status=1
fi
rm -rf "$test_tmp"

# ARM: the unit tests that hold each vector path to the scalar reference, as arm64 code under user-mode
# qemu on an emulated Pi 4 (Cortex-A72) and Pi 5 (Cortex-A76). EDGERUNNER_SKIP_ARM64=1 leaves it out
# of a quick local run; CI always runs it.
if [ "${EDGERUNNER_SKIP_ARM64:-0}" = 1 ] && [ "${CI:-}" != true ]; then
  echo "arm64 tests left out (EDGERUNNER_SKIP_ARM64=1)"
else
  arm64_output=$(tests/arm64/run-simd-tests.sh 2>&1)
  arm64_status=$?
  printf '%s\n' "$arm64_output"
  arm64_line=$(printf '%s\n' "$arm64_output" | grep -E '^arm64 summary: passed=[0-9]+ failed=[0-9]+$' | tail -n 1)
  if [ -n "$arm64_line" ]; then
    passed=$((passed + $(printf '%s' "$arm64_line" | sed 's/.*passed=\([0-9]*\) .*/\1/')))
    failed=$((failed + $(printf '%s' "$arm64_line" | sed 's/.*failed=\([0-9]*\)$/\1/')))
  else
    failed=$((failed + 1))
  fi
  [ $arm64_status -ne 0 ] && status=1
fi

# Soak (issue 15): the demo configuration (embedded broker) for EDGERUNNER_SOAK_SECONDS (600) under
# `edgerunner bench-pipeline --soak`, its report checked by tests/soak/check-soak.sh (memory flat over the
# second half, no MQTT message dropped, the configured rates, no gen-2 GC storm; the checker's self-test on a
# recorded report and doctored copies first), counted as one test. About 10 minutes.
# EDGERUNNER_SKIP_SOAK=1 leaves it out of a quick local run; CI always runs it.
if [ "${EDGERUNNER_SKIP_SOAK:-0}" = 1 ] && [ "${CI:-}" != true ]; then
  echo "soak left out (EDGERUNNER_SKIP_SOAK=1)"
else
  echo "== soak"
  soak_start=$(date +%s)
  if tests/soak/check-soak.sh --self-test && CONFIGURATION="$configuration" tests/soak/check-soak.sh; then
    echo "soak: passed in $(( $(date +%s) - soak_start )) s"
    passed=$((passed + 1))
  else
    echo "soak: FAILED after $(( $(date +%s) - soak_start )) s"
    failed=$((failed + 1))
    status=1
  fi
fi

# Packaging: the field-deployment checks, each counted as one test (pass or fail by its exit code):
# build both packages (packaging/build.sh, lintian included), install the amd64 one in a Debian 12
# chroot (packaging/install-test.sh: maintainer scripts, user, check-config, a run that publishes,
# remove, purge). Their temporary folders go under one folder,
# removed at the end; the Debian base root is cached in packaging/dist/.debroot (ignored by git).
# EDGERUNNER_SKIP_PACKAGING=1 leaves them out of a quick local run; CI always runs them.
if [ "${EDGERUNNER_SKIP_PACKAGING:-0}" = 1 ] && [ "${CI:-}" != true ]; then
  echo "packaging checks left out (EDGERUNNER_SKIP_PACKAGING=1)"
else
  packaging_tmp=$(mktemp -d "${TMPDIR:-/tmp}/edgerunner-packaging-XXXXXX")
  chmod 0755 "$packaging_tmp"
  packaging_failed=()
  packaging_check() {
    local name=$1 start code=0
    shift
    start=$(date +%s)
    echo "== $name"
    TMPDIR="$packaging_tmp" "$@" >"$packaging_tmp/$name.log" 2>&1 || code=$?
    if [ $code -eq 0 ]; then
      tail -n 40 "$packaging_tmp/$name.log"
      echo "$name: passed in $(( $(date +%s) - start )) s"
      passed=$((passed + 1))
    else
      cat "$packaging_tmp/$name.log"
      echo "$name: FAILED (exit $code) after $(( $(date +%s) - start )) s"
      packaging_failed+=("$name")
      failed=$((failed + 1))
      status=1
    fi
    rm -f "$packaging_tmp/$name.log"
  }
  packaging_check build packaging/build.sh amd64 arm64
  if [ ${#packaging_failed[@]} -eq 0 ]; then
    # Root: dpkg, mount and chroot in the throwaway root.
    packaging_check install-test as_root env TMPDIR="$packaging_tmp" packaging/install-test.sh
    # The arm64 package under user-mode qemu as a Pi 4 (Cortex-A72) and a Pi 5 (Cortex-A76): check-config and
    # evaluate, figures compared with the amd64 package's (docs/deployment.md, "arm64 under qemu"). The shorter
    # evaluation (200 frames, 300 simulated seconds) keeps it to a few minutes of emulation per CPU.
    packaging_check arm64-check env EVALUATE_ARGS="--frames 200 --seconds 300" packaging/arm64-check.sh cortex-a72 cortex-a76
  else
    echo "install-test: FAILED (no package to check)"
    packaging_failed+=(install-test)
    failed=$((failed + 1))
  fi
  if [ ${#packaging_failed[@]} -gt 0 ]; then
    echo "packaging checks failed: ${packaging_failed[*]}"
  fi
  leftover_packaging=$(find "$packaging_tmp" -mindepth 1 -maxdepth 1 ! -name '.dotnet' ! -name 'dotnet-diagnostic-*' ! -name 'clr-debug-pipe-*' ! -name 'system-commandline-sentinel-files' ! -name '.NETCoreApp*' ! -name 'MSBuildTemp*' ! -name 'NuGetScratch*' | sort)
  if [ -n "$leftover_packaging" ]; then
    echo "error: the packaging checks left files in the temporary folder:"
    printf '  %s\n' $leftover_packaging
    failed=$((failed + 1))
    status=1
  fi
  rm -rf "$packaging_tmp"
fi

echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
