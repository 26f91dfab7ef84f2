"""Static INT8 QDQ quantization of the exported FP32 model, written with the onnx helper API.

Usage: quantize.py --work DIR --fp32 model.fp32.onnx --calib DUMP_DIR --out model.onnx [--frames 300]

* weights: int8, per output channel (DequantizeLinear axis=0), symmetric ([-127,127], zero point 0)
* biases: int32 with scale = input_scale * weight_scale[c] (DequantizeLinear axis=0)
* activations: uint8 per tensor; the input uses scale 1/255 (the pixel grid), post-ReLU tensors use
  [0, max] with zero point 0, the head's final 1x1 conv outputs (box log-distances, class logits)
  use asymmetric [min, max]; min/max collected with forward hooks on the BN-folded PyTorch network
  over the calibration frames. Q->DQ pairs follow every ReLU so ONNX Runtime can fuse
  DQ -> Conv -> Relu -> Q into QLinearConv. The decode (exp, anchors, sigmoid) stays float.
"""
import argparse
import json

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from common import ConvBnRelu, load_set


def calibrate(folded, images, batch=10):
    """Per-module output (min, max) over the calibration frames."""
    ranges = {}

    def hook(name):
        def f(_m, _i, out):
            lo, hi = float(out.min()), float(out.max())
            a = ranges.get(name, (np.inf, -np.inf))
            ranges[name] = (min(a[0], lo), max(a[1], hi))
        return f

    handles = []
    for name, m in folded.named_modules():
        if isinstance(m, ConvBnRelu) or name.endswith(".box") or name.endswith(".cls"):
            handles.append(m.register_forward_hook(hook(name)))
    folded.static_batch = None
    with torch.no_grad():
        for i in range(0, len(images), batch):
            folded(torch.from_numpy(np.asarray(images[i:i + batch], dtype=np.float32) / 255.0))
    for h in handles:
        h.remove()
    return ranges


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--calib", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--frames", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)

    folded = torch.load(f"{args.work}/folded.pt")
    folded.eval()
    images, _ = load_set(args.calib, as_uint8=False)
    images = images[:args.frames] / 1.0  # float pixel units, exactly the daemon's letterbox
    ranges = calibrate(folded, images)
    n_calib = len(images)

    m = onnx.load(args.fp32)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    # Identity nodes that alias a deduplicated initializer: resolve to the initializer itself.
    alias = {}
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            alias[n.output[0]] = n.input[0]

    def init_value(name):
        return inits[alias.get(name, name)]

    new_inits = [i for i in g.initializer if i.name in ("pts", "strides")]
    new_nodes = []
    act = {}       # float tensor name -> (dq output name, scale)
    qparams = {}   # for the report

    def add_qdq(tensor, scale, zp, tag):
        s_name, z_name = f"{tensor}_scale", f"{tensor}_zero_point"
        new_inits.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), s_name))
        new_inits.append(numpy_helper.from_array(np.array(zp, dtype=np.uint8), z_name))
        q, dq = f"{tensor}_quantized", f"{tensor}_dequantized"
        new_nodes.append(helper.make_node("QuantizeLinear", [tensor, s_name, z_name], [q], name=f"{tensor}_QuantizeLinear"))
        new_nodes.append(helper.make_node("DequantizeLinear", [q, s_name, z_name], [dq], name=f"{tensor}_DequantizeLinear"))
        act[tensor] = (dq, float(scale))
        qparams[tag] = {"tensor": tensor, "scale": float(scale), "zero_point": int(zp)}

    add_qdq("images", 1.0 / 255.0, 0, "images")

    for n in g.node:
        if n.op_type == "Identity" and n.output[0] in alias:
            continue
        if n.op_type == "Constant" or n.op_type not in ("Conv",):
            inputs = [act[i][0] if i in act else i for i in n.input]
            new_nodes.append(helper.make_node(n.op_type, inputs, list(n.output), name=n.name, **{a.name: helper.get_attribute_value(a) for a in n.attribute}))
            if n.op_type == "Relu":
                module = producers[n.input[0]].input[1].replace("net.", "", 1).rsplit(".0.weight", 1)[0]
                lo, hi = ranges[module]
                add_qdq(n.output[0], max(hi, 1e-6) / 255.0, 0, module)
            continue

        # Conv: int8 per-channel weights, int32 bias, input from a DQ.
        x, w_name, b_name = n.input[0], n.input[1], n.input[2]
        dq_in, s_in = act[x]
        w = init_value(w_name).astype(np.float64)
        b = init_value(b_name).astype(np.float64)
        s_w = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(1), 1e-12) / 127.0
        # int32 bias must hold b / (s_in * s_w): widen the weight scale of a channel where it would overflow
        s_w = np.maximum(s_w, np.abs(b) / (s_in * (2**31 - 1)) * 1.01)
        wq = np.clip(np.rint(w / s_w[:, None, None, None]), -127, 127).astype(np.int8)
        s_b = s_in * s_w
        bq = np.clip(np.rint(b / s_b), -2**31, 2**31 - 1).astype(np.int32)
        base = w_name.replace(".weight", "")
        for arr, nm in ((wq, f"{base}.weight_quantized"), (s_w.astype(np.float32), f"{base}.weight_scale"),
                        (np.zeros(w.shape[0], np.int8), f"{base}.weight_zero_point"),
                        (bq, f"{base}.bias_quantized"), (s_b.astype(np.float32), f"{base}.bias_scale"),
                        (np.zeros(w.shape[0], np.int32), f"{base}.bias_zero_point")):
            new_inits.append(numpy_helper.from_array(arr, nm))
        new_nodes.append(helper.make_node("DequantizeLinear", [f"{base}.weight_quantized", f"{base}.weight_scale", f"{base}.weight_zero_point"],
                                          [f"{base}.weight_dequantized"], name=f"{base}.weight_DequantizeLinear", axis=0))
        new_nodes.append(helper.make_node("DequantizeLinear", [f"{base}.bias_quantized", f"{base}.bias_scale", f"{base}.bias_zero_point"],
                                          [f"{base}.bias_dequantized"], name=f"{base}.bias_DequantizeLinear", axis=0))
        new_nodes.append(helper.make_node("Conv", [dq_in, f"{base}.weight_dequantized", f"{base}.bias_dequantized"], list(n.output),
                                          name=n.name, **{a.name: helper.get_attribute_value(a) for a in n.attribute}))
        is_relu = any(c.op_type == "Relu" for c in consumers.get(n.output[0], []))
        if not is_relu:
            # head output conv (box log-distances / class logits): asymmetric uint8
            module = base.replace("net.", "", 1)
            lo, hi = ranges[module]
            lo, hi = min(lo, 0.0), max(hi, 0.0)
            scale = max(hi - lo, 1e-6) / 255.0
            zp = int(np.clip(np.rint(-lo / scale), 0, 255))
            add_qdq(n.output[0], scale, zp, module)

    graph = helper.make_graph(new_nodes, g.name, list(g.input), list(g.output), new_inits)
    qm = helper.make_model(graph, opset_imports=list(m.opset_import), producer_name="edgerunner-shapes-detector",
                           doc_string="EdgeRunner shapes-detector INT8 QDQ (models/training/shapes-detector/quantize.py)")
    qm.ir_version = m.ir_version
    onnx.checker.check_model(qm)
    onnx.save(qm, args.out)
    ops = {}
    for n in qm.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    print("int8 qdq ops", ops)
    with open(f"{args.work}/quant_params.json", "w") as f:
        json.dump({"calibration_frames": n_calib, "activations": qparams}, f, indent=1)


if __name__ == "__main__":
    main()
