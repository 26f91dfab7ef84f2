"""Shared pieces of the shapes-detector pipeline: data loading with the daemon's letterbox,
the network, anchor points, decoding, NMS and mAP@0.5.

The letterbox reproduces EdgeRunner.Models.Preprocessing.ImagePreprocessor exactly (antialiased
bilinear, triangle filter of support max(scale,1), taps renormalised at the borders, float math),
so that training and evaluation see the tensor the daemon feeds the model.
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 3
LABELS = ["circle", "square", "triangle"]
INPUT = 320
SRC_W, SRC_H = 640, 480
PAD = 114.0
STRIDES = (8, 16, 32)
# Letterbox geometry for 640x480 -> 320x320: scale 0.5, image rows 40..279.
LB_SCALE = 0.5
LB_TOP = 40


# --------------------------------------------------------------------------- data

def axis_filter(src_len, resized, crop, out_len):
    """Weight matrix [out_len, src_len] exactly as ImagePreprocessor.AxisFilter.Create; padding rows are all zero."""
    scale = src_len / resized
    support = max(scale, 1.0)
    m = np.zeros((out_len, src_len), dtype=np.float64)
    valid = np.zeros(out_len, dtype=bool)
    for i in range(out_len):
        pos = i + crop
        if pos < 0 or pos >= resized:
            continue
        center = (pos + 0.5) * scale
        first = max(0, int(np.floor(center - support)))
        last = min(src_len, int(np.ceil(center + support)))
        ws = {}
        for j in range(first, last):
            w = 1.0 - abs((j + 0.5 - center) / support)
            if w > 0:
                ws[j] = w
        total = sum(ws.values())
        for j, w in ws.items():
            m[i, j] = np.float32(w / total)  # the daemon stores float weights
        valid[i] = True
    return m.astype(np.float32), valid


def _taps(m):
    """Dense filter matrix -> (indices [T,out], weights [T,out]) of its non-zero taps (zero-padded)."""
    t = max(1, int((m != 0).sum(1).max()))
    idx = np.zeros((t, m.shape[0]), dtype=np.int64)
    w = np.zeros((t, m.shape[0]), dtype=np.float32)
    for i in range(m.shape[0]):
        nz = np.nonzero(m[i])[0]
        idx[:len(nz), i] = nz
        w[:len(nz), i] = m[i, nz]
    return idx, w


_H_FILTER, _ = axis_filter(SRC_W, 320.0, 0.0, INPUT)
_V_FILTER, _V_VALID = axis_filter(SRC_H, 240.0, -40.0, INPUT)
_H_IDX, _H_W = _taps(_H_FILTER)
_V_IDX, _V_W = _taps(_V_FILTER)


def letterbox(rgb):
    """rgb uint8 [480,640,3] -> float32 [3,320,320] in pixel units (0..255), padding 114."""
    x = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)   # [3,480,640]
    h = np.zeros((3, x.shape[1], INPUT), dtype=np.float32)               # horizontal pass
    for k in range(_H_IDX.shape[0]):
        h += x[:, :, _H_IDX[k]] * _H_W[k]
    v = np.zeros((3, INPUT, INPUT), dtype=np.float32)                    # vertical pass
    for k in range(_V_IDX.shape[0]):
        v += h[:, _V_IDX[k], :] * _V_W[k][:, None]
    v[:, ~_V_VALID, :] = PAD
    return np.ascontiguousarray(v, dtype=np.float32)


def load_labels(root):
    with open(os.path.join(root, "labels.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def boxes_to_input(rec):
    """GT boxes of one labels.jsonl record mapped into the 320x320 input: ([n,4] float32, [n] int64)."""
    b = np.array([[o["x1"], o["y1"], o["x2"], o["y2"]] for o in rec["boxes"]], dtype=np.float32).reshape(-1, 4)
    c = np.array([o["class_id"] for o in rec["boxes"]], dtype=np.int64)
    b = b * LB_SCALE
    b[:, [1, 3]] += LB_TOP
    return b, c


def load_set(root, as_uint8=True):
    """All frames of a dump folder letterboxed. uint8 (rounded) for training, float32 for evaluation."""
    from PIL import Image
    recs = load_labels(root)
    out = np.empty((len(recs), 3, INPUT, INPUT), dtype=np.uint8 if as_uint8 else np.float32)
    for i, r in enumerate(recs):
        img = np.asarray(Image.open(os.path.join(root, r["file"])).convert("RGB"))
        t = letterbox(img)
        out[i] = np.clip(np.rint(t), 0, 255).astype(np.uint8) if as_uint8 else t
    return out, recs


# --------------------------------------------------------------------------- model

def anchor_points():
    """[2100,2] cell centres in input pixels and [2100] strides, stride 8 row-major, then 16, then 32."""
    pts, strides = [], []
    for s in STRIDES:
        n = INPUT // s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        p = np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s], 1)
        pts.append(p)
        strides.append(np.full(n * n, s))
    return np.concatenate(pts).astype(np.float32), np.concatenate(strides).astype(np.float32)


class ConvBnRelu(nn.Sequential):
    def __init__(self, cin, cout, k=3, s=1):
        super().__init__(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Head(nn.Module):
    """Shared 3x3 conv, then separate 1x1 box (l,t,r,b log-distances) and class-logit convs."""

    def __init__(self, cin, mid):
        super().__init__()
        self.stem = ConvBnRelu(cin, mid, 3, 1)
        self.box = nn.Conv2d(mid, 4, 1)
        self.cls = nn.Conv2d(mid, NUM_CLASSES, 1)
        nn.init.normal_(self.box.weight, std=0.01)
        nn.init.constant_(self.box.bias, float(np.log(1.5)))
        nn.init.normal_(self.cls.weight, std=0.01)
        nn.init.constant_(self.cls.bias, -4.6)

    def forward(self, x):
        x = self.stem(x)
        return self.box(x), self.cls(x)


class ShapesDetector(nn.Module):
    """Plain Conv-BN-ReLU backbone (strides 2..32) with an anchor-free head on P3/P4/P5.

    forward(x) -> raw (box log-distances [B,4,N], class logits [B,3,N]) used for training;
    Export wraps it to produce the YOLOv8 layout [B, 4+3, N] (cx,cy,w,h in input pixels, sigmoid scores).
    """

    def __init__(self, widths=(16, 32, 48, 64, 96), head=48):
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.stage1 = nn.Sequential(ConvBnRelu(3, c1, 3, 2))                             # /2
        self.stage2 = nn.Sequential(ConvBnRelu(c1, c2, 3, 2), ConvBnRelu(c2, c2))         # /4
        self.stage3 = nn.Sequential(ConvBnRelu(c2, c3, 3, 2), ConvBnRelu(c3, c3))         # /8
        self.stage4 = nn.Sequential(ConvBnRelu(c3, c4, 3, 2), ConvBnRelu(c4, c4))         # /16
        self.stage5 = nn.Sequential(ConvBnRelu(c4, c5, 3, 2), ConvBnRelu(c5, c5))         # /32
        self.heads = nn.ModuleList([Head(c3, head), Head(c4, head), Head(c5, head)])
        self.static_batch = None  # set to 1 for export: constant Reshape shapes instead of Shape/Slice ops

    def forward(self, x):
        x = self.stage2(self.stage1(x))
        p3 = self.stage3(x)
        p4 = self.stage4(p3)
        p5 = self.stage5(p4)
        boxes, logits = [], []
        for h, p in zip(self.heads, (p3, p4, p5)):
            b, c = h(p)
            if self.static_batch is None:
                boxes.append(b.flatten(2))
                logits.append(c.flatten(2))
            else:
                boxes.append(b.reshape(self.static_batch, 4, -1))
                logits.append(c.reshape(self.static_batch, NUM_CLASSES, -1))
        return torch.cat(boxes, 2), torch.cat(logits, 2)


class Export(nn.Module):
    """Adds the float decode to the raw outputs: YOLOv8 layout [1, 4+3, 2100]."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        pts, strides = anchor_points()
        self.register_buffer("pts", torch.from_numpy(pts.T.copy()).unsqueeze(0))          # [1,2,N]
        self.register_buffer("strides", torch.from_numpy(strides).view(1, 1, -1))          # [1,1,N]

    def forward(self, x):
        box, logit = self.net(x)
        return decode(box, logit, self.pts, self.strides)


