#!/usr/bin/env bash
# Side by side: COCO box evaluation of the same synthetic 5,000 images x 100 detections (5 classes, seeded) by
# vigil (coco_evaluate, all cores) and by pycocotools (COCOeval bbox), one after the other on this machine.
# Prints both timings, the ratio (> 1 = vigil ahead) and the largest difference between the twelve numbers.
# The machines are shared and noisy: compare ratios within one run, not absolute times.
#
# Usage: bench/eval.sh [build-dir]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
bench="$build/bench/eval_bench"
python=/usr/bin/python3
[[ -x "$bench" ]] || { echo "no $bench: build first (cmake --build $build --target eval_bench)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bench" --write-json "$work" >/dev/null
ref="$("$python" "$here/eval_ref.py" "$work")"

"$python" - "$work/vigil.json" "$ref" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
r = json.loads(sys.argv[2])
print(f"{v['images']} images, {v['detections']} detections, {v['ground_truth']} ground-truth boxes")
print(f"{'':12} {'load s':>8} {'eval s':>8}")
print(f"{'vigil':12} {v['load_seconds']:8.2f} {v['eval_seconds']:8.3f}   (best of 3)")
if "absent" in r:
    print(f"{'pycocotools':12} absent: {r['absent']} (apt has no python3-pycocotools; pip install pycocotools)")
    sys.exit(0)
print(f"{'pycocotools':12} {r['load_seconds']:8.2f} {r['eval_seconds']:8.3f}   (one run)")
print(f"ratio (pycocotools / vigil): eval {r['eval_seconds'] / v['eval_seconds']:.1f}x, "
      f"load + eval {(r['load_seconds'] + r['eval_seconds']) / (v['load_seconds'] + v['eval_seconds']):.1f}x")
print(f"largest difference of the twelve numbers: {r['max_abs_diff']:.2e}")
PY
