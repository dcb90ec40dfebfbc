#!/usr/bin/python3
"""Writes drift_cases.json beside this script: samples and what scipy (and Evidently's definitions on top of
it, re-stated here with numpy/scipy because Evidently itself is not a Debian package) says about them. The C++
test (drift_tests_test.cpp) computes the same numbers and compares.

Evidently's parts re-stated (evidently/calculations/stattests/{registry,utils,psi,jensenshannon,z_stattest,
chisquare_stattest,wasserstein_distance_norm}.py): the automatic choice of test by reference size and distinct
values; get_binned_data (numpy "sturges" bins over both samples when the reference has more than 20 distinct
numbers, else counts per value; empty bins filled for PSI); thresholds 0.05 (p-values) and 0.1 (distances).

Usage: /usr/bin/python3 tests/unit/monitor/gen_drift_expected.py   (python3-scipy, python3-numpy)
"""
import json
import os

import numpy as np
from scipy import stats
from scipy.spatial import distance

HERE = os.path.dirname(os.path.abspath(__file__))


def binned(ref, cur, numerical, fill):
    if numerical and len(np.unique(ref)) > 20:
        bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        r = np.histogram(ref, bins)[0] / len(ref)
        c = np.histogram(cur, bins)[0] / len(cur)
    else:
        keys = sorted(set(map(str, ref)) | set(map(str, cur)))
        rs, cs = list(map(str, ref)), list(map(str, cur))
        r = np.array([rs.count(k) / len(rs) for k in keys])
        c = np.array([cs.count(k) / len(cs) for k in keys])
    if fill:
        for a in (r, c):
            m = min(a[a != 0])
            np.place(a, a == 0, m / 10**6 if m <= 0.0001 else 0.0001)
    return r, c


def chi_p(ref, cur):
    rs, cs = list(map(str, ref)), list(map(str, cur))
    keys = sorted(set(rs) | set(cs))
    k = len(cs) / len(rs)
    return float(stats.chisquare([cs.count(x) for x in keys], [rs.count(x) * k for x in keys])[1])


def z_p(ref, cur):
    rs, cs = list(map(str, ref)), list(map(str, cur))
    keys = sorted(set(rs) | set(cs))
    if len(keys) == 1:
        return 1.0
    a = np.array([0 if x == keys[0] else 1 for x in rs])
    b = np.array([0 if x == keys[0] else 1 for x in cs])
    n1, n2 = len(a), len(b)
    p1, p2 = a.sum() / n1, b.sum() / n2
    P = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(P * (1 - P) * (1.0 / n1 + 1.0 / n2))
    return float(2 * stats.norm.sf(abs(z)))


def default_test(numerical, ref, cur):
    n_values = len(set(map(str, ref)) | set(map(str, cur)))
    few = (not numerical) or n_values <= 5
    if len(ref) <= 1000:
        return ("chisquare" if n_values > 2 else "z") if few else "ks"
    return "jensenshannon" if few else "wasserstein"


def numerical_case(name, ref, cur):
    ref = np.round(np.asarray(ref, dtype=float), 4)
    cur = np.round(np.asarray(cur, dtype=float), 4)
    ks = stats.ks_2samp(ref, cur)
    r, c = binned(ref, cur, True, False)
    rf, cf = binned(ref, cur, True, True)
    out = {"name": name, "kind": "numerical", "reference": ref.tolist(), "current": cur.tolist(),
           "ks_statistic": float(ks.statistic), "ks_p": float(ks.pvalue),
           "wasserstein": float(stats.wasserstein_distance(ref, cur)),
           "wasserstein_normed": float(stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)),
           "jensenshannon": float(distance.jensenshannon(r, c, 2)),
           "psi": float(np.sum((rf - cf) * np.log(rf / cf))), "bins": len(r),
           "default_test": default_test(True, ref, cur)}
    return out


def categorical_case(name, ref, cur):
    r, c = binned(ref, cur, False, False)
    rf, cf = binned(ref, cur, False, True)
    return {"name": name, "kind": "categorical", "reference": list(ref), "current": list(cur),
            "chisquare_p": chi_p(ref, cur), "z_p": z_p(ref, cur),
            "jensenshannon": float(distance.jensenshannon(r, c, 2)),
            "psi": float(np.sum((rf - cf) * np.log(rf / cf))), "default_test": default_test(False, ref, cur)}


def main():
    rng = np.random.default_rng(7)
    cases = [
        numerical_case("normal_shifted_unequal_sizes", rng.normal(0, 1, 200), rng.normal(0.3, 1, 150)),
        numerical_case("normal_same_equal_sizes", rng.normal(5, 2, 120), rng.normal(5, 2, 120)),
        numerical_case("brightness_darker", rng.normal(120, 30, 400), rng.normal(95, 30, 90)),
        numerical_case("ties_integers", rng.integers(0, 10, 300), rng.integers(1, 11, 250)),
        numerical_case("tiny_samples", rng.normal(0, 1, 5), rng.normal(1, 1, 7)),
        numerical_case("large_reference_wasserstein", rng.normal(0, 1, 1500), rng.normal(0.15, 1, 1200)),
        numerical_case("few_values_numbers", rng.integers(0, 3, 300), rng.integers(0, 3, 200)),
        numerical_case("scores_beta", rng.beta(5, 2, 800), rng.beta(3, 2, 600)),
        numerical_case("constant", np.full(50, 2.0), np.full(40, 2.0)),
    ]
    labels = ["gun", "knife", "person"]
    cases += [
        categorical_case("classes_shift", list(rng.choice(labels, 300, p=[0.5, 0.2, 0.3])),
                         list(rng.choice(labels, 200, p=[0.3, 0.2, 0.5]))),
        categorical_case("classes_same", list(rng.choice(labels, 500, p=[0.5, 0.2, 0.3])),
                         list(rng.choice(labels, 400, p=[0.5, 0.2, 0.3]))),
        categorical_case("binary_masks", list(rng.choice(["with_mask", "without_mask"], 400, p=[0.6, 0.4])),
                         list(rng.choice(["with_mask", "without_mask"], 150, p=[0.45, 0.55]))),
        categorical_case("large_reference_js", list(rng.choice(labels, 1600, p=[0.5, 0.2, 0.3])),
                         list(rng.choice(labels, 700, p=[0.4, 0.3, 0.3]))),
    ]
    for c in cases:  # numpy types -> plain JSON
        for key in ("reference", "current"):
            c[key] = [str(x) if c["kind"] == "categorical" else float(x) for x in c[key]]
    gamma = [{"a": a, "x": x, "q": float(stats.chi2.sf(2 * x, 2 * a))}
             for a, x in [(0.5, 0.1), (0.5, 3.0), (1.0, 1.0), (2.5, 0.7), (4.0, 10.0), (10.0, 3.0), (30.0, 45.0)]]
    with open(os.path.join(HERE, "drift_cases.json"), "w") as f:
        json.dump({"cases": cases, "gamma_q": gamma}, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
