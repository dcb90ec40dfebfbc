"""A small seeded detector for the browser test (tests/e2e/run.sh), from Debian's python3-torchvision.

Usage: gen_model.py OUT.pth

A fasterrcnn_mobilenet_v3_large_320_fpn with 3 classes (background + 2) and random weights, saved as torchvision
publishes weights (the state_dict's OrderedDict); `vigil weights import` turns it into a model file.

Default initialisation gives near-constant scores (DESIGN.md section 6), so the batch-norm statistics are
calibrated on image-like inputs, as tests/integration/gen_predict_fixtures.py does. Unlike that parity fixture,
the classifier head is not scaled up: its scores stay spread between about 0.3 and 0.6 instead of saturating at
1.0, so the UI's threshold slider shows a readable handful of boxes around 0.5 and hides them all at 1.
"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from gen_predict_fixtures import MEAN, STD, calibrate_batch_norm, image_like  # noqa: E402


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    torch.manual_seed(5)
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=3)
    calibrate_batch_norm(model.backbone, [(image_like(2, 320, 416) - MEAN) / STD for _ in range(3)])
    model.eval()
    torch.save(model.state_dict(), sys.argv[1])


if __name__ == "__main__":
    main()
