"""Trains the shapes detector on frames dumped by `edgerunner dump vision`.

Usage: train.py --train DIR --work DIR [--epochs N] [--seed S]
Writes WORK/model.pt (state dict, BN not folded) and WORK/train_log.json.
"""
import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

from common import INPUT, NUM_CLASSES, ShapesDetector, anchor_points, boxes_to_input, load_set

# Object side (max of w,h, input pixels) each level is responsible for; the ranges overlap so
# objects near a boundary train both levels (NMS removes the duplicate).
LEVEL_RANGES = ((0.0, 36.0), (28.0, 72.0), (56.0, 1e9))
CENTER_RADIUS = 1.5  # positives: cell centres inside the box and within 1.5 strides of its centre


def build_targets(gt_boxes, gt_classes, pts, strides, level):
    """One image. Returns (pos mask [N], matched box [N,4], cls target [N,3])."""
    n = pts.shape[0]
    cls_t = torch.zeros(n, NUM_CLASSES)
    box_t = torch.zeros(n, 4)
    if len(gt_boxes) == 0:
        return torch.zeros(n, dtype=torch.bool), box_t, cls_t
    g = gt_boxes  # [M,4]
    side = torch.maximum(g[:, 2] - g[:, 0], g[:, 3] - g[:, 1])
    ctr = (g[:, :2] + g[:, 2:]) / 2
    px, py = pts[:, 0:1], pts[:, 1:2]  # [N,1]
    inside = (px > g[:, 0]) & (px < g[:, 2]) & (py > g[:, 1]) & (py < g[:, 3])  # [N,M]
    r = CENTER_RADIUS * strides[:, None]
    near = ((px - ctr[:, 0]).abs() <= r) & ((py - ctr[:, 1]).abs() <= r)
    lo = torch.tensor([LEVEL_RANGES[l][0] for l in range(3)])[level]  # [N]
    hi = torch.tensor([LEVEL_RANGES[l][1] for l in range(3)])[level]
    in_range = (side[None, :] > lo[:, None]) & (side[None, :] <= hi[:, None])
    cand = inside & near & in_range
    area = ((g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1]))[None, :].expand(n, -1).clone()
    area[~cand] = float("inf")
    best_area, best = area.min(1)
    pos = torch.isfinite(best_area)
    box_t[pos] = g[best[pos]]
    cls_t[pos, gt_classes[best[pos]]] = 1.0
    return pos, box_t, cls_t


def giou_loss(p, t):
    ix1 = torch.maximum(p[:, 0], t[:, 0]); iy1 = torch.maximum(p[:, 1], t[:, 1])
    ix2 = torch.minimum(p[:, 2], t[:, 2]); iy2 = torch.minimum(p[:, 3], t[:, 3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    ap = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    at = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    union = ap + at - inter + 1e-7
    iou = inter / union
    cx1 = torch.minimum(p[:, 0], t[:, 0]); cy1 = torch.minimum(p[:, 1], t[:, 1])
    cx2 = torch.maximum(p[:, 2], t[:, 2]); cy2 = torch.maximum(p[:, 3], t[:, 3])
    carea = (cx2 - cx1) * (cy2 - cy1) + 1e-7
    return (1 - (iou - (carea - union) / carea)), iou


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    cache = os.path.join(args.work, "train_u8.npy")
    t0 = time.time()
    if os.path.exists(cache):
        images = np.load(cache, mmap_mode="r")
        from common import load_labels
        recs = load_labels(args.train)
    else:
        images, recs = load_set(args.train, as_uint8=True)
        np.save(cache, images)
    print(f"data: {len(recs)} frames ({time.time() - t0:.0f}s)", flush=True)
    gts = [boxes_to_input(r) for r in recs]

    pts_np, strides_np = anchor_points()
    pts, strides = torch.from_numpy(pts_np), torch.from_numpy(strides_np)
    level = torch.from_numpy(np.concatenate([np.full((INPUT // s) ** 2, i) for i, s in enumerate((8, 16, 32))])).long()

    net = ShapesDetector()
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        (no_decay if p.ndim == 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    steps_per_epoch = len(recs) // args.batch
    total = steps_per_epoch * args.epochs
    warm = min(300, total // 10)

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm))))

    rng = np.random.default_rng(args.seed)
    log = []
    step = 0
    net.train()
    for epoch in range(args.epochs):
        order = rng.permutation(len(recs))
        t_ep = time.time()
        agg = np.zeros(3)
        for bi in range(steps_per_epoch):
            idx = np.sort(order[bi * args.batch:(bi + 1) * args.batch])
            x = torch.from_numpy(np.asarray(images[idx], dtype=np.float32) / 255.0)
            flips = rng.random(len(idx)) < 0.5
            pos_l, box_l, cls_l = [], [], []
            for k, i in enumerate(idx):
                b, c = gts[i]
                b = torch.from_numpy(b.copy())
                if flips[k]:
                    b = torch.stack([INPUT - b[:, 2], b[:, 1], INPUT - b[:, 0], b[:, 3]], 1)
                p, bt, ct = build_targets(b, torch.from_numpy(c), pts, strides, level)
                pos_l.append(p); box_l.append(bt); cls_l.append(ct)
            if flips.any():
                fl = torch.from_numpy(flips)
                x[fl] = x[fl].flip(3)
            pos = torch.stack(pos_l)           # [B,N]
            box_t = torch.stack(box_l)         # [B,N,4]
            cls_t = torch.stack(cls_l)         # [B,N,3]

            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            box_raw, logit = net(x)            # [B,4,N], [B,3,N]
            d = torch.exp(box_raw.clamp(max=8)).permute(0, 2, 1) * strides[None, :, None]  # [B,N,4] l,t,r,b
            pred = torch.cat([pts[None] - d[..., :2], pts[None] + d[..., 2:]], -1)
            npos = max(1.0, float(pos.sum()))
            gl, iou = giou_loss(pred[pos], box_t[pos])
            l_box = gl.sum() / npos
            l_cls = F.binary_cross_entropy_with_logits(logit.permute(0, 2, 1), cls_t, reduction="sum") / npos
            loss = l_cls + 2.0 * l_box
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            opt.step()
            step += 1
            agg += [float(l_cls), float(l_box), float(iou.mean()) if len(iou) else 0.0]
            if bi % 50 == 0:
                print(f"ep {epoch} it {bi}/{steps_per_epoch} cls {float(l_cls):.3f} box {float(l_box):.3f} "
                      f"iou {float(iou.mean()) if len(iou) else 0:.3f} lr {lr_at(step):.5f} {time.time() - t_ep:.0f}s", flush=True)
        agg /= steps_per_epoch
        log.append({"epoch": epoch, "cls": agg[0], "box": agg[1], "iou": agg[2], "seconds": time.time() - t_ep})
        print(f"== epoch {epoch}: cls {agg[0]:.4f} box {agg[1]:.4f} iou {agg[2]:.3f} ({time.time() - t_ep:.0f}s)", flush=True)
        torch.save(net.state_dict(), os.path.join(args.work, "model.pt"))

    with open(os.path.join(args.work, "train_log.json"), "w") as f:
        json.dump({"args": vars(args), "epochs": log, "train_seconds": time.time() - t0}, f, indent=1)


if __name__ == "__main__":
    main()
