#!/usr/bin/env python3
"""The reference side of bench/eval.sh: pycocotools' COCOeval (bbox) on the synthetic data that
`eval_bench --write-json DIR` wrote (DIR/gt.json, DIR/results.json). Prints one JSON line: load and evaluation
seconds (evaluate + accumulate + summarize, one run: pycocotools takes tens of seconds), the twelve numbers,
and their largest difference from vigil's (DIR/vigil.json). Without pycocotools it prints {"absent": ...}.

Usage: /usr/bin/python3 bench/eval_ref.py DIR
"""

import contextlib
import io
import json
import os
import sys
import time


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    work = sys.argv[1]
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        print(json.dumps({"absent": f"pycocotools is not importable by {sys.executable}"}))
        return 0
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        gt = COCO(os.path.join(work, "gt.json"))
        dt = gt.loadRes(os.path.join(work, "results.json"))
        t1 = time.perf_counter()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        t2 = time.perf_counter()
    stats = [float(s) for s in ev.stats]
    out = {"load_seconds": t1 - t0, "eval_seconds": t2 - t1, "stats": stats}
    vigil_path = os.path.join(work, "vigil.json")
    if os.path.exists(vigil_path):
        with open(vigil_path) as f:
            vigil = json.load(f)["stats"]
        out["max_abs_diff"] = max(abs(a - b) for a, b in zip(stats, vigil))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
