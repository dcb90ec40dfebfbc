#!/usr/bin/env bash
# Training at equal time, side by side with the seeds' Python recipes (../shared/bench/reference_train): the
# reference trains first with its wall-clock budget, then `vigil train` with `time:` set to the same budget on
# the *same* validation images (the reference's own list, through `vigil data split --val-list`; for accidents a
# clip-grouped split vigil makes and the reference reads), one after the other so neither shares the machine
# with the other. Prints both trainings' best validation figure and their
# training images per second, and the ratios.
#
#   masks:            reference: MobileNetV2 at 160 px from scratch, the mask seeds' recipe (Adam 1e-3, batch
#                     32, Keras-style augmentation, constant lr) on its own group-aware 10 % split. vigil:
#                     examples/train/masks_resnet18.yaml (ResNet-18 at 128 px, AdamW, cosine over the budget) on
#                     the same validation images. The issue's figure is 5 minutes: `train_quality.sh masks 5`.
#   accidents:        the same reference recipe at 160 px; vigil: examples/train/accidents_mobilenet_v2.yaml.
#                     The data's own train/val folders put frames of one clip on both sides (28 of 32 clips),
#                     so both train on a clip-grouped split instead: `vigil data split --group-clips --val 0.2`
#                     (a clip is the file name without its frame number: testN_M, N_M, accN (M)), handed to the
#                     reference as a tree of links in its train/ and val/ layout. SPLIT=folders keeps the
#                     data's own folders (the leaky split the seeds use).
#   guns:             Faster R-CNN MobileNetV3-Large-320-FPN from scratch, COCO AP / AP50. Reference: SGD 0.02
#                     with cosine over the budget (guns_train.py --opt sgd). vigil:
#                     examples/train/guns_frcnn_mobilenet_320.yaml. guns_train.py needs pycocotools, which
#                     Debian 12 does not package: without it (or PYCOCO_PATH), bench/pycocotools_vigil stands in
#                     and computes the reference's COCO AP with `vigil evaluate --gt --detections`.
#
# Usage: bench/train_quality.sh TASK [BUDGET_MIN] [OUT_DIR] [build-dir]
#   TASK: masks | accidents | guns; BUDGET_MIN defaults to the reference's (15 for masks/accidents, 45 guns).
#   env: VIGIL_SHARED (default ../shared next to the repository), PYTHON (default /usr/bin/python3),
#        REF_FROM=DIR reuses the reference result of an earlier OUT_DIR instead of training it again,
#        SETS="key=value ..." adds `--set` overrides to vigil's recipe (e.g. SETS="mixup=0.2").
# Time-budgeted figures are only comparable on an otherwise idle machine: the script prints the load average
# before each training; run nothing else meanwhile.
set -euo pipefail

task="${1:?usage: bench/train_quality.sh masks|accidents|guns [BUDGET_MIN] [OUT_DIR] [build-dir]}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
case "$task" in
  masks | accidents) budget="${2:-15}" ;;
  guns) budget="${2:-45}" ;;
  *) echo "unknown task '$task': expected masks, accidents or guns" >&2; exit 2 ;;
esac
out="${3:-$(mktemp -d)/train_quality_$task}"
build="${4:-$repo/build}"
vigil="$build/apps/vigil/vigil"
python="${PYTHON:-/usr/bin/python3}"
shared="${VIGIL_SHARED:-$(cd "$repo/.." && pwd)/shared}"
reference="$shared/bench/reference_train"
data="$shared/datasets/$task"

