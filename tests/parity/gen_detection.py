"""Reference detections and losses for tests/parity/detection_test.cpp, from torchvision 0.14 (Debian's
python3-torchvision).

Usage: gen_detection.py OUT_DIR [MODEL ...]   (default: every case below)

Writes OUT_DIR/images (three image-like [3, H, W] inputs of different sizes and aspect ratios and their ground
truth boxes) and, per model, OUT_DIR/<model>/weights.pth (torch.save(model.state_dict()), the published
format) and OUT_DIR/<model>/io: the eval-mode detections of the three images, run as one batch, and the
training-mode losses of the same images with their ground truth.

The models come from torchvision's own builders (weights=None, weights_backbone=None), with the RPN and ROI
samplers made to take every candidate (batch_size_per_image larger than any candidate count, positive_fraction
1: see BalancedPositiveNegativeSampler), so the losses do not depend on random draws. The 320 model is built
as its builder does for a pretrained backbone (FrozenBatchNorm2d, trainable_backbone_layers 3): the builder
runs unchanged, only the backbone download is skipped.

Random weights give near-constant scores and ties (DESIGN.md section 6), so batch-norm statistics are
calibrated on image-like inputs (train mode, momentum=None, 3 batches, no_grad) and the predictor's and the
RPN objectness layer's weights are scaled up; the script checks that every image gets detections with
distinct scores.
"""
import os
import sys
from functools import partial

import torch
from torch import nn
from torchvision.models import detection
from torchvision.models.detection import faster_rcnn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tensor_io import save_tensors  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

IMAGE_SIZES = [(480, 640), (600, 400), (333, 500)]  # (H, W)
TRAIN_IMAGES = [0, 2]
# Larger than any anchor or proposal count, with positive_fraction 1: every candidate is sampled.
SAMPLE_ALL = dict(rpn_batch_size_per_image=10_000_000, rpn_positive_fraction=1.0,
                  box_batch_size_per_image=10_000_000, box_positive_fraction=1.0)
# name -> (seed, num_classes, pretrained_backbone, predictor scale, rpn objectness scale)
CASES = {
    "fasterrcnn_resnet50_fpn": (1, 91, False, 3.0, 3.0),
    "fasterrcnn_mobilenet_v3_large_fpn": (2, 91, False, 10.0, 10.0),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (3, 5, True, 10.0, 10.0),
}


def synth_image(h, w, g):
    """A smooth colour gradient with low-frequency texture, 3-6 filled rectangles and ellipses (the ground
    truth) and mild noise, in [0, 1]."""
    yy = torch.linspace(0, 1, h).view(1, h, 1)
    xx = torch.linspace(0, 1, w).view(1, 1, w)
    c0, c1, c2 = torch.rand(3, 3, 1, 1, generator=g)
    img = c0 * (1 - xx) + 0.5 * c1 * xx + 0.5 * c2 * yy
    coarse = torch.rand(1, 3, max(2, h // 32), max(2, w // 32), generator=g)
    texture = nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]
    img = 0.6 * img + 0.4 * texture
    boxes = []
    for k in range(int(torch.randint(3, 7, (1,), generator=g))):
        bw = float(torch.empty(1).uniform_(0.1, 0.45, generator=g)) * w
        bh = float(torch.empty(1).uniform_(0.1, 0.45, generator=g)) * h
        x1 = int(float(torch.rand(1, generator=g)) * (w - bw))
        y1 = int(float(torch.rand(1, generator=g)) * (h - bh))
        x2, y2 = int(x1 + bw), int(y1 + bh)
        colour = torch.rand(3, 1, 1, generator=g)
        if k % 2 == 0:
            img[:, y1:y2, x1:x2] = colour
        else:
            cy, cx, ry, rx = (y1 + y2) / 2, (x1 + x2) / 2, (y2 - y1) / 2, (x2 - x1) / 2
            inside = ((yy[0] * h - cy) / ry) ** 2 + ((xx[0] * w - cx) / rx) ** 2 <= 1
            img = torch.where(inside, colour, img)
        boxes.append([x1, y1, x2, y2])
    img = (img + 0.04 * torch.randn(3, h, w, generator=g)).clamp(0, 1)
    return img.contiguous(), torch.tensor(boxes, dtype=torch.float32)


def build(name, num_classes, pretrained_backbone):
    builder = getattr(detection, name)
    if not pretrained_backbone:
        return builder(weights=None, weights_backbone=None, num_classes=num_classes, **SAMPLE_ALL)
    # The builder's pretrained-backbone path (is_trained: FrozenBatchNorm2d, trainable layers 3) with the
    # backbone built without its ImageNet download.
    real_mobilenet, real_resnet = faster_rcnn.mobilenet_v3_large, faster_rcnn.resnet50

    def offline(real, weights=None, progress=True, **kwargs):
        return real(weights=None, progress=progress, **kwargs)

    faster_rcnn.mobilenet_v3_large = partial(offline, real_mobilenet)
    faster_rcnn.resnet50 = partial(offline, real_resnet)
    try:
        return builder(weights=None, weights_backbone="DEFAULT", num_classes=num_classes, **SAMPLE_ALL)
    finally:
        faster_rcnn.mobilenet_v3_large, faster_rcnn.resnet50 = real_mobilenet, real_resnet


def calibrate(model, g):
    """Batch-norm statistics from image-like inputs (cumulative average over 3 batches)."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        for _ in range(3):
            x = torch.stack([synth_image(256, 320, g)[0] for _ in range(2)])
            model.backbone((x - MEAN) / STD)
    model.eval()


def make_model(name, seed, num_classes, pretrained_backbone, cls_scale, rpn_scale):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(100 + seed)
    model = build(name, num_classes, False)
    calibrate(model, g)
    if pretrained_backbone:
        # FrozenBatchNorm2d has no statistics to calibrate: take the calibrated BatchNorm2d ones.
        frozen = build(name, num_classes, True)
        frozen.load_state_dict(model.state_dict())
        model = frozen
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.weight.mul_(cls_scale)
        model.roi_heads.box_predictor.bbox_pred.weight.mul_(cls_scale)
        model.rpn.head.cls_logits.weight.mul_(rpn_scale)
    model.eval()
    return model


def check_detections(name, detections):
    for i, d in enumerate(detections):
        scores = d["scores"]
        distinct = len(torch.unique(scores))
        gap = (scores[:-1] - scores[1:]).min().item() if len(scores) > 1 else float("nan")
        print(f"{name} image{i}: {len(scores)} detections, {distinct} distinct scores, "
              f"{len(torch.unique(d['labels']))} labels, smallest score gap {gap:.2e}")
        if len(scores) == 0 or distinct != len(scores):
            sys.exit(f"{name} image{i}: degenerate reference (no detections or tied scores); recalibrate")


def make_case(out_dir, name, images, boxes):
    seed, num_classes, pretrained_backbone, cls_scale, rpn_scale = CASES[name]
    model = make_model(name, seed, num_classes, pretrained_backbone, cls_scale, rpn_scale)
    case_dir = os.path.join(out_dir, name)
    os.makedirs(case_dir, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(case_dir, "weights.pth"))

    io = {}
    with torch.no_grad():
        detections = model(images)
    check_detections(name, detections)
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
        print(f"{name} {key} = {value.item():.6f}")
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
    for name in wanted:
        make_case(out_dir, name, list(images), list(boxes))


if __name__ == "__main__":
    main()
