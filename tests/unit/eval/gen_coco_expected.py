#!/usr/bin/env python3
"""Builds the hand-made COCO cases that tests/unit/eval/coco_eval_test.cpp derives by hand, writes them to
coco_cases.json beside this script and, when pycocotools is importable, evaluates every case with pycocotools
and writes coco_cases_expected.json (the twelve summary numbers and the per-class AP), which the C++ test then
compares against to 1e-6.

Usage: /usr/bin/python3 tests/unit/eval/gen_coco_expected.py
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def ann(image_id, category_id, bbox, area=None, iscrowd=0):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox,
            "area": bbox[2] * bbox[3] if area is None else area, "iscrowd": iscrowd}


def res(image_id, category_id, bbox, score):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def case(name, images, categories, annotations, results):
    for i, a in enumerate(annotations):
        a["id"] = i + 1  # pycocotools reads annotation id 0 as "no match"
    return {"name": name,
            "gt": {"images": [{"id": i} for i in images],
                   "categories": [{"id": c, "name": n} for c, n in categories],
                   "annotations": annotations},
            "results": results}


def many_dets_results():
    """105 detections in one image: rank 50 hits GT a, rank 102 (past maxDets 100) would hit GT b."""
    out = []
    for rank in range(105):
        score = round(1 - 0.005 * rank, 3)
        if rank == 50:
            box = [0, 0, 10, 10]
        elif rank == 102:
            box = [20, 0, 10, 10]
        else:
            box = [100 + 12 * (rank % 10), 100 + 12 * (rank // 10), 10, 10]
        out.append(res(1, 1, box, score))
    return out


def build_cases():
    return [
        case("multiclass", [1, 2, 3, 4], [(1, "cat"), (2, "dog"), (3, "bird")],
             [ann(1, 1, [0, 0, 100, 100]), ann(1, 2, [200, 200, 50, 50]), ann(2, 1, [10, 10, 20, 20])],
             [res(1, 1, [0, 0, 100, 100], 0.9), res(1, 2, [200, 200, 50, 50], 0.8),
              res(1, 2, [0, 0, 100, 100], 0.95), res(3, 1, [0, 0, 10, 10], 0.7), res(3, 3, [0, 0, 5, 5], 0.9)]),
        case("crowd", [1], [(1, "person")],
             [ann(1, 1, [0, 0, 10, 10]), ann(1, 1, [20, 0, 40, 40], iscrowd=1)],
             [res(1, 1, [20, 0, 10, 10], 0.95), res(1, 1, [30, 10, 10, 10], 0.9), res(1, 1, [0, 0, 10, 10], 0.8),
              res(1, 1, [0, 0, 10, 10], 0.7), res(1, 1, [15, 0, 10, 10], 0.6)]),
        case("ties", [7, 3], [(1, "a")],
             [ann(3, 1, [0, 0, 10, 10]), ann(7, 1, [0, 0, 10, 10])],
             [res(7, 1, [50, 50, 10, 10], 0.5), res(7, 1, [0, 0, 10, 10], 0.5), res(3, 1, [0, 0, 10, 10], 0.5)]),
        case("area_boundary", [1], [(1, "a")],
             [ann(1, 1, [0, 0, 32, 32], 1024), ann(1, 1, [100, 100, 96, 96], 9216),
              ann(1, 1, [300, 300, 33, 33], 1089)],
             [res(1, 1, [0, 0, 32, 32], 0.9), res(1, 1, [100, 100, 96, 96], 0.8)]),
        case("many_dets", [1], [(1, "a")],
             [ann(1, 1, [0, 0, 10, 10]), ann(1, 1, [20, 0, 10, 10])], many_dets_results()),
        case("empty", [1, 2], [(1, "a"), (2, "b")], [], [res(1, 1, [0, 0, 10, 10], 0.5)]),
    ]


def write_cases(cases, path):
    """One annotation or result per line: small diffs, still valid JSON."""
    def objs(items):
        return "[" + ",".join("\n      " + json.dumps(x, separators=(",", ":")) for x in items) + "]"
    parts = []
    for c in cases:
        gt = c["gt"]
        parts.append(
            '  {"name": %s,\n   "gt": {"images": %s,\n          "categories": %s,\n          "annotations": %s},\n'
            '   "results": %s}' % (json.dumps(c["name"]), json.dumps(gt["images"], separators=(",", ":")),
                                   json.dumps(gt["categories"], separators=(",", ":")),
                                   objs(gt["annotations"]), objs(c["results"])))
    with open(path, "w") as f:
        f.write('{"cases": [\n' + ",\n".join(parts) + "\n]}\n")


def pycocotools_expected(cases):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = {}
    for c in cases:
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = json.loads(json.dumps(c["gt"]))
            gt.createIndex()
            dt = gt.loadRes(json.loads(json.dumps(c["results"])))
            ev = COCOeval(gt, dt, "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        precision = ev.eval["precision"]  # [T, R, K, A, M]
        per_class = []
        for k in range(precision.shape[2]):
            p = precision[:, :, k, 0, -1]
            p = p[p > -1]
            per_class.append(float(p.mean()) if p.size else -1.0)
        out[c["name"]] = {"stats": [float(s) for s in ev.stats], "ap_per_class": per_class}
    return out


def main():
    cases = build_cases()
    write_cases(cases, os.path.join(HERE, "coco_cases.json"))
    try:
        import pycocotools  # noqa: F401
    except ImportError:
        print("pycocotools is not importable: wrote coco_cases.json only; coco_cases_expected.json unchanged",
              file=sys.stderr)
        return 0
    expected = pycocotools_expected(cases)
    with open(os.path.join(HERE, "coco_cases_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print("wrote coco_cases.json and coco_cases_expected.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
