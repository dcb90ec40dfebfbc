"""Reference weights and predictions for tests/integration/predict_cli_test.cpp, from torchvision 0.14.

Usage:
  gen_predict_fixtures.py classifier OUT_DIR IMAGE.png ...
  gen_predict_fixtures.py detector OUT_DIR IMAGE.png ...

classifier: a seeded mobilenet_v3_small with 3 classes -> OUT_DIR/weights.pth (torch.save of the state_dict,
the OrderedDict-with-_metadata form published torchvision files have) and OUT_DIR/expected.json mapping each
image's file name to the softmax probabilities torchvision gives it. The PNGs are already the classifier's
input size (the test resizes them with OpenCV as vigil's loader does), so the preprocessing here is exactly
vigil's: RGB, /255, ImageNet mean/std.

detector: a seeded fasterrcnn_mobilenet_v3_large_320_fpn with 3 classes (background + 2) -> weights.pth and
expected.json mapping each file name to {"boxes", "scores", "labels"} with box_score_thresh 0 (every box kept).
The images go in at their own size: torchvision's transform resizes and normalises inside, as vigil's does.

Random weights give near-constant outputs and tied scores (DESIGN.md section 6), so batch-norm statistics are
calibrated on image-like inputs first (train mode, momentum=None, no_grad) and the last layers are scaled up.
"""
import json
import os
import sys

import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.transforms import functional as F

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def image_like(n, h, w):
    """Smooth random images in [0, 1]: low-resolution noise upsampled, plus a little fine noise."""
    coarse = torch.rand(n, 3, max(2, h // 16), max(2, w // 16))
    x = nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return (0.85 * x + 0.15 * torch.rand(n, 3, h, w)).clamp(0, 1)


def calibrate_batch_norm(module, batches):
    module.train()
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        for x in batches:
            module(x)
    module.eval()


def load_rgb(path):
    return F.to_tensor(Image.open(path).convert("RGB"))


def classifier(out_dir, images):
    torch.manual_seed(5)
    model = torchvision.models.mobilenet_v3_small(weights=None, num_classes=3)
    calibrate_batch_norm(model, [(image_like(4, 224, 224) - MEAN) / STD for _ in range(3)])
    with torch.no_grad():
        model.classifier[0].weight.mul_(5.0)
        model.classifier[3].weight.mul_(20.0)
    torch.save(model.state_dict(), os.path.join(out_dir, "weights.pth"))
    expected = {}
    with torch.no_grad():
        for path in images:
            x = (load_rgb(path).unsqueeze(0) - MEAN) / STD
            expected[os.path.basename(path)] = torch.softmax(model(x), 1)[0].tolist()
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f)


def detector(out_dir, images):
    torch.manual_seed(5)
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=3, box_score_thresh=0.0)
    # The backbone sees normalised images at the transform's size (320 for the short side).
    calibrate_batch_norm(model.backbone, [(image_like(2, 320, 416) - MEAN) / STD for _ in range(3)])
    with torch.no_grad():
        predictor = model.roi_heads.box_predictor
        predictor.cls_score.weight.mul_(30.0)
        predictor.bbox_pred.weight.mul_(5.0)
    model.eval()
    torch.save(model.state_dict(), os.path.join(out_dir, "weights.pth"))
    expected = {}
    with torch.no_grad():
        for path in images:
            out = model([load_rgb(path)])[0]
            expected[os.path.basename(path)] = {"boxes": out["boxes"].tolist(), "scores": out["scores"].tolist(),
                                                "labels": out["labels"].tolist()}
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f)


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("classifier", "detector"):
        sys.exit(__doc__)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(sys.argv[2], exist_ok=True)
    {"classifier": classifier, "detector": detector}[sys.argv[1]](sys.argv[2], sys.argv[3:])


if __name__ == "__main__":
    main()
