#!/usr/bin/env python3
"""Cross-checks the hand-derived expectations of classification_metrics_test.cpp against scikit-learn.

Run: /usr/bin/python3 tests/unit/eval/gen_classification_expected.py   (needs python3-sklearn, numpy)

Prints every metric the C++ test asserts, for the same hand-built cases. sklearn has no ECE, so it is
computed here with numpy over 15 bins (lower, upper] of the top-1 probability, the first bin also taking 0.
Differences from sklearn that the C++ code documents: the multi-class macro AUC leaves out classes with an
undefined AUC (sklearn raises), and log loss clips at 1e-15 without renormalising.
"""
import json
import math

import numpy as np
from sklearn.metrics import (accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support,
                             roc_auc_score, roc_curve, top_k_accuracy_score)

CASES = {
    "binary": (["neg", "pos"], [
        (1, [0.1, 0.9]), (0, [0.2, 0.8]), (0, [0.3, 0.7]),
        (1, [0.6, 0.4]), (0, [0.6, 0.4]), (0, [0.8, 0.2]),
    ]),
    "three_class": (["cat", "dog", "bird"], [
        (0, [0.7, 0.2, 0.1]), (0, [0.3, 0.6, 0.1]), (1, [0.2, 0.5, 0.3]), (1, [0.3, 0.1, 0.6]),
        (2, [0.2, 0.2, 0.6]), (2, [0.2, 0.5, 0.3]), (0, [0.8, 0.1, 0.1]),
    ]),
    "absent_class": (["cat", "dog", "bird"], [
        (0, [0.8, 0.1, 0.1]), (0, [0.2, 0.2, 0.6]), (1, [0.3, 0.6, 0.1]), (1, [0.6, 0.3, 0.1]),
    ]),
    "ece4": (["neg", "pos"], [
        (1, [0.1, 0.9]), (0, [0.1, 0.9]), (0, [0.55, 0.45]), (1, [0.7, 0.3]),
    ]),
}


def ece(y, p, bins=15):
    conf = p.max(axis=1)
    pred = p.argmax(axis=1)
    edges = np.arange(bins + 1) / bins
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += abs((pred[sel] == y[sel]).mean() - conf[sel].mean()) * sel.sum() / len(y)
    return total


def ovr_auc(y, p, c):
    pos = y == c
    if pos.all() or not pos.any():
        return None
    return roc_auc_score(pos.astype(int), p[:, c])


def run(classes, samples):
    y = np.array([s[0] for s in samples])
    p = np.array([s[1] for s in samples], dtype=np.float64)
    labels = list(range(len(classes)))
    pred = p.argmax(axis=1)
    out = {"accuracy": accuracy_score(y, pred)}
    pr, rc, f1, sup = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    for i, name in enumerate(classes):
        out[f"precision/{name}"], out[f"recall/{name}"] = pr[i], rc[i]
        out[f"f1/{name}"], out[f"support/{name}"] = f1[i], int(sup[i])
    for avg in ("macro", "weighted"):
        a = precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)
        out[f"{avg}/precision"], out[f"{avg}/recall"], out[f"{avg}/f1"] = a[0], a[1], a[2]
    out["confusion"] = confusion_matrix(y, pred, labels=labels).tolist()
    if len(classes) == 2:
        out["auc"] = roc_auc_score(y, p[:, 1])
        fpr, tpr, th = roc_curve(y, p[:, 1], drop_intermediate=False)
        out["roc/pos"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": th[1:].tolist()}
    else:
        aucs = [ovr_auc(y, p, c) for c in labels]
        for name, a in zip(classes, aucs):
            out[f"auc/{name}"] = a
        defined = [a for a in aucs if a is not None]
        out["auc/macro(defined classes)"] = sum(defined) / len(defined)
        if all(a is not None for a in aucs):
            out["auc/macro(sklearn ovr)"] = roc_auc_score(y, p, multi_class="ovr", average="macro")
        for k in (2, 3):
            out[f"top{k}_accuracy"] = top_k_accuracy_score(y, p, k=k, labels=labels)
        fpr, tpr, th = roc_curve((y == 0).astype(int), p[:, 0], drop_intermediate=False)
        out[f"roc/{classes[0]}"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": th[1:].tolist()}
    out["log_loss"] = -np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1 - 1e-15)))
    out["log_loss(sklearn)"] = log_loss(y, p, labels=labels)
    out["ece"] = ece(y, p)
    return out


def main():
    result = {name: run(*case) for name, case in CASES.items()}
    print(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
