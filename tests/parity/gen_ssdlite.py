"""Reference outputs of torchvision 0.14's ssdlite320_mobilenet_v3_large for tests/parity/ssdlite_test.cpp
(Debian's python3-torchvision).

Usage: gen_ssdlite.py OUT_DIR [CASE ...]   (default: every case below)

Writes OUT_DIR/images (three image-like [3, H, W] inputs of different sizes and aspect ratios, from
gen_detection.synth_image, and their ground-truth boxes) and, per case, OUT_DIR/<case>/:
  keys.json    the state_dict's keys in order with their shapes, and the parameter count, of the builder's
               model (before calibration: the architecture alone)
  weights.pth  torch.save(model.state_dict()) after calibration (the published format)
  io/          eval-mode detections of the three images run as one batch, and the training-mode losses of
               images 0 and 2 with their ground truth

Cases: the builder as called with weights=None, weights_backbone=None (reduced tail, N(0, 0.03) init, 91
classes: the architecture of torchvision's COCO weights), and its ImageNet-backbone path (weights_backbone
given: full tail), built without the download, with 5 classes.

Random weights give near-constant scores and ties (DESIGN.md section 6), so every batch norm (backbone, extra
layers and head) is calibrated on image-like inputs (train mode, momentum=None, 3 batches, no_grad) and the
heads' last 1x1 convs are scaled; the script checks that every image gets detections with distinct scores.
"""
import json
import os
import sys
from functools import partial

import torch
from torch import nn
from torchvision.models.detection import ssdlite

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_detection import IMAGE_SIZES, synth_image  # noqa: E402
from tensor_io import save_tensors  # noqa: E402

NAME = "ssdlite320_mobilenet_v3_large"
TRAIN_IMAGES = [0, 2]
# case -> (seed, num_classes, reduced tail, classification scale, regression scale)
CASES = {
    "reduced_tail": (11, 91, True, 1.5, 2.0),
    "full_tail": (12, 5, False, 1.0, 2.0),
}


def build(num_classes, reduced_tail):
    if reduced_tail:
        return ssdlite.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
    # The builder's weights_backbone path (full tail, no re-initialisation) without the ImageNet download.
    real = ssdlite.mobilenet_v3_large

    def offline(weights=None, progress=True, **kwargs):
        return real(weights=None, progress=progress, **kwargs)

    ssdlite.mobilenet_v3_large = offline
    try:
        return ssdlite.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone="DEFAULT",
                                                     num_classes=num_classes)
    finally:
        ssdlite.mobilenet_v3_large = real


def calibrate(model, g):
    """Batch-norm statistics of backbone, extra layers and head from image-like inputs (cumulative average)."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        for _ in range(3):
            x = torch.stack([synth_image(320, 320, g)[0] for _ in range(2)])
            features = model.backbone((x - 0.5) / 0.5)
            model.head(list(features.values()))
    model.eval()


def key_table(model):
    sd = model.state_dict()
    return {"keys": [[k, list(v.shape)] for k, v in sd.items()],
            "num_params": sum(p.numel() for p in model.parameters())}


def make_model(case):
    seed, num_classes, reduced_tail, cls_scale, reg_scale = CASES[case]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(100 + seed)
    model = build(num_classes, reduced_tail)
    keys = key_table(model)
    calibrate(model, g)
    with torch.no_grad():
        for block in model.head.classification_head.module_list:
            block[1].weight.mul_(cls_scale)
        for block in model.head.regression_head.module_list:
            block[1].weight.mul_(reg_scale)
    model.eval()
    return model, keys


def check_detections(case, detections):
    for i, d in enumerate(detections):
        scores = d["scores"]
        distinct = len(torch.unique(scores))
        gap = (scores[:-1] - scores[1:]).min().item() if len(scores) > 1 else float("nan")
        print(f"{case} image{i}: {len(scores)} detections, {distinct} distinct scores, "
              f"{len(torch.unique(d['labels']))} labels, scores {scores[-1]:.4f}..{scores[0]:.4f}, "
              f"smallest gap {gap:.2e}")
        if len(scores) == 0 or distinct != len(scores):
            sys.exit(f"{case} image{i}: degenerate reference (no detections or tied scores); recalibrate")


def make_case(out_dir, case, images, boxes):
    model, keys = make_model(case)
    num_classes = CASES[case][1]
    case_dir = os.path.join(out_dir, case)
    os.makedirs(case_dir, exist_ok=True)
    with open(os.path.join(case_dir, "keys.json"), "w") as f:
        json.dump(keys, f)
    torch.save(model.state_dict(), os.path.join(case_dir, "weights.pth"))

    io = {}
    with torch.no_grad():
        detections = model(images)
    check_detections(case, detections)
    for i, d in enumerate(detections):
        for key in ("boxes", "scores", "labels"):
            io[f"det{i}_{key}"] = d[key]

    model.train()
    torch.manual_seed(0)
    targets = [{"boxes": boxes[i], "labels": (torch.arange(len(boxes[i])) % (num_classes - 1)) + 1}
               for i in TRAIN_IMAGES]
    with torch.no_grad():
        losses = model([images[i] for i in TRAIN_IMAGES], targets)
    io["train_images"] = torch.tensor(TRAIN_IMAGES)
    for k, t in enumerate(targets):
        io[f"train_labels{k}"] = t["labels"]
    for key, value in losses.items():
        io[key] = value.reshape(1)
        print(f"{case} {key} = {value.item():.6f}")
    save_tensors(os.path.join(case_dir, "io"), io)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    wanted = sys.argv[2:] or list(CASES)
    unknown = [w for w in wanted if w not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; expected some of {list(CASES)}")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    g = torch.Generator().manual_seed(2024)
    images, boxes = zip(*(synth_image(h, w, g) for h, w in IMAGE_SIZES))
    tensors = {}
    for i, (img, b) in enumerate(zip(images, boxes)):
        tensors[f"image{i}"] = img
        tensors[f"boxes{i}"] = b
    save_tensors(os.path.join(out_dir, "images"), tensors)
    for case in wanted:
        make_case(out_dir, case, list(images), list(boxes))


if __name__ == "__main__":
    main()
