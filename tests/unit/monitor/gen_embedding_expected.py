#!/usr/bin/python3
"""Writes embedding_cases.json beside this script: pairs of embedding sets (16 numbers per image, as vigil
logs them) and what Evidently's embedding drift methods compute on them without bootstrap, re-stated with
numpy/scipy (evidently/metrics/data_drift/embedding_drift_methods.py; Evidently is not a Debian package):

  distance: scipy.spatial.distance.euclidean between the two mean embeddings;
  mmd:      MMD2u with sklearn's rbf kernel exp(-gamma |a-b|^2), gamma = 1 / median(pairwise distances
            reference x current)^2 (every row: the sets here have fewer than 1000 rows, so Evidently's
            .sample(1000) is a permutation and the median is the same);
  ratio:    per component scipy.stats.wasserstein_distance / the reference's population std (at least 0.001),
            drifted at >= 0.1; the score is the drifted share;
  roc_auc:  sklearn.metrics.roc_auc_score re-stated as the Mann-Whitney U with mid-ranks for ties
            (scipy.stats.rankdata), on fixed scores;
  percentile: numpy.percentile (linear).

The C++ test (embedding_drift_test.cpp) computes the same numbers and compares to 1e-9.

Usage: /usr/bin/python3 tests/unit/monitor/gen_embedding_expected.py   (python3-scipy, python3-numpy)
"""
import json
import os

import numpy as np
from scipy import stats
from scipy.spatial import distance

HERE = os.path.dirname(os.path.abspath(__file__))
DIMS = 16


def mmd2u(x, y):
    d = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    gamma = 1.0 / np.median(d) ** 2
    xy = np.vstack([x, y])
    k = np.exp(-gamma * ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    m, n = len(x), len(y)
    kx, ky, kxy = k[:m, :m], k[m:, m:], k[:m, m:]
    return (
        1.0 / (m * (m - 1.0)) * (kx.sum() - kx.diagonal().sum())
        + 1.0 / (n * (n - 1.0)) * (ky.sum() - ky.diagonal().sum())
        - 2.0 / (m * n) * kxy.sum()
    ), gamma


def ratio(x, y):
    drifted = 0
    for k in range(x.shape[1]):
        w = stats.wasserstein_distance(x[:, k], y[:, k]) / max(np.std(x[:, k]), 0.001)
        drifted += w >= 0.1
    return drifted / x.shape[1]


def auc(scores, labels):
    r = stats.rankdata(scores)
    p = labels.sum()
    n = len(labels) - p
    return (r[labels == 1].sum() - p * (p + 1) / 2) / (p * n)


def main():
    rng = np.random.default_rng(20261206)
    base = rng.normal(1.0, 0.5, size=(DIMS,))
    cases = []
    for name, n_ref, n_cur, shift, scale in [
        ("same", 120, 80, 0.0, 1.0),
        ("shifted", 150, 60, 0.6, 1.0),
        ("wider", 90, 90, 0.0, 2.5),
        ("small", 12, 7, 0.3, 1.0),
    ]:
        x = np.round(base + rng.normal(0, 1, size=(n_ref, DIMS)), 5)
        y = np.round(base + shift + rng.normal(0, scale, size=(n_cur, DIMS)), 5)
        m, gamma = mmd2u(x, y)
        cases.append({
            "name": name,
            "reference": x.tolist(),
            "current": y.tolist(),
            "distance": float(distance.euclidean(x.mean(axis=0), y.mean(axis=0))),
            "mmd2u": float(m),
            "gamma": float(gamma),
            "ratio": float(ratio(x, y)),
        })
    scores = np.round(rng.normal(size=40), 1)  # rounded: ties
    labels = (rng.random(40) < 0.4).astype(int)
    values = rng.normal(size=23)
    doc = {
        "generator": "gen_embedding_expected.py",
        "numpy": np.__version__,
        "cases": cases,
        "auc": {"scores": scores.tolist(), "labels": labels.tolist(), "expected": float(auc(scores, labels))},
        "percentile": {"values": values.tolist(),
                       "q": [0.05, 0.5, 0.95, 1.0],
                       "expected": [float(np.percentile(values, 100 * q)) for q in [0.05, 0.5, 0.95, 1.0]]},
    }
    with open(os.path.join(HERE, "embedding_cases.json"), "w") as f:
        json.dump(doc, f)
        f.write("\n")


if __name__ == "__main__":
    main()
