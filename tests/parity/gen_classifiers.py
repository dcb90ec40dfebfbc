"""Reference logits for tests/parity/classifiers_test.cpp, from torchvision 0.14 (Debian's python3-torchvision).

Usage: gen_classifiers.py OUT_DIR [CASE ...]   (CASE = arch:num_classes, default: every case below)

For each case, OUT_DIR/<arch>_<num_classes>/state holds the model's state_dict (keys = torchvision's names) and
OUT_DIR/<arch>_<num_classes>/io holds input0/input1 and the eval-mode logits0/logits1.

Random weights give near-degenerate outputs, so (DESIGN.md section 6) batch-norm statistics are calibrated on
image-like inputs first (train mode, momentum=None, 3 batches, no_grad) and the last Linear layer's weights are
(and MobileNetV3's hidden Linear) scaled up, so logits differ clearly between classes and a strict comparison means something.
"""
import os
import sys

import torch
import torchvision
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tensor_io import save_tensors  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

CASES = [("mobilenet_v2", 1000), ("mobilenet_v2", 2), ("mobilenet_v3_large", 1000), ("mobilenet_v3_large", 2),
         ("mobilenet_v3_small", 1000), ("mobilenet_v3_small", 2), ("resnet18", 1000), ("resnet18", 2),
         ("resnet50", 1000), ("resnet50", 2), ("mask_small_cnn", 2), ("mask_small_cnn", 3)]


class MaskSmallCnn(nn.Module):
    """Same layers and parameter names as vigil::nn::SmallCnn (include/vigil/nn/classification/small_cnn.h)."""

    def __init__(self, num_classes=2):
        super().__init__()
        layers = []
        for cin, cout in [(3, 32), (32, 64), (64, 128)]:
            layers += [nn.Conv2d(cin, cout, 3), nn.ReLU(inplace=True), nn.BatchNorm2d(cout), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(128 * 10 * 10, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True),
                                        nn.Dropout(0.5), nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def image_like(n, h, w, normalize=True):
    """Smooth random images in [0, 1] (low-resolution noise upsampled, plus fine noise), normalised."""
    coarse = torch.rand(n, 3, max(2, h // 16), max(2, w // 16))
    x = nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    x = (0.85 * x + 0.15 * torch.rand(n, 3, h, w)).clamp(0, 1)
    return (x - MEAN) / STD if normalize else x


def build(arch, num_classes):
    if arch == "mask_small_cnn":
        return MaskSmallCnn(num_classes)
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)


def linears_to_scale(model):
    # mask_small_cnn's first Linear feeds a calibrated BatchNorm1d, so only its last one is scaled.
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1:] if isinstance(model, MaskSmallCnn) else linears


def make_case(out_dir, arch, num_classes, seed):
    torch.manual_seed(seed)
    model = build(arch, num_classes)
    side = (100, 100) if arch == "mask_small_cnn" else (224, 224)
    second = (100, 100) if arch == "mask_small_cnn" else (200, 256)
    normalize = arch != "mask_small_cnn"
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        for _ in range(3):
            model(image_like(4, *side, normalize))
        for linear in linears_to_scale(model):
            linear.weight.mul_(20.0)
    model.eval()
    inputs = [image_like(2, *side, normalize), image_like(2, *second, normalize)]
    io = {}
    with torch.no_grad():
        for i, x in enumerate(inputs):
            logits = model(x)
            io[f"input{i}"] = x
            io[f"logits{i}"] = logits
            print(f"{arch}:{num_classes} input{i} {tuple(x.shape)} logits std {logits.std().item():.4f}")
    case_dir = os.path.join(out_dir, f"{arch}_{num_classes}")
    save_tensors(os.path.join(case_dir, "state"), model.state_dict())
    save_tensors(os.path.join(case_dir, "io"), io)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    wanted = sys.argv[2:]
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for k, (arch, num_classes) in enumerate(CASES):
        if not wanted or f"{arch}:{num_classes}" in wanted:
            make_case(out_dir, arch, num_classes, seed=k + 1)


if __name__ == "__main__":
    main()
