"""mAP@0.5 on the held-out dump: PyTorch FP32 (folded network) and the raw ONNX Runtime outputs
written by the C# harness (`det-harness eval`) for model.fp32.onnx and model.onnx (INT8 QDQ).

Usage: evaluate.py --work DIR --eval DUMP_DIR --ort-fp32 fp32.bin --ort-int8 int8.bin --out figures.json
"""
import argparse
import json

import numpy as np
import torch

from common import LABELS, Export, load_set, map50, postprocess


def ap_report(outputs, recs):
    dets = [postprocess(o, score_threshold=0.001, iou=0.5) for o in outputs]
    m, aps = map50(dets, recs)
    # operating point the manifest ships (score 0.25): precision / recall at IoU 0.5
    tp = fp = 0
    npos = sum(len(r["boxes"]) for r in recs)
    from common import iou_one
    for o, r in zip(outputs, recs):
        d = postprocess(o, score_threshold=0.25, iou=0.5)
        used = set()
        for b, s, c in d:
            g = [(k, x) for k, x in enumerate(r["boxes"]) if x["class_id"] == c and k not in used]
            if g:
                ious = iou_one(np.asarray(b, np.float64), np.array([[x["x1"], x["y1"], x["x2"], x["y2"]] for _, x in g]))
                j = int(ious.argmax())
                if ious[j] >= 0.5:
                    used.add(g[j][0]); tp += 1; continue
            fp += 1
    return {"map50": round(m, 4), "ap50": {LABELS[i]: round(a, 4) for i, a in enumerate(aps)},
            "precision@0.25": round(tp / max(tp + fp, 1), 4), "recall@0.25": round(tp / max(npos, 1), 4)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--ort-fp32", required=True)
    ap.add_argument("--ort-int8", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)

    images, recs = load_set(args.eval, as_uint8=False)
    folded = torch.load(f"{args.work}/folded.pt").eval()
    folded.static_batch = None
    model = Export(folded).eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(images), 10):
            outs.append(model(torch.from_numpy(images[i:i + 10] / 255.0)).numpy())
    torch_out = np.concatenate(outs)

    n = len(recs)
    ort_fp32 = np.fromfile(args.ort_fp32, dtype=np.float32).reshape(n, 7, 2100)
    ort_int8 = np.fromfile(args.ort_int8, dtype=np.float32).reshape(n, 7, 2100)

    res = {
        "eval_frames": n,
        "eval_objects": sum(len(r["boxes"]) for r in recs),
        "torch_fp32": ap_report(torch_out, recs),
        "ort_fp32": ap_report(ort_fp32, recs),
        "ort_int8": ap_report(ort_int8, recs),
        "max_abs_diff_torch_vs_ort_fp32": {"boxes": float(np.abs(torch_out[:, :4] - ort_fp32[:, :4]).max()),
                                           "scores": float(np.abs(torch_out[:, 4:] - ort_fp32[:, 4:]).max())},
        "int8_vs_fp32_ort": {
            "scores_max_abs_diff": float(np.abs(ort_int8[:, 4:] - ort_fp32[:, 4:]).max()),
            "scores_p99_abs_diff": float(np.percentile(np.abs(ort_int8[:, 4:] - ort_fp32[:, 4:]), 99)),
            # box agreement where FP32 is confident (score > 0.5): what a user sees
            "boxes_max_abs_diff_confident": float(np.abs(ort_int8[:, :4] - ort_fp32[:, :4])[np.broadcast_to((ort_fp32[:, 4:].max(1) > 0.5)[:, None, :], ort_fp32[:, :4].shape)].max(initial=0.0)),
            "boxes_p99_rel_diff_confident": float(np.percentile(np.concatenate([[0.0], (np.abs(ort_int8[:, 2:4] - ort_fp32[:, 2:4]) / np.maximum(ort_fp32[:, 2:4], 1.0))[np.broadcast_to((ort_fp32[:, 4:].max(1) > 0.5)[:, None, :], ort_fp32[:, 2:4].shape)]]), 99)),
        },
    }
    print(json.dumps(res, indent=1))
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
