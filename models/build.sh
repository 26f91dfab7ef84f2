#!/usr/bin/env bash
# Rebuilds every bundled demo model from scratch, deterministically (fixed seeds, fixed threads):
# builds the daemon, dumps training data from its own simulators, trains, exports, quantizes,
# evaluates and rewrites models/bundled/*/ (model files, manifests with SHA-256 and figures).
# Needs Debian's python3-torch and python3-onnx (installed if missing). Takes tens of minutes on a
# small CPU; CI never runs it: the resulting .onnx files are committed.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! /usr/bin/python3 -c 'import torch, onnx, numpy, PIL' 2>/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-onnx python3-numpy python3-pil
fi

models/training/vibration-lstm/build.sh
models/training/shapes-detector/build.sh