def decode(box, logit, pts, strides):
    d = torch.exp(box) * strides                       # l,t,r,b in pixels
    lt, rb = d[:, :2], d[:, 2:]
    c = pts + (rb - lt) * 0.5
    wh = lt + rb
    return torch.cat([c, wh, torch.sigmoid(logit)], 1)


def fold_bn(net):
    """Returns a copy of net with every BatchNorm folded into the preceding conv (BN replaced by Identity)."""
    import copy
    net = copy.deepcopy(net).eval()
    for m in net.modules():
        if isinstance(m, ConvBnRelu):
            conv, bn = m[0], m[1]
            std = torch.sqrt(bn.running_var + bn.eps)
            w = conv.weight * (bn.weight / std).view(-1, 1, 1, 1)
            b = bn.bias - bn.running_mean * bn.weight / std
            new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True)
            new.weight.data.copy_(w.detach())
            new.bias.data.copy_(b.detach())
            m[0] = new
            m[1] = nn.Identity()
    return net


# --------------------------------------------------------------------------- evaluation

def nms(boxes, scores, iou):
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0]); yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2]); yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        a = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
        b = (boxes[rest, 2] - boxes[rest, 0]) * (boxes[rest, 3] - boxes[rest, 1])
        order = rest[inter / (a + b - inter + 1e-9) <= iou]
    return np.array(keep, dtype=np.int64)


