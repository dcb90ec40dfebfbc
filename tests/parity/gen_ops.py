"""Reference outputs of torchvision 0.14's detection ops for tests/parity/ops_test.cpp.

Usage: /usr/bin/python3 gen_ops.py OUT_DIR

Writes seeded inputs and torchvision's outputs with tensor_io.save_tensors. Names are "<op>/<case>/<field>";
the C++ test discovers cases by these names, so adding a case here needs no C++ change.
"""
import math
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher  # noqa: E402
from torchvision.ops import MultiScaleRoIAlign, batched_nms, box_iou, nms, roi_align  # noqa: E402
from torchvision.ops import clip_boxes_to_image, remove_small_boxes  # noqa: E402

from tensor_io import save_tensors  # noqa: E402

OUT = {}


def rand_boxes(g, n, extent, min_wh=1.0, max_wh=None, dtype=torch.float32):
    """n boxes with top-left in [0, extent) and sides in [min_wh, max_wh)."""
    max_wh = extent / 3 if max_wh is None else max_wh
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * extent
    wh = min_wh + torch.rand(n, 2, generator=g, dtype=torch.float64) * (max_wh - min_wh)
    return torch.cat([xy, xy + wh], 1).to(dtype)


def threshold_pairs(n_pairs, dtype):
    """Pairs of boxes whose IoU is exactly 0.5 in float arithmetic: [0,0,3,1] and [1,0,4,1] (inter 2, union 4),
    scaled by powers of two and moved by integers so every coordinate stays exact."""
    boxes = []
    for k in range(n_pairs):
        s = 2.0 ** (k % 4)
        ox, oy = 40.0 * k, 7.0 * k
        boxes.append([ox, oy, ox + 3 * s, oy + s])
        boxes.append([ox + s, oy, ox + 4 * s, oy + s])
    b = torch.tensor(boxes, dtype=dtype)
    iou = box_iou(b[0::2], b[1::2]).diagonal()
    assert bool((iou == 0.5).all()), iou
    return b


def add_nms_cases():
    g = torch.Generator().manual_seed(1)
    cases = []
    for n, extent, thr, dtype in [(0, 10, 0.5, torch.float32), (1, 10, 0.5, torch.float32),
                                  (10, 20, 0.5, torch.float32), (200, 100, 0.3, torch.float32),
                                  (200, 100, 0.7, torch.float32), (1500, 300, 0.5, torch.float32),
                                  (300, 100, 0.5, torch.float64)]:
        boxes = rand_boxes(g, n, extent, dtype=dtype)
        scores = torch.rand(n, generator=g, dtype=torch.float64).to(dtype)
        cases.append((f"rand{n}_{thr}_{str(dtype)[6:]}", boxes, scores, thr))
    # Dense clusters: most boxes overlap several others.
    boxes = rand_boxes(g, 600, 40, min_wh=5, max_wh=30)
    cases.append(("dense", boxes, torch.rand(600, generator=g), 0.5))
    # Many ties: scores on a coarse grid, so the sort's tie order decides what survives.
    boxes = rand_boxes(g, 400, 80)
    scores = (torch.rand(400, generator=g) * 8).floor() / 8
    cases.append(("ties", boxes, scores, 0.5))
    # Pairs exactly at the threshold are kept; a hair below the threshold suppresses them.
    for dtype in (torch.float32, torch.float64):
        boxes = threshold_pairs(12, dtype)
        scores = torch.linspace(1.0, 0.1, 24, dtype=dtype)
        cases.append((f"at_threshold_{str(dtype)[6:]}", boxes, scores, 0.5))
        cases.append((f"below_threshold_{str(dtype)[6:]}", boxes, scores, 0.4999))
    for name, boxes, scores, thr in cases:
        p = f"nms/{name}/"
        OUT[p + "boxes"], OUT[p + "scores"] = boxes, scores
        OUT[p + "thr"] = torch.tensor([thr], dtype=torch.float64)
        OUT[p + "keep"] = nms(boxes, scores, thr)


