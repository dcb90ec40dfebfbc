#!/usr/bin/env bash
# The main job on built-in defaults: synthesise a detection dataset (or ingest DATA=path, FORMAT=auto), ingest,
# validate, split, print stats; train a CPU-friendly Faster R-CNN on it for TIME (default 90s) and print its
# validation mAP50, evaluate it on the test split (report.html), predict a few images with boxes drawn, and serve
# it with the web UI on http://localhost:PORT (default 8080) until Ctrl-C. TRAIN=0 stops after the data steps,
# SERVE=0 before serving.
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
  run data synth "$src" --images 120 --seed 1 --set max_objects=8
  run data ingest "$src" --format coco --name "$name"
fi
# validate exits 3 when it finds errors; the demo goes on to show the rest either way.
run data validate "$name" || echo "(validate reported problems: see the report above)"
run data split "$name" --val 0.2 --test 0.1 --seed 0
run data stats "$name"
run data list

# Training runs on the synthetic default or the ingested DATA (set TRAIN=0 to skip it). The recipe is the
# one examples/train/README.md's demo section measured: a 90-second budget (TIME), SGD at lr 0.04, 64
# sampled proposals per image in the box head instead of torchvision's 512 (that layer is most of a step),
# and for the synthetic shapes their own 240-pixel frame height and square anchors (every shape's box is
# about square); ingested DATA keeps the model's sizes and gets anchors fitted to its boxes.
if [ "${TRAIN:-1}" = 1 ]; then
  if [ -z "${DATA:-}" ]; then
    fit=false shapes="    min_size: [240]
    aspect_ratios: [1.0]"
  else
    fit=true shapes=""
  fi
  cat >"$ws/demo-train.yaml" <<YAML
name: demo
epochs: ${EPOCHS:-8}
time: ${TIME:-90s}
seed: 0
grad_clip_norm: 10.0
model:
  arch: fasterrcnn_mobilenet_v3_large_320_fpn
  fit_anchors: $fit
  detector:
$shapes
    rpn_pre_nms_top_n_train: 300
    rpn_post_nms_top_n_train: 300
    box_batch_size_per_image: 64
data:
  dataset: $name
  batch_size: 4
optimizer:
  name: sgd
  lr: 0.04
  momentum: 0.9
  weight_decay: 0.0001
schedule:
  name: cosine
  warmup_iters: 30
YAML
  run train --config "$ws/demo-train.yaml"
  # The validation score of the weights handed over (best.ckpt: the epoch of the best fitness).
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { h = $i; gsub(/ /, "", h); col[h] = i }; next }
           { gsub(/ /, ""); f = $col["fitness"] + 0
             if (NR == 2 || f > best) { best = f; epoch = $col["epoch"]; ap50 = $col["metrics/coco_AP50"]; ap = $col["metrics/coco_AP"] } }
           END { if (epoch != "") printf "demo model: validation mAP50 %.3f (COCO AP50; AP %.3f) at epoch %s, the weights handed over\n", ap50, ap, epoch }' \
    "$ws/runs/demo/results.csv"
  run evaluate --run demo --split test --gallery 12 || echo "(evaluation failed: see above)"
  images="${DATA:-$src}"
  run predict -m "$ws/runs/demo/weights/best.ckpt" "$images" --format coco -o "$ws/demo-predictions.json" \
    --save "$ws/demo-drawn" 2>&1 | tail -n 2 || true
fi
echo
echo "demo: workspace $ws (dataset plots under $ws/datasets/*/stats/, run in $ws/runs/demo/, report"
echo "$ws/runs/demo/eval/test/report.html, drawn predictions in $ws/demo-drawn/)"

model="$ws/runs/demo/weights/best.ckpt"
if [ "${SERVE:-1}" = 1 ] && [ -f "$model" ]; then
  port="${PORT:-8080}"
  example="$(find "${DATA:-$src}" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort | head -n 1)"
  echo
  echo "serving the demo model: open http://localhost:$port/ui/ (Ctrl-C stops the server)"
  echo "try:  curl -F file=@$example 'http://localhost:$port/v1/predict?score_threshold=0.3'"
  echo "      curl -F file=@$example http://localhost:$port/predict/ -o boxes.png"
  exec "$vigil" --workspace "$ws" serve --model "$model" --name demo --host "${HOST:-127.0.0.1}" --port "$port"
fi
