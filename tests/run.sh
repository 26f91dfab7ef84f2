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
# RTSP capture tests: a real RTSP server (gst-rtsp-server through python3-gi) serving videotestsrc as MJPEG/RTP.
[ -x /usr/bin/python3 ] || missing+=(python3)
/usr/bin/python3 -c 'import gi' >/dev/null 2>&1 || missing+=(python3-gi)
ls /usr/lib/*/girepository-1.0/GstRtspServer-1.0.typelib >/dev/null 2>&1 || missing+=(gir1.2-gst-rtsp-server-1.0)
ls /usr/lib/*/gstreamer-1.0/libgstvideotestsrc.so >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-base)
ls /usr/lib/*/gstreamer-1.0/libgstrtp.so /usr/lib/*/gstreamer-1.0/libgstjpeg.so >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-good)
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
dotnet test --solution EdgeRunner.sln -c "$configuration" --no-build \
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
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