[[ -x "$vigil" ]] || { echo "no $vigil: build first (ninja -C $build vigil)" >&2; exit 2; }
[[ -d "$data" ]] || { echo "no $data: the $task dataset is not here" >&2; exit 2; }
[[ -d "$reference" ]] || { echo "no $reference: the reference recipes are not here" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
ws="$out/ws"
stamp() { echo "[$(date +%T)] $*" >&2; }

v() { "$vigil" --workspace "$ws" "$@"; }
format=imagefolder
[[ "$task" == guns ]] && format=guns
v data ingest "$data" --format "$format" --name "$task" >"$out/ingest.log" 2>&1

# --- accidents: one clip-grouped split for both -----------------------------------------------------------
ref_data="$data"
if [[ "$task" == accidents && "${SPLIT:-clips}" != folders ]]; then
  v data split accidents --group-clips --val 0.2 --seed 0 -o "$out/split" >"$out/split.log" 2>&1
  grep -m1 '^split ' "$out/split.log" >&2 || true
  # The reference reads DIR/{train,val}/<class>/: link each image there by the side vigil's split gave it.
  ref_data="$out/ref_data"
  rm -rf "$ref_data"
  for side in train val; do
    while IFS= read -r rel; do
      [[ -n "$rel" ]] || continue
      class="$(basename "$(dirname "$rel")")"
      mkdir -p "$ref_data/$side/$class"
      ln -s "$data/$rel" "$ref_data/$side/$class/$(basename "$rel")"
    done <"$out/split/$side.txt"
  done
fi

# --- the reference --------------------------------------------------------------------------------------
ref_json=""
ref_name="${task}_mbv2_160_result.json"
[[ "$task" == guns ]] && ref_name="guns_sgd_result.json"
if [[ -n "${REF_FROM:-}" ]]; then
  # A vigil-only rerun (after a recipe change) against an earlier run's reference: same split, but the two
  # trainings no longer ran one right after the other.
  [[ -f "$REF_FROM/ref/$ref_name" ]] || { echo "REF_FROM=$REF_FROM has no ref/$ref_name" >&2; exit 2; }
  [[ "$(cd "$REF_FROM" && pwd)" == "$out" ]] || { rm -rf "$out/ref"; cp -r "$REF_FROM/ref" "$out/ref"; }
  stamp "reference: reused from $REF_FROM (not trained again)"
  ref_json="$out/ref/$ref_name"
elif [[ "$task" == guns ]]; then
  # pycocotools where it is installed (or PYCOCO_PATH); otherwise bench/pycocotools_vigil, which evaluates
  # with `vigil evaluate --gt --detections` (the same twelve numbers as pycocotools).
  if ! PYTHONPATH="${PYCOCO_PATH:-}" "$python" -c 'import pycocotools' 2>/dev/null; then
    export PYCOCO_PATH="$here/pycocotools_vigil" VIGIL_BIN="$vigil"
    stamp "pycocotools is not installed: the reference's COCO AP comes from vigil evaluate (bench/pycocotools_vigil)"
  fi
  if PYTHONPATH="${PYCOCO_PATH:-}" "$python" -c 'import pycocotools' 2>/dev/null; then
    stamp "reference: guns_train.py --opt sgd, $budget min (load $(cut -d' ' -f1-3 /proc/loadavg))"
    (cd "$reference" && PYTHONWARNINGS=ignore "$python" guns_train.py --opt sgd --budget-min "$budget" \
      --data "$data" --tag guns_sgd --out "$out/ref" >"$out/ref.stdout" 2>&1)
    ref_json="$out/ref/$ref_name"
  else
    stamp "reference skipped: pycocotools is not importable (set PYCOCO_PATH); vigil trains on a seeded 10% split"
  fi
else
  stamp "reference: cls_train.py --task $task --size 160, $budget min (load $(cut -d' ' -f1-3 /proc/loadavg))"
  (cd "$reference" && PYTHONWARNINGS=ignore "$python" cls_train.py --task "$task" --size 160 \
    --budget-min "$budget" --data "$ref_data" --out "$out/ref" >"$out/ref.stdout" 2>&1)
  ref_json="$out/ref/$ref_name"
fi

# --- the same validation images for vigil ---------------------------------------------------------------
if [[ "$ref_data" != "$data" ]]; then
  : # accidents: vigil made the split the reference trained on
elif [[ -n "$ref_json" ]]; then
  "$python" - "$ref_json" "$out/val.txt" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))
files = r["data"].get("val_files") or r["data"].get("val_ids") or r["data"].get("val")
if not isinstance(files, list):
    sys.exit(f"{sys.argv[1]}: no list of validation files under data")
# guns_train.py lists image ids (DIR/Images/N.jpeg); the classifiers list files relative to the dataset.
files = [f if "." in str(f) else f"Images/{f}.jpeg" for f in files]
open(sys.argv[2], "w").write("".join(f"{f}\n" for f in files))
EOF2
  v data split "$task" --val-list "$out/val.txt" >"$out/split.log" 2>&1
else
  v data split "$task" --val 0.1 --seed 0 >"$out/split.log" 2>&1
fi
grep -m1 '^split ' "$out/split.log" >&2 || true

