#!/usr/bin/env bash
# Builds the bundled vibration-fault LSTM (models/bundled/vibration-lstm) from scratch, in one command:
#   models/training/vibration-lstm/build.sh
# 1. builds the daemon, 2. dumps simulator data with `edgerunner dump vibration` (train / val / test seeds
# disjoint), 3. trains (PyTorch, 1 thread, seeded), exports ONNX, checks step-by-step == whole-sequence,
# evaluates on the held-out streams and writes model.onnx, labels.txt, model.json and figures.json,
# 4. checks the exported model through ONNX Runtime (C#): vs PyTorch and step-by-step vs whole.
# Environment: ARTIFACTS (dotnet --artifacts-path, default /tmp/vib-art), WORK (scratch, default
# /tmp/vibration-lstm-build), EPOCHS (default 60), PYTHON (default /usr/bin/python3, needs torch 1.13 + onnx).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
ARTIFACTS="${ARTIFACTS:-/tmp/vib-art}"
WORK="${WORK:-/tmp/vibration-lstm-build}"
EPOCHS="${EPOCHS:-60}"
PYTHON="${PYTHON:-/usr/bin/python3}"
BUNDLE="$ROOT/models/bundled/vibration-lstm"

echo "== 1/4 build the daemon"
dotnet build "$ROOT/service/EdgeRunner.Service" --artifacts-path "$ARTIFACTS" -v quiet -nologo
DLL="$(ls "$ARTIFACTS"/bin/EdgeRunner.Service/*/edgerunner.dll | head -n 1)"

echo "== 2/4 dump simulator data into $WORK/data"
rm -rf "$WORK/data"
dotnet "$DLL" dump vibration --out "$WORK/data/train" --seconds 600 --streams 32 --seed 1000
dotnet "$DLL" dump vibration --out "$WORK/data/val" --seconds 600 --streams 4 --seed 3000
dotnet "$DLL" dump vibration --out "$WORK/data/test" --seconds 900 --streams 8 --seed 9000
DATA_COMMAND="edgerunner dump vibration --seconds 600 --streams 32 --seed 1000 (train); --seconds 600 --streams 4 --seed 3000 (validation, model selection); --seconds 900 --streams 8 --seed 9000 (held-out test)"

echo "== 3/4 train, export, evaluate ($EPOCHS epochs)"
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0 "$PYTHON" "$HERE/train.py" \
  --data "$WORK/data" --out "$BUNDLE" --report "$HERE/figures.json" --ref-dir "$WORK/ort-reference" \
  --epochs "$EPOCHS" --data-command "$DATA_COMMAND" 2>&1 | grep -v -e "UserWarning" -e "warnings.warn" -e "_C._jit_pass" | tee "$WORK/train.log"

echo "== 4/4 ONNX Runtime check"
# Copied outside the repo so the file-based app does not pick up the repo's Directory.Build.props.
cp "$HERE/ort_check.cs" "$WORK/ort_check.cs"
(cd "$WORK" && dotnet run ort_check.cs --artifacts-path "$WORK/ort-check-art" -- "$BUNDLE/model.onnx" "$WORK/ort-reference") | tee "$WORK/ort_check.log"
echo "done: $BUNDLE ($(stat -c %s "$BUNDLE/model.onnx") bytes); figures in $HERE/figures.json"
