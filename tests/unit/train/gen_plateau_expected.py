#!/usr/bin/python3
"""Writes plateau_cases.json beside this script: metric sequences stepped through PyTorch's
torch.optim.lr_scheduler.ReduceLROnPlateau with several settings, and the learning rate after each epoch.
The C++ test (plateau_test.cpp) steps vigil's PlateauReducer through the same sequences and compares.

Usage: /usr/bin/python3 tests/unit/train/gen_plateau_expected.py   (python3-torch)
"""
import json
import math
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# A validation loss that improves, stalls, wobbles within the threshold and improves again; an accuracy that
# plateaus; a sequence with NaN epochs (a validation that failed); one that reaches min_lr.
LOSS = [1.0, 0.8, 0.7, 0.7, 0.69995, 0.71, 0.72, 0.65, 0.65, 0.66, 0.67, 0.68, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
ACC = [0.5, 0.6, 0.6, 0.61, 0.61, 0.6, 0.62, 0.62, 0.62, 0.62, 0.7, 0.7, 0.7, 0.7, 0.7]
NANS = [1.0, float("nan"), 0.9, float("nan"), float("nan"), float("nan"), 0.95, 0.8]
FLAT = [1.0] * 20

CASES = [
    ("loss_defaults_patience2", LOSS, dict(mode="min", patience=2)),
    ("loss_rel_threshold_counts_tiny_gain_as_bad", LOSS, dict(mode="min", patience=1, threshold=1e-3)),
    ("loss_abs_threshold", LOSS, dict(mode="min", patience=1, threshold=0.02, threshold_mode="abs")),
    ("loss_cooldown", LOSS, dict(mode="min", patience=0, factor=0.5, cooldown=2)),
    ("accuracy_max_mode", ACC, dict(mode="max", patience=1, factor=0.5)),
    ("accuracy_max_abs", ACC, dict(mode="max", patience=0, factor=0.2, threshold=0.01, threshold_mode="abs")),
    ("nan_epochs_are_bad", NANS, dict(mode="min", patience=1, factor=0.5)),
    ("flat_stops_at_min_lr", FLAT, dict(mode="min", patience=0, factor=0.5, min_lr=0.01)),
    ("keras_like_mask_seed", LOSS, dict(mode="min", patience=2, factor=0.2, threshold=1e-4,
                                        threshold_mode="abs", min_lr=1e-5)),
]


def run(metrics, kw, base_lr=0.1):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base_lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    lrs = []
    for m in metrics:
        sched.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def main():
    out = []
    for name, metrics, kw in CASES:
        full = dict(factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0.0)
        full.update(kw)
        out.append({
            "name": name,
            "options": full,
            "base_lr": 0.1,
            "metrics": [None if math.isnan(m) else m for m in metrics],
            "lr": run(metrics, kw),
        })
    with open(os.path.join(HERE, "plateau_cases.json"), "w") as f:
        json.dump({"torch": torch.__version__, "cases": out}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