def postprocess(out, score_threshold=0.001, iou=0.5, max_det=100):
    """out [7,2100] (YOLOv8 layout) -> list of (x1,y1,x2,y2 in 640x480 source pixels, score, class); class-aware NMS."""
    cx, cy, w, h = out[0], out[1], out[2], out[3]
    scores = out[4:]
    cls = scores.argmax(0)
    sc = scores.max(0)
    m = sc > score_threshold
    b = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)[m]
    # undo letterbox: x = x_in * 2, y = (y_in - 40) * 2
    b[:, [0, 2]] /= LB_SCALE
    b[:, [1, 3]] = (b[:, [1, 3]] - LB_TOP) / LB_SCALE
    sc, cls = sc[m], cls[m]
    dets = []
    for c in range(NUM_CLASSES):
        k = cls == c
        if not k.any():
            continue
        bb, ss = b[k], sc[k]
        keep = nms(bb, ss, iou)
        for i in keep:
            dets.append((bb[i], float(ss[i]), c))
    dets.sort(key=lambda d: -d[1])
    return dets[:max_det]


def iou_one(b, gts):
    xx1 = np.maximum(b[0], gts[:, 0]); yy1 = np.maximum(b[1], gts[:, 1])
    xx2 = np.minimum(b[2], gts[:, 2]); yy2 = np.minimum(b[3], gts[:, 3])
    inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
    a = (b[2] - b[0]) * (b[3] - b[1])
    g = (gts[:, 2] - gts[:, 0]) * (gts[:, 3] - gts[:, 1])
    return inter / (a + g - inter + 1e-9)


def map50(all_dets, recs, iou_thr=0.5):
    """VOC/COCO-style AP@0.5 with all-point interpolation per class, then the mean. Returns (mAP, [AP per class])."""
    aps = []
    for c in range(NUM_CLASSES):
        gts = {}
        npos = 0
        for i, r in enumerate(recs):
            g = np.array([[o["x1"], o["y1"], o["x2"], o["y2"]] for o in r["boxes"] if o["class_id"] == c], dtype=np.float64).reshape(-1, 4)
            gts[i] = (g, np.zeros(len(g), dtype=bool))
            npos += len(g)
        preds = [(s, i, b) for i, dets in enumerate(all_dets) for (b, s, cc) in dets if cc == c]
        preds.sort(key=lambda p: -p[0])
        tp = np.zeros(len(preds)); fp = np.zeros(len(preds))
        for k, (s, i, b) in enumerate(preds):
            g, used = gts[i]
            if len(g):
                ious = iou_one(np.asarray(b, dtype=np.float64), g)
                j = int(ious.argmax())
                if ious[j] >= iou_thr and not used[j]:
                    used[j] = True
                    tp[k] = 1
                    continue
            fp[k] = 1
        if npos == 0:
            continue
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        rec = ctp / npos
        prec = ctp / np.maximum(ctp + cfp, 1e-9)
        mrec = np.concatenate([[0.0], rec, [1.0]])
        mpre = np.concatenate([[1.0], prec, [0.0]])
        for k in range(len(mpre) - 2, -1, -1):
            mpre[k] = max(mpre[k], mpre[k + 1])
        idx = np.where(mrec[1:] != mrec[:-1])[0]
        aps.append(float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])))
    return float(np.mean(aps)), aps