def add_batched_nms_cases():
    g = torch.Generator().manual_seed(2)
    # numel 4000 uses the coordinate trick, 4004 the per-class loop (torchvision's CPU switch at > 4000).
    for n, classes in [(0, 3), (50, 3), (1000, 5), (1001, 5), (3000, 7), (2500, 1)]:
        boxes = rand_boxes(g, n, 200, max_wh=60)
        scores = torch.rand(n, generator=g)
        idxs = torch.randint(0, classes, (n,), generator=g)
        for ties in (False, True):
            # Tied scores make the order of the final sort (vanilla path) and of nms's sort matter.
            s = (scores * 4).floor() / 4 if ties else scores
            p = f"batched_nms/n{n}_c{classes}{'_ties' if ties else ''}/"
            OUT[p + "boxes"], OUT[p + "scores"], OUT[p + "idxs"] = boxes, s, idxs
            OUT[p + "thr"] = torch.tensor([0.5], dtype=torch.float64)
            OUT[p + "keep"] = batched_nms(boxes, s, idxs, 0.5)


def roi_inputs(g, dtype, scale):
    """A [2, 3, 20, 24] map and rois in image coordinates: ordinary, partly outside, tiny and inverted ones."""
    x = torch.randn(2, 3, 20, 24, generator=g, dtype=torch.float64).to(dtype)
    ext_h, ext_w = 20 / scale, 24 / scale
    boxes = rand_boxes(g, 24, min(ext_h, ext_w), max_wh=min(ext_h, ext_w) / 2, dtype=torch.float64)
    special = torch.tensor([[-3.0, -2.0, 5.0, 6.0], [0.0, 0.0, ext_w + 6, ext_h + 4], [3.0, 3.0, 3.2, 3.1],
                            [6.0, 5.0, 2.0, 1.0], [ext_w - 1, ext_h - 1, ext_w + 3, ext_h + 3],
                            [-8.0, -8.0, -2.5, -3.0]], dtype=torch.float64)
    boxes = torch.cat([boxes, special * (1.0 if scale == 1.0 else 2.0)])
    batch = torch.randint(0, 2, (boxes.shape[0], 1), generator=g).to(torch.float64)
    return x, torch.cat([batch, boxes], 1).to(dtype)


def add_roi_align_cases():
    g = torch.Generator().manual_seed(3)
    for dtype in (torch.float32, torch.float64):
        for scale in (0.25, 1.0):
            for aligned in (False, True):
                for ratio in (0, 2, -1):
                    x, rois = roi_inputs(g, dtype, scale)
                    out_size = (5, 4)
                    xg = x.clone().requires_grad_(True)
                    out = roi_align(xg, rois, out_size, scale, ratio, aligned)
                    gout = torch.randn(out.shape, generator=g, dtype=torch.float64).to(dtype)
                    (gin,) = torch.autograd.grad(out, xg, gout)
                    p = f"roi_align/{str(dtype)[6:]}_s{scale}_a{int(aligned)}_r{ratio}/"
                    OUT[p + "input"], OUT[p + "rois"], OUT[p + "out"] = x, rois, out
                    OUT[p + "gout"], OUT[p + "gin"] = gout, gin
                    OUT[p + "params"] = torch.tensor([out_size[0], out_size[1], scale, ratio, float(aligned)],
                                                     dtype=torch.float64)
    # Large enough that the C++ kernels split the work across threads.
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(2, 16, 50, 64, generator=g, dtype=torch.float64).to(dtype)
        boxes = rand_boxes(g, 300, 200, min_wh=2, max_wh=120, dtype=torch.float64)
        batch = torch.randint(0, 2, (300, 1), generator=g).to(torch.float64)
        rois = torch.cat([batch, boxes], 1).to(dtype)
        xg = x.clone().requires_grad_(True)
        out = roi_align(xg, rois, (7, 7), 0.25, 2, False)
        gout = torch.randn(out.shape, generator=g, dtype=torch.float64).to(dtype)
        (gin,) = torch.autograd.grad(out, xg, gout)
        p = f"roi_align/large_{str(dtype)[6:]}/"
        OUT[p + "input"], OUT[p + "rois"], OUT[p + "out"], OUT[p + "gout"], OUT[p + "gin"] = x, rois, out, gout, gin
        OUT[p + "params"] = torch.tensor([7, 7, 0.25, 2, 0.0], dtype=torch.float64)
    x = torch.randn(1, 2, 8, 8, generator=g)
    rois = torch.zeros(0, 5)
    p = "roi_align/empty/"
    OUT[p + "input"], OUT[p + "rois"] = x, rois
    OUT[p + "out"] = roi_align(x, rois, (3, 3), 1.0, 2, False)
    OUT[p + "params"] = torch.tensor([3, 3, 1.0, 2, 0.0], dtype=torch.float64)


