"""Writes models/bundled/shapes-detector/{model.onnx, model.fp32.onnx, labels.txt, model.json}.

Usage: finalize.py --work DIR --dest DIR --figures figures.json --bench bench.jsonl --optimized int8.optimized.onnx
        --train-frames N --train-seed S --calib-frames N --seed SEED
"""
import argparse
import collections
import hashlib
import json
import os
import shutil

import onnx

from common import LABELS


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--dest", required=True)
    ap.add_argument("--figures", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--optimized", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--calib-frames", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    args = ap.parse_args()

    os.makedirs(args.dest, exist_ok=True)
    shutil.copyfile(f"{args.work}/model.onnx", f"{args.dest}/model.onnx")
    shutil.copyfile(f"{args.work}/model.fp32.onnx", f"{args.dest}/model.fp32.onnx")
    with open(f"{args.dest}/labels.txt", "w") as f:
        f.write("\n".join(LABELS) + "\n")

    figs = json.load(open(args.figures))
    bench = [json.loads(line) for line in open(args.bench) if line.strip().startswith("{")]
    lat = {}
    for b in bench:
        kind = "int8" if b["model"] == "model.onnx" else "fp32"
        lat[f"latency_ms_{kind}_{b['threads']}t"] = b["median_ms"]
    opt = onnx.load(args.optimized)
    ops = collections.Counter(n.op_type for n in opt.graph.node)
    fp32_convs = sum(1 for n in onnx.load(f"{args.work}/model.fp32.onnx").graph.node if n.op_type == "Conv")
    train_log = json.load(open(f"{args.work}/train_log.json"))

    manifest = {
        "schema": 1,
        "id": "shapes-detector",
        "file": "model.onnx",
        "sha256": sha256(f"{args.dest}/model.onnx"),
        "task": "detection",
        "inputs": [{"name": "images", "dtype": "float32", "shape": [1, 3, 320, 320]}],
        "outputs": [{"name": "output0", "dtype": "float32", "shape": [1, 7, 2100]}],
        "labels": LABELS,
        "preprocess": {
            "width": 320, "height": 320,
            "resize": "letterbox",
            "resize_shorter_side": 0,
            "pad_value": 114,
            "color_order": "rgb",
            "layout": "nchw",
            "scale": 1.0 / 255.0,
            "mean": [0, 0, 0],
            "std": [1, 1, 1],
        },
        "postprocess": {"kind": "yolov8", "score_threshold": 0.25, "iou_threshold": 0.45, "max_detections": 100},
        "quantization": {
            "format": "qdq",
            "weights": "int8, per output channel, symmetric",
            "activations": f"uint8, per tensor, asymmetric, min/max calibrated on {args.calib_frames} frames",
            "float_model": "model.fp32.onnx",
            "float_sha256": sha256(f"{args.dest}/model.fp32.onnx"),
        },
        "provenance": {
            "script": "models/training/shapes-detector/build.sh",
            "seed": args.seed,
            "data": args.data,
            "figures": {
                "map50_fp32": figs["ort_fp32"]["map50"],
                "map50_int8": figs["ort_int8"]["map50"],
                "map50_fp32_pytorch": figs["torch_fp32"]["map50"],
                "eval_frames": figs["eval_frames"],
                **lat,
                "ort_qlinearconv": ops.get("QLinearConv", 0),
                "ort_float_conv": ops.get("Conv", 0),
                "fp32_conv": fp32_convs,
                "train_minutes": round(train_log["train_seconds"] / 60, 1),
                "size_bytes_int8": os.path.getsize(f"{args.dest}/model.onnx"),
                "size_bytes_fp32": os.path.getsize(f"{args.dest}/model.fp32.onnx"),
            },
        },
    }
    with open(f"{args.dest}/model.json", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps(manifest, indent=2))
    print("optimized int8 graph ops:", dict(ops))


if __name__ == "__main__":
    main()
