"""Folds BatchNorm and exports the FP32 ONNX model (opset 13) with the YOLOv8 output layout.

Usage: export.py --work DIR --out model.fp32.onnx
Also writes WORK/folded.pt (the folded network, used for calibration) and checks that the
folded network matches the unfolded one.
"""
import argparse

import onnx
import torch

from common import INPUT, Export, ShapesDetector, fold_bn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)

    net = ShapesDetector()
    net.load_state_dict(torch.load(f"{args.work}/model.pt"))
    net.eval()
    folded = fold_bn(net)
    x = torch.rand(2, 3, INPUT, INPUT)
    with torch.no_grad():
        a, b = Export(net)(x), Export(folded)(x)
    print("fold max abs diff", float((a - b).abs().max()))
    torch.save(folded, f"{args.work}/folded.pt")

    folded.static_batch = 1
    model = Export(folded).eval()
    torch.onnx.export(
        model, torch.zeros(1, 3, INPUT, INPUT), args.out,
        input_names=["images"], output_names=["output0"], opset_version=13,
        do_constant_folding=True, export_params=True)
    m = onnx.load(args.out)
    m.doc_string = "EdgeRunner shapes-detector FP32 (models/training/shapes-detector)"
    m.producer_name = "edgerunner-shapes-detector"
    onnx.checker.check_model(m)
    onnx.save(m, args.out)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    print("fp32 ops", ops)


if __name__ == "__main__":
    main()