def add_pooler_cases():
    g = torch.Generator().manual_seed(4)
    image_shapes = [(200, 256), (180, 240)]
    feats = OrderedDict()
    for name, (h, w) in [("0", (50, 64)), ("1", (25, 32)), ("2", (13, 16)), ("3", (7, 8)), ("pool", (4, 4))]:
        feats[name] = torch.randn(2, 4, h, w, generator=g)
    boxes = []
    for (h, w), n in zip(image_shapes, (40, 25)):
        # Sides from 2 to ~250 px so every pyramid level gets boxes.
        side = torch.exp(torch.rand(n, 2, generator=g, dtype=torch.float64) * math.log(125.0)) * 2
        xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * torch.tensor([w, h], dtype=torch.float64)
        b = torch.cat([xy, xy + side], 1)
        boxes.append(clip_boxes_to_image(b, (h, w)).float())
    for case, names, size, ratio in [("fpn", ["0", "1", "2", "3"], 7, 2), ("fpn_rect", ["0", "1", "2", "3"], (5, 3), -1),
                                     ("single", ["1"], 4, 2), ("two", ["2", "0"], 3, 0)]:
        pooler = MultiScaleRoIAlign(names, size, ratio)
        p = f"pooler/{case}/"
        OUT[p + "out"] = pooler(feats, boxes, image_shapes)
        OUT[p + "config"] = torch.tensor([*((size, size) if isinstance(size, int) else size), ratio])
        OUT[p + "names"] = torch.tensor([int(n) for n in names])
        OUT[p + "scales"] = torch.tensor(pooler.scales, dtype=torch.float64)
    for name, f in feats.items():
        OUT[f"pooler_input/feat/{name}"] = f
    for i, b in enumerate(boxes):
        OUT[f"pooler_input/boxes/{i}"] = b
    OUT["pooler_input/image_shapes"] = torch.tensor(image_shapes)


def add_box_coder_cases():
    g = torch.Generator().manual_seed(5)
    for dtype in (torch.float32, torch.float64):
        for weights in ((10.0, 10.0, 5.0, 5.0), (1.0, 1.0, 1.0, 1.0)):
            coder = BoxCoder(weights)
            refs = [rand_boxes(g, n, 300, min_wh=2, max_wh=120, dtype=dtype) for n in (7, 5)]
            props = [rand_boxes(g, n, 300, min_wh=2, max_wh=120, dtype=dtype) for n in (7, 5)]
            enc = coder.encode(refs, props)
            # Large codes so the dw/dh clamp at log(1000/16) matters.
            codes = torch.randn(12, 3 * 4, generator=g, dtype=torch.float64).to(dtype) * 3 * weights[2]
            dec = coder.decode(codes, props)
            p = f"box_coder/{str(dtype)[6:]}_w{int(weights[0])}/"
            OUT[p + "weights"] = torch.tensor(weights, dtype=torch.float64)
            OUT[p + "ref0"], OUT[p + "ref1"], OUT[p + "prop0"], OUT[p + "prop1"] = *refs, *props
            OUT[p + "enc0"], OUT[p + "enc1"] = enc
            OUT[p + "codes"], OUT[p + "dec"] = codes, dec


def add_box_cases():
    g = torch.Generator().manual_seed(6)
    a = rand_boxes(g, 30, 100, min_wh=0.0, max_wh=40)
    b = rand_boxes(g, 20, 100, min_wh=0.0, max_wh=40)
    OUT["boxes/a"], OUT["boxes/b"] = a, b
    OUT["boxes/iou"] = box_iou(a, b)
    OUT["boxes/clip"] = clip_boxes_to_image(a * 1.3 - 10, (90, 70))
    OUT["boxes/small"] = remove_small_boxes(a, 5.0)
    iou = box_iou(b, a)
    OUT["matcher/iou"] = iou
    OUT["matcher/m_07_03_low"] = Matcher(0.7, 0.3, True)(iou)
    OUT["matcher/m_05_05"] = Matcher(0.5, 0.5, False)(iou)
    matched = torch.randint(-1, 4, (500,), generator=g)
    OUT["sampler/matched"] = matched
    torch.manual_seed(123)
    pos, neg = BalancedPositiveNegativeSampler(64, 0.25)([matched, matched[:100]])
    OUT["sampler/pos0"], OUT["sampler/neg0"], OUT["sampler/pos1"], OUT["sampler/neg1"] = pos[0], neg[0], pos[1], neg[1]


def main():
    torch.set_num_threads(1)
    add_nms_cases()
    add_batched_nms_cases()
    add_roi_align_cases()
    add_pooler_cases()
    add_box_coder_cases()
    add_box_cases()
    save_tensors(sys.argv[1], OUT)


if __name__ == "__main__":
    main()
