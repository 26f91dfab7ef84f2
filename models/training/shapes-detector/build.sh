#!/usr/bin/env bash
# Builds the bundled demo detector (models/bundled/shapes-detector) from a clean checkout:
# daemon build -> `edgerunner dump vision` data -> training (fixed seeds, 1 thread) -> FP32 ONNX export
# -> INT8 QDQ quantization -> ONNX Runtime (C#) evaluation, latency and fusion check -> model.json.
#
#   models/training/shapes-detector/build.sh
#
# Environment: WORK (scratch, default /tmp/shapes-detector), ART (dotnet artifacts, default /tmp/det-art),
# PYTHON (default /usr/bin/python3; needs torch 1.13, onnx 1.12, numpy, pillow), EPOCHS (default 10),
# DEST (default models/bundled/shapes-detector), REUSE_DATA=1 keeps already dumped frames in $WORK; SKIP_TRAIN=1 (with REUSE_DATA=1) reuses $WORK/run/model.pt.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
WORK="${WORK:-/tmp/shapes-detector}"
ART="${ART:-/tmp/det-art}"
PYTHON="${PYTHON:-/usr/bin/python3}"
EPOCHS="${EPOCHS:-10}"
SEED=1234
TRAIN_FRAMES=4000; TRAIN_SEED=1000
CALIB_FRAMES=300;  CALIB_SEED=500000
EVAL_FRAMES=500;   EVAL_SEED=900000
SCENE_ARGS="--frames-per-scene 5 --stride 7"
DEST="${DEST:-$REPO/models/bundled/shapes-detector}"

export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
mkdir -p "$WORK/run"
cd "$REPO"

echo "== build daemon"
dotnet build service/EdgeRunner.Service --artifacts-path "$ART" -v q -nologo
ER="$ART/bin/EdgeRunner.Service/debug_linux-x64/edgerunner.dll"

echo "== dump synthetic frames (train / calibration / held-out eval: disjoint scene seeds)"
dump() { # dir frames seed
  if [[ "${REUSE_DATA:-0}" == 1 && -f "$WORK/$1/labels.jsonl" ]]; then return; fi
  rm -rf "${WORK:?}/$1"
  dotnet "$ER" dump vision --out "$WORK/$1" --frames "$2" --seed "$3" $SCENE_ARGS
}
dump train $TRAIN_FRAMES $TRAIN_SEED
dump calib $CALIB_FRAMES $CALIB_SEED
dump eval $EVAL_FRAMES $EVAL_SEED
[[ "${REUSE_DATA:-0}" == 1 ]] || rm -f "$WORK/run/train_u8.npy"

cd "$HERE"
if [[ "${SKIP_TRAIN:-0}" == 1 && -f "$WORK/run/model.pt" ]]; then
  echo "== train: SKIP_TRAIN=1, reusing $WORK/run/model.pt"
else
  echo "== train"
  "$PYTHON" train.py --train "$WORK/train" --work "$WORK/run" --epochs "$EPOCHS" --seed $SEED --threads 1
fi
echo "== export FP32"
"$PYTHON" export.py --work "$WORK/run" --out "$WORK/run/model.fp32.onnx"
echo "== quantize INT8 QDQ"
"$PYTHON" quantize.py --work "$WORK/run" --fp32 "$WORK/run/model.fp32.onnx" --calib "$WORK/calib" \
  --frames $CALIB_FRAMES --out "$WORK/run/model.onnx"

echo "== ONNX Runtime harness (C#, built under $WORK)"
rm -rf "$WORK/harness"; mkdir -p "$WORK/harness"
cp "$HERE/harness/Program.cs" "$WORK/harness/"
cat > "$WORK/harness/Harness.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <RuntimeIdentifier>linux-x64</RuntimeIdentifier>
    <SelfContained>false</SelfContained>
    <AssemblyName>det-harness</AssemblyName>
    <NoWarn>CA1416</NoWarn>
  </PropertyGroup>
  <ItemGroup>
    <ProjectReference Include="$REPO/models/EdgeRunner.Models/EdgeRunner.Models.csproj" />
    <ProjectReference Include="$REPO/hardware/EdgeRunner.Hardware/EdgeRunner.Hardware.csproj" />
  </ItemGroup>
</Project>
EOF
dotnet build "$WORK/harness/Harness.csproj" --artifacts-path "$ART" -v q -nologo
H="$ART/bin/Harness/debug_linux-x64/det-harness.dll"

W="$WORK/run"
dotnet "$H" eval "$W/model.fp32.onnx" "$WORK/eval" "$W/ort_fp32.bin"
dotnet "$H" eval "$W/model.onnx" "$WORK/eval" "$W/ort_int8.bin"
dotnet "$H" optimize "$W/model.onnx" "$W/model.int8.optimized.onnx"
: > "$W/bench.jsonl"
for threads in 1 2; do
  for model in model.fp32.onnx model.onnx; do
    dotnet "$H" bench "$W/$model" "$WORK/eval" $threads 300 | tee -a "$W/bench.jsonl"
  done
done

echo "== evaluate (mAP@0.5 on $EVAL_FRAMES held-out frames)"
"$PYTHON" evaluate.py --work "$W" --eval "$WORK/eval" --ort-fp32 "$W/ort_fp32.bin" --ort-int8 "$W/ort_int8.bin" --out "$W/figures.json"

echo "== write $DEST"
"$PYTHON" finalize.py --work "$W" --dest "$DEST" --figures "$W/figures.json" --bench "$W/bench.jsonl" \
  --optimized "$W/model.int8.optimized.onnx" --calib-frames $CALIB_FRAMES --seed $SEED \
  --data "edgerunner dump vision --frames $TRAIN_FRAMES --seed $TRAIN_SEED $SCENE_ARGS (calibration: --frames $CALIB_FRAMES --seed $CALIB_SEED; eval: --frames $EVAL_FRAMES --seed $EVAL_SEED)"
