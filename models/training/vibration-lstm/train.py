#!/usr/bin/python3
"""Train, export and evaluate the bundled stateful vibration-fault LSTM.

Reads the CSV streams written by `edgerunner dump vibration` (train / val / test folders with
disjoint seeds), trains a per-chunk spectral front end + one LSTM layer + linear head with
truncated BPTT (state carried across windows, zero state at each lane start), exports to ONNX
(opset 14, a real ONNX LSTM node), checks step-by-step == whole-sequence in PyTorch, evaluates on
the held-out streams and writes model.onnx, labels.txt, model.json and a figures JSON.

Usage: train.py --data DIR --out BUNDLE_DIR --report FIGURES_JSON [--epochs N]
"""

import argparse
import hashlib
import json
import math
import os
import random
import time

import numpy as np
import torch
from torch import nn

CHUNK = 50
AXES = 3
CLASSES = ["normal", "imbalance", "bearing_wear", "looseness"]
SEED = 1234
HIDDEN = 48
OPSET = 14


def set_determinism(seed):
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    torch.use_deterministic_algorithms(True)


def load_split(folder):
    """Returns (list of raw [n_chunks, 3, 50] float32 arrays, list of chunk labels, list of sample labels, meta)."""
    with open(os.path.join(folder, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    xs, ys, raw_labels = [], [], []
    for s in meta["streams"]:
        d = np.loadtxt(os.path.join(folder, s["file"]), delimiter=",", skiprows=1, dtype=np.float64)
        n = (len(d) // CHUNK) * CHUNK
        d = d[:n]
        x = d[:, 1:4].astype(np.float32).reshape(-1, CHUNK, AXES).transpose(0, 2, 1).copy()
        lab = d[:, 4].astype(np.int64)
        # A chunk's label is the true state of its last sample: the state "now" when the chunk is complete.
        y = lab.reshape(-1, CHUNK)[:, -1].copy()
        xs.append(x)
        ys.append(y)
        raw_labels.append(lab)
    return xs, ys, raw_labels, meta


class SpectralFrontEnd(nn.Module):
    """Per chunk and axis: Hann-windowed DFT log-power (26 bins, 4 Hz apart at 200 Hz) plus log variance
    and log kurtosis, standardised with constants measured on the training data. Only MatMul/elementwise
    ops, so it exports to plain ONNX."""

    def __init__(self):
        super().__init__()
        n = np.arange(CHUNK)
        k = np.arange(CHUNK // 2 + 1)
        win = 0.5 - 0.5 * np.cos(2 * np.pi * (n + 0.5) / CHUNK)
        ang = 2 * np.pi * np.outer(n, k) / CHUNK
        self.register_buffer("cos_basis", torch.tensor(win[:, None] * np.cos(ang), dtype=torch.float32))
        self.register_buffer("sin_basis", torch.tensor(win[:, None] * np.sin(ang), dtype=torch.float32))
        self.features = AXES * (CHUNK // 2 + 1 + 2)
        self.register_buffer("feat_mean", torch.zeros(self.features))
        self.register_buffer("feat_std", torch.ones(self.features))

    def raw(self, x):  # x [B, T, 3, 50] -> [B, T, F]
        re = torch.matmul(x, self.cos_basis)
        im = torch.matmul(x, self.sin_basis)
        logp = torch.log(re * re + im * im + 1e-4)
        m = x.mean(dim=-1, keepdim=True)
        d = x - m
        d2 = d * d
        var = d2.mean(dim=-1, keepdim=True)
        kurt = (d2 * d2).mean(dim=-1, keepdim=True) / (var * var + 1e-6)
        f = torch.cat([logp, torch.log(var + 1e-4), torch.log(kurt + 1e-2)], dim=-1)  # [B, T, 3, 28]
        return f.flatten(2)

    def forward(self, x):
        return (self.raw(x) - self.feat_mean) / self.feat_std


class VibrationLstm(nn.Module):
    def __init__(self, hidden=HIDDEN):
        super().__init__()
        self.front = SpectralFrontEnd()
        self.proj = nn.Sequential(nn.Linear(self.front.features, 64), nn.ReLU(), nn.Dropout(0.1))
        self.lstm = nn.LSTM(64, hidden, num_layers=1, batch_first=True)
        self.head = nn.Linear(hidden, len(CLASSES))

    def logits(self, x, h0, c0):
        z = self.proj(self.front(x))
        out, (hn, cn) = self.lstm(z, (h0, c0))
        return self.head(out), hn, cn

    def forward(self, x, h0, c0):
        logits, hn, cn = self.logits(x, h0, c0)
        return torch.softmax(logits, dim=-1), hn, cn


def zero_state(batch, hidden=HIDDEN):
    return torch.zeros(1, batch, hidden), torch.zeros(1, batch, hidden)


def normalise(xs, mean, std):
    return [((x - mean[None, :, None]) / std[None, :, None]).astype(np.float32) for x in xs]


@torch.no_grad()
def predict_stream(model, x, batch_steps=None):
    """Whole stream in one call from a zero state: returns probs [T, 4]."""
    h, c = zero_state(1)
    probs, _, _ = model(torch.from_numpy(x)[None], h, c)
    return probs[0].numpy()


def macro_f1(cm):
    f1s = []
    for k in range(cm.shape[0]):
        tp = cm[k, k]
        fp = cm[:, k].sum() - tp
        fn = cm[k, :].sum() - tp
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)), [float(v) for v in f1s]


def confusion(ys, preds):
    cm = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    for y, p in zip(ys, preds):
        np.add.at(cm, (y, p), 1)
    return cm


def time_to_detect(raw_labels, preds, sample_rate, hold_chunks):
    """For every fault segment (maximal run of one fault label in the sample labels): seconds from its first
    sample until the end of the first chunk whose argmax is that fault and stays so for hold_chunks chunks
    (all inside the segment). Missed when that never happens inside the segment."""
    per_class = {c: [] for c in range(1, len(CLASSES))}
    missed = {c: 0 for c in range(1, len(CLASSES))}
    for lab, pred in zip(raw_labels, preds):
        n_chunks = len(pred)
        lab = lab[: n_chunks * CHUNK]
        change = np.flatnonzero(np.diff(lab)) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(lab)]])
        for s, e in zip(starts, ends):
            c = int(lab[s])
            if c == 0 or s == 0:
                continue  # a fault already present at stream start has no onset to time
            first_chunk = s // CHUNK  # chunk containing the onset sample
            last_chunk = (e - 1) // CHUNK
            found = None
            for k in range(first_chunk, last_chunk - hold_chunks + 2):
                if np.all(pred[k : k + hold_chunks] == c):
                    found = k
                    break
            if found is None:
                missed[c] += 1
            else:
                per_class[c].append(((found + 1) * CHUNK - s) / sample_rate)
    out = {}
    for c in per_class:
        v = np.array(per_class[c])
        out[CLASSES[c]] = {
            "faults": int(len(v) + missed[c]),
            "detected": int(len(v)),
            "median_s": round(float(np.median(v)), 2) if len(v) else None,
            "p90_s": round(float(np.percentile(v, 90)), 2) if len(v) else None,
            "max_s": round(float(v.max()), 2) if len(v) else None,
        }
    return out


