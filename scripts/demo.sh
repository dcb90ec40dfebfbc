#!/usr/bin/env bash
# The main job on built-in defaults, as far as it exists: synthesise a detection dataset (or ingest
# DATA=path), ingest, validate, split, print stats; then train a CPU-friendly Faster R-CNN on it for a short
# run (EPOCHS, default 2), evaluate it on the test split (report.html) and predict a few images with boxes
# drawn. Serving follows.
set -euo pipefail
vigil="${1:?usage: demo.sh VIGIL_BINARY WORKSPACE}"
ws="${2:?usage: demo.sh VIGIL_BINARY WORKSPACE}"
run() { echo "+ vigil $*"; "$vigil" --workspace "$ws" "$@"; }

if [ -n "${DATA:-}" ]; then
  name="$(basename "$DATA")"
  run data ingest "$DATA" --format "${FORMAT:-auto}" --name "$name"
else
  name=synth
  src="$ws/synth-src"
  run data synth "$src" --images 120 --seed 1
  run data ingest "$src" --format coco --name "$name"
fi
# validate exits 3 when it finds errors; the demo goes on to show the rest either way.
run data validate "$name" || echo "(validate reported problems: see the report above)"
run data split "$name" --val 0.2 --test 0.1 --seed 0
run data stats "$name"
run data list

# Training runs on the synthetic default (set TRAIN=0 to skip it).
if [ -z "${DATA:-}" ] && [ "${TRAIN:-1}" = 1 ]; then
  cat >"$ws/demo-train.yaml" <<YAML
name: demo
epochs: ${EPOCHS:-2}
seed: 0
grad_clip_norm: 10.0
model:
  arch: fasterrcnn_mobilenet_v3_large_320_fpn
data:
  dataset: $name
  batch_size: 4
optimizer:
  name: sgd
  lr: 0.01
  momentum: 0.9
  weight_decay: 0.0001
schedule:
  name: cosine
  warmup_iters: 20
YAML
  run train --config "$ws/demo-train.yaml"
  run evaluate --run demo --split test --gallery 12 || echo "(evaluation failed: see above)"
  run predict -m "$ws/runs/demo/weights/best.ckpt" "$src" --format coco -o "$ws/demo-predictions.json" \
    --save "$ws/demo-drawn" 2>&1 | tail -n 2 || true
fi
echo
echo "demo done: workspace $ws (dataset plots under $ws/datasets/*/stats/, run in $ws/runs/demo/, report"
echo "$ws/runs/demo/eval/test/report.html, drawn predictions in $ws/demo-drawn/)"
