"""The Python torchvision side of bench/models.sh: writes the shared weights and inputs, and times torchvision on
them exactly as bench/model_timer.cpp times vigil.

Usage:
  models_ref.py prepare DIR ARCH          -> DIR/ARCH/weights.pth (published-style state_dict) + DIR/ARCH/inputs.pt
  models_ref.py time DIR ARCH --threads T [--iters N] [--train-iters M]
                                          -> one JSON line: infer_b1_ms, infer_b8_ms (medians), train_img_s

Inputs: classifiers get 8 normalised image-like tensors at the architecture's input size and 8 labels;
detectors get 8 RGB images in 0..1 of 480x640 (the transform resizes them like any photo) with two boxes each.
Training step: SGD (lr 0.001, momentum 0.9, the seeds'), batch 8 for classifiers and 2 for detectors.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torchvision
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))
from gen_classifiers import MaskSmallCnn, image_like  # noqa: E402

DETECTORS = ("fasterrcnn_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn")
DET_TRAIN_BATCH = 2
CLS_BATCH = 8


def is_detector(arch):
    return arch in DETECTORS


def build(arch):
    if arch == "mask_small_cnn":
        return MaskSmallCnn(2)
    if is_detector(arch):
        return getattr(torchvision.models.detection, arch)(weights=None, weights_backbone=None)
    return getattr(torchvision.models, arch)(weights=None)


def prepare(directory, arch):
    torch.manual_seed(0)
    model = build(arch)
    out = os.path.join(directory, arch)
    os.makedirs(out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(out, "weights.pth"))
    inputs = {}
    if is_detector(arch):
        images = image_like(8, 480, 640, normalize=False)
        for i in range(8):
            inputs[f"image{i}"] = images[i].contiguous()
            inputs[f"boxes{i}"] = torch.tensor([[40.0 + 10 * i, 60.0, 260.0, 300.0], [300.0, 100.0, 600.0, 420.0]])
            inputs[f"labels{i}"] = torch.tensor([1 + i % 5, 7], dtype=torch.int64)
    else:
        side = 100 if arch == "mask_small_cnn" else 224
        inputs["images"] = image_like(8, side, side, normalize=arch != "mask_small_cnn")
        inputs["labels"] = torch.arange(8, dtype=torch.int64) % 2
    torch.save(inputs, os.path.join(out, "inputs.pt"))


def median_ms(fn, iters):
    fn()  # warm-up: first-call allocations and lazy initialisation
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def time_arch(directory, arch, iters, train_iters):
    out = os.path.join(directory, arch)
    model = build(arch)
    model.load_state_dict(torch.load(os.path.join(out, "weights.pth")))
    inputs = torch.load(os.path.join(out, "inputs.pt"))
    det = is_detector(arch)
    if det:
        images = [inputs[f"image{i}"] for i in range(8)]
        targets = [{"boxes": inputs[f"boxes{i}"], "labels": inputs[f"labels{i}"]} for i in range(8)]
        batch1, batch8 = images[:1], images
    else:
        batch1, batch8 = inputs["images"][:1], inputs["images"]

    model.eval()
    with torch.no_grad():
        b1 = median_ms(lambda: model(batch1), iters)
        b8 = median_ms(lambda: model(batch8), max(1, iters // 2))

    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        if det:
            losses = model(images[:DET_TRAIN_BATCH], targets[:DET_TRAIN_BATCH])
            loss = sum(losses.values())
        else:
            loss = loss_fn(model(inputs["images"]), inputs["labels"])
        loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(train_iters):
        step()
    elapsed = time.perf_counter() - start
    batch = DET_TRAIN_BATCH if det else CLS_BATCH
    return {"arch": arch, "infer_b1_ms": b1, "infer_b8_ms": b8, "train_img_s": batch * train_iters / elapsed}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["prepare", "time"])
    parser.add_argument("dir")
    parser.add_argument("arch")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--train-iters", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "prepare":
        prepare(args.dir, args.arch)
    else:
        print(json.dumps(time_arch(args.dir, args.arch, args.iters, args.train_iters)))


if __name__ == "__main__":
    main()