def evaluate(model, xs, ys, raw_labels, sample_rate):
    model.eval()
    preds = [predict_stream(model, x).argmax(-1) for x in xs]
    cm = confusion(ys, preds)
    acc = float(np.trace(cm) / cm.sum())
    mf1, f1s = macro_f1(cm)
    return acc, mf1, f1s, cm, preds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--data-command", default="")
    ap.add_argument("--ref-dir", default="", help="where to write x.f32 / probs.f32 for the ONNX Runtime check (default: next to --report)")
    args = ap.parse_args()
    set_determinism(SEED)
    t0 = time.time()

    tr_x, tr_y, _, tr_meta = load_split(os.path.join(args.data, "train"))
    va_x, va_y, va_raw, va_meta = load_split(os.path.join(args.data, "val"))
    te_x, te_y, te_raw, te_meta = load_split(os.path.join(args.data, "test"))
    fs = float(tr_meta["sample_rate_hz"])
    assert not (set(tr_meta["seeds"]) & set(te_meta["seeds"])) and not (set(tr_meta["seeds"]) & set(va_meta["seeds"]))
    print(f"loaded {len(tr_x)} train / {len(va_x)} val / {len(te_x)} test streams in {time.time() - t0:.1f}s", flush=True)

    allx = np.concatenate(tr_x)  # [N, 3, 50]
    mean = allx.mean(axis=(0, 2)).astype(np.float64)
    std = allx.std(axis=(0, 2)).astype(np.float64)
    mean = np.round(mean, 5)
    std = np.round(std, 5)
    print("stream mean", mean.tolist(), "std", std.tolist(), flush=True)
    tr_xn, va_xn, te_xn = normalise(tr_x, mean, std), normalise(va_x, mean, std), normalise(te_x, mean, std)

    model = VibrationLstm()
    with torch.no_grad():
        f = model.front.raw(torch.from_numpy(np.concatenate(tr_xn))[None])[0]
        model.front.feat_mean.copy_(f.mean(0))
        model.front.feat_std.copy_(f.std(0) + 1e-3)

    counts = np.bincount(np.concatenate(tr_y), minlength=len(CLASSES)).astype(np.float64)
    weights = torch.tensor((counts.sum() / counts / len(CLASSES)) ** 0.5, dtype=torch.float32)
    print("train chunks per class", counts.tolist(), "loss weights", [round(w, 3) for w in weights.tolist()], flush=True)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.epochs, pct_start=0.15)

    lane_len, window, lanes_per_stream = 600, 50, 4  # 150 s lanes, 12.5 s TBPTT windows
    rng = np.random.default_rng(SEED)
    best = (-1.0, None, -1)
    for epoch in range(args.epochs):
        model.train()
        xb, yb = [], []
        for x, y in zip(tr_xn, tr_y):
            for _ in range(lanes_per_stream):
                o = int(rng.integers(0, len(x) - lane_len + 1))
                gain = rng.uniform(0.85, 1.15, size=(AXES, 1)).astype(np.float32)
                xb.append(x[o : o + lane_len] * gain)
                yb.append(y[o : o + lane_len])
        perm = rng.permutation(len(xb))
        xb = torch.from_numpy(np.stack([xb[i] for i in perm]))
        yb = torch.from_numpy(np.stack([yb[i] for i in perm]))
        h, c = zero_state(xb.shape[0])
        total, nsteps = 0.0, 0
        for s in range(0, lane_len, window):
            logits, h, c = model.logits(xb[:, s : s + window], h, c)
            loss = loss_fn(logits.reshape(-1, len(CLASSES)), yb[:, s : s + window].reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            h, c = h.detach(), c.detach()
            total += float(loss)
            nsteps += 1
        sched.step()
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            acc, mf1, _, _, _ = evaluate(model, va_xn, va_y, va_raw, fs)
            if mf1 > best[0]:
                best = (mf1, {k: v.clone() for k, v in model.state_dict().items()}, epoch)
            print(f"epoch {epoch + 1:3d} loss {total / nsteps:.4f} val acc {acc:.4f} macroF1 {mf1:.4f} ({time.time() - t0:.0f}s)", flush=True)
        else:
            print(f"epoch {epoch + 1:3d} loss {total / nsteps:.4f} ({time.time() - t0:.0f}s)", flush=True)

    print(f"best val macro F1 {best[0]:.4f} at epoch {best[2] + 1}", flush=True)
    model.load_state_dict(best[1])
    model.eval()

    # Step-by-step (steps=1, state carried) must equal one call over the whole sequence.
    with torch.no_grad():
        xs = torch.from_numpy(np.stack([te_xn[0][:800], te_xn[1][:800]]))
        h, c = zero_state(2)
        whole, _, _ = model(xs, h, c)
        h, c = zero_state(2)
        steps = []
        for t in range(xs.shape[1]):
            p, h, c = model(xs[:, t : t + 1], h, c)
            steps.append(p)
        stepwise = torch.cat(steps, dim=1)
        torch_step_diff = float((whole - stepwise).abs().max())
    print(f"pytorch step-by-step vs whole-sequence max |diff| over 2x800 steps: {torch_step_diff:.3e}", flush=True)

    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "model.onnx")
    h, c = zero_state(2)
    torch.onnx.export(
        model,
        (torch.from_numpy(np.stack([te_xn[0][:8], te_xn[1][:8]])), h, c),
        onnx_path,
        input_names=["x", "h0", "c0"],
        output_names=["probs", "hn", "cn"],
        dynamic_axes={"x": {0: "batch", 1: "steps"}, "h0": {1: "batch"}, "c0": {1: "batch"},
                      "probs": {0: "batch", 1: "steps"}, "hn": {1: "batch"}, "cn": {1: "batch"}},
        opset_version=OPSET,
        do_constant_folding=True,
    )
    import onnx

    m = onnx.load(onnx_path)
    onnx.checker.check_model(m)
    lstm_nodes = [n for n in m.graph.node if n.op_type == "LSTM"]
    assert len(lstm_nodes) == 1, "expected exactly one ONNX LSTM node"
    layout = [a.i for a in lstm_nodes[0].attribute if a.name == "layout"]
    assert not layout or layout[0] == 0, "LSTM layout=1 is refused by ONNX Runtime's CPU provider"
    size = os.path.getsize(onnx_path)
    assert size <= 2 * 1024 * 1024, size
    print(f"exported {onnx_path}: {size} bytes, ops {sorted({n.op_type for n in m.graph.node})}", flush=True)

    # Held-out evaluation (whole test streams from a zero state, argmax per 0.25 s step).
    acc, mf1, f1s, cm, preds = evaluate(model, te_xn, te_y, te_raw, fs)
    ttd = time_to_detect(te_raw, preds, fs, hold_chunks=4)
    va_acc, va_mf1, _, _, _ = evaluate(model, va_xn, va_y, va_raw, fs)
    figures = {
        "test_streams": len(te_x),
        "test_seeds": te_meta["seeds"],
        "test_seconds_per_stream": te_meta["seconds"],
        "test_steps": int(cm.sum()),
        "accuracy": round(acc, 4),
        "macro_f1": round(mf1, 4),
        "f1": {CLASSES[k]: round(v, 4) for k, v in enumerate(f1s)},
        "confusion_rows_true_cols_pred": cm.tolist(),
        "time_to_detect_s_hold_1s": ttd,
        "val_accuracy": round(va_acc, 4),
        "val_macro_f1": round(va_mf1, 4),
        "pytorch_stepwise_vs_whole_max_abs_diff": torch_step_diff,
        "best_epoch": best[2] + 1,
        "epochs": args.epochs,
        "train_seconds": round(time.time() - t0, 1),
    }
    print(json.dumps(figures, indent=2), flush=True)

    # Reference tensors for the ONNX Runtime check (outside the bundle).
    ref_dir = args.ref_dir or os.path.join(os.path.dirname(os.path.abspath(args.report)), "ort-reference")
    os.makedirs(ref_dir, exist_ok=True)
    xs_ref = np.stack([te_xn[2][:400], te_xn[3][:400]]).astype(np.float32)
    with torch.no_grad():
        h, c = zero_state(2)
        p_ref, _, _ = model(torch.from_numpy(xs_ref), h, c)
    xs_ref.tofile(os.path.join(ref_dir, "x.f32"))
    p_ref.numpy().astype(np.float32).tofile(os.path.join(ref_dir, "probs.f32"))

    with open(os.path.join(args.out, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(CLASSES) + "\n")
    sha = hashlib.sha256(open(onnx_path, "rb").read()).hexdigest()
    manifest = {
        "schema": 1,
        "id": "vibration-lstm",
        "file": "model.onnx",
        "sha256": sha,
        "task": "sequence_classification",
        "inputs": [
            {"name": "x", "dtype": "float32", "shape": ["batch", "steps", AXES, CHUNK]},
            {"name": "h0", "dtype": "float32", "shape": [1, "batch", HIDDEN]},
            {"name": "c0", "dtype": "float32", "shape": [1, "batch", HIDDEN]},
        ],
        "outputs": [
            {"name": "probs", "dtype": "float32", "shape": ["batch", "steps", len(CLASSES)]},
            {"name": "hn", "dtype": "float32", "shape": [1, "batch", HIDDEN]},
            {"name": "cn", "dtype": "float32", "shape": [1, "batch", HIDDEN]},
        ],
        "state": [
            {"input": "h0", "output": "hn", "batch_axis": 1},
            {"input": "c0", "output": "cn", "batch_axis": 1},
        ],
        "stream": {
            "input": "x",
            "sample_rate_hz": int(fs),
            "channels": ["ax", "ay", "az"],
            "units": "g",
            "chunk_samples": CHUNK,
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
        },
        "labels": CLASSES,
        "postprocess": {"kind": "sequence_classification", "output": "probs", "softmax": False},
        "provenance": {
            "script": "models/training/vibration-lstm/build.sh",
            "seed": SEED,
            "data": args.data_command,
            "figures": {
                "test_accuracy": figures["accuracy"],
                "test_macro_f1": figures["macro_f1"],
                "test_f1_normal": figures["f1"]["normal"],
                "test_f1_imbalance": figures["f1"]["imbalance"],
                "test_f1_bearing_wear": figures["f1"]["bearing_wear"],
                "test_f1_looseness": figures["f1"]["looseness"],
                "ttd_median_s_imbalance": ttd["imbalance"]["median_s"],
                "ttd_p90_s_imbalance": ttd["imbalance"]["p90_s"],
                "ttd_median_s_bearing_wear": ttd["bearing_wear"]["median_s"],
                "ttd_p90_s_bearing_wear": ttd["bearing_wear"]["p90_s"],
                "ttd_median_s_looseness": ttd["looseness"]["median_s"],
                "ttd_p90_s_looseness": ttd["looseness"]["p90_s"],
            },
        },
    }
    with open(os.path.join(args.out, "model.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    with open(args.report, "w", encoding="utf-8") as f:
        json.dump(figures, f, indent=2)
        f.write("\n")
    print(f"done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