# --- vigil ----------------------------------------------------------------------------------------------
case "$task" in
  masks) config="$repo/examples/train/masks_resnet18.yaml" ;;
  accidents) config="$repo/examples/train/accidents_mobilenet_v2.yaml" ;;
  guns) config="$repo/examples/train/guns_frcnn_mobilenet_320.yaml" ;;
esac
stamp "vigil train: $(basename "$config") ${SETS:-}, time ${budget}m (load $(cut -d' ' -f1-3 /proc/loadavg))"
extra=()
for kv in ${SETS:-}; do extra+=(--set "$kv"); done
v train --config "$config" --name "quality-$task" --set "time=${budget}m" --set epochs=1000 \
  --set early_stopping.patience=0 "${extra[@]}" >"$out/vigil.stdout" 2>"$out/vigil.stderr"
# Detectors are scored as the reference scores itself: COCO style, every box down to score 0.001.
eval_sets=()
[[ "$task" == guns ]] && eval_sets=(--score-threshold 0.001)
v evaluate --run "quality-$task" --no-track "${eval_sets[@]}" >"$out/vigil_eval.stdout" 2>&1 || true

# --- side by side ---------------------------------------------------------------------------------------
"$python" - "$task" "$budget" "${ref_json:-none}" "$out/vigil.stdout" "$ws/runs/quality-$task" <<'EOF' | tee "$out/summary.md"
import csv, json, os, re, sys
task, budget, ref_json, vigil_out, run = sys.argv[1:6]
text = open(vigil_out).read()
speed = re.search(r"([0-9.]+) img/s training", text)
best = re.search(r"\(epoch (\d+), (\S+) ([0-9.eE+-]+)\)", text)
# results.csv is padded as Ultralytics writes it: strip the names and values.
rows = [{k.strip(): v.strip() for k, v in r.items()}
        for r in csv.DictReader(open(os.path.join(run, "results.csv")))]
detector = task == "guns"
if detector:
    # The weights handed over (best.ckpt, by fitness), scored by `vigil evaluate` with COCO's own AP and AP50
    # (pycocotools' numbers, as the reference reports them; results.csv's mAP columns are Ultralytics').
    col = max(rows, key=lambda r: float(r.get("fitness", 0) or 0))
    coco = json.load(open(os.path.join(run, "eval", "val", "metrics.json")))
    def find(node, key):
        if isinstance(node, dict):
            if key in node and isinstance(node[key], (int, float)):
                return float(node[key])
            for v in node.values():
                got = find(v, key)
                if got is not None:
                    return got
        return None
    def metric(name):
        # metrics.json keeps COCO's figures as "coco/AP", "coco/AP50" (older files: nested "AP", "AP50").
        for key in ("coco/" + name, name):
            got = find(coco, key)
            if got is not None:
                return got
        sys.exit(f"{run}/eval/val/metrics.json: no COCO {name}")
    vigil_q = {"AP": metric("AP"), "AP50": metric("AP50")}
else:
    col = max(rows, key=lambda r: float(r["metrics/accuracy_top1"]))
    vigil_q = {"acc": float(col["metrics/accuracy_top1"])}
vigil_speed = float(speed.group(1)) if speed else float("nan")
print(f"## {task}: {budget} min each, same validation images\n")
print("| | best epoch | " + " | ".join(vigil_q) + " | train img/s | epochs |")
print("|---|---|" + "---|" * len(vigil_q) + "---|---|")
print(f"| vigil | {col['epoch']} | " + " | ".join(f"{x:.4f}" for x in vigil_q.values()) +
      f" | {vigil_speed:.1f} | {len(rows)} |")
if ref_json != "none" and os.path.exists(ref_json):
    r = json.load(open(ref_json))
    b, t = r["best"], r["training"]
    ref_q = {k: float(b[k]) for k in vigil_q}
    print(f"| reference (Python) | {b['epoch']} | " + " | ".join(f"{x:.4f}" for x in ref_q.values()) +
          f" | {float(t['img_per_s']):.1f} | {t.get('epochs', len(r['history']))} |")
    print("| vigil / reference | | " + " | ".join(
        f"{vigil_q[k] / ref_q[k]:.2f}x" if ref_q[k] else "-" for k in vigil_q) +
        f" | {vigil_speed / float(t['img_per_s']):.2f}x | |")
else:
    print("| reference (Python) | skipped | | | |")
EOF
echo "outputs in $out" >&2
