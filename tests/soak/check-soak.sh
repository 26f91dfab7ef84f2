#!/usr/bin/env bash
# Soak check (issue 15): runs the demo configuration (the built daemon's appsettings.json: a synthetic 640x480
# camera at 5 fps on shapes-detector, two simulated machines on vibration-lstm, the embedded broker) under
# `edgerunner bench-pipeline --soak --no-bare --json` and checks its report: memory flat over the second half
# (managed heap after collections, and RSS beyond what the heap explains), no MQTT message dropped, results at
# the configured rates, no gen-2 GC storm. Prints one line per check and ends with "soak: passed" or
# "soak: FAILED"; exit 0 when every check passes. tests/run.sh counts it as one test; docs/performance.md
# ("Soak in CI") says why each bound is what it is.
#
# Usage: tests/soak/check-soak.sh [--seconds N] [--sample-seconds S] [--keep FILE]
#        tests/soak/check-soak.sh --json FILE          (check a report made before, run nothing)
#        tests/soak/check-soak.sh --self-test          (the checker against a recorded report and doctored ones)
#   --fps F / --steps S: the expected inferred frames/s (5) and sensor steps/s (8) of the configuration.
# Environment: CONFIGURATION (Release) picks the build; EDGERUNNER_SOAK_SECONDS sets the default length (600).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
configuration=${CONFIGURATION:-Release}
seconds=${EDGERUNNER_SOAK_SECONDS:-600}
sample_seconds=10
fps=5
steps=8
json=
keep=
self_test=0
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --sample-seconds) sample_seconds=$2; shift 2 ;;
    --fps) fps=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --self-test) self_test=1; shift ;;
    *) echo "check-soak.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done

# The system interpreter: the `python3` first on PATH may be another one (a virtual environment, pyenv).
python=/usr/bin/python3
checker="$root/tests/soak/check_soak.py"

if [ $self_test = 1 ]; then
  exec "$python" "$checker" --self-test "$root/tests/soak/fixtures/demo-soak-600s.json"
fi

if [ -n "$json" ]; then
  exec "$python" "$checker" --fps "$fps" --steps "$steps" "$json"
fi

dll="$root/service/EdgeRunner.Service/bin/$configuration/net10.0/linux-x64/edgerunner.dll"
[ -f "$dll" ] || { echo "soak: FAILED (no $dll: build the solution first)"; exit 1; }
# Its own working folder: the demo's state and spool (State:Directory "state") go there and are removed after.
work=$(mktemp -d "${TMPDIR:-/tmp}/edgerunner-soak-XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "soak: bench-pipeline --soak --seconds $seconds --sample-seconds $sample_seconds on the demo configuration (load average $(cut -d' ' -f1-3 /proc/loadavg))"
start=$(date +%s)
(cd "$work" && dotnet "$dll" bench-pipeline --soak --seconds "$seconds" --sample-seconds "$sample_seconds" --no-bare --json >"$work/soak.json" 2>"$work/soak.err")
code=$?
echo "soak: ran $(( $(date +%s) - start )) s, exit $code (load average $(cut -d' ' -f1-3 /proc/loadavg))"
if [ $code -ne 0 ]; then
  tail -n 40 "$work/soak.err"
  echo "soak: FAILED (bench-pipeline exit $code)"
  exit 1
fi
[ -n "$keep" ] && cp "$work/soak.json" "$keep"
"$python" "$checker" --fps "$fps" --steps "$steps" --seconds "$seconds" "$work/soak.json"
