#!/usr/bin/env bash
# The face-mask cascade end to end on faces it never trained on, with known places and labels: trains the
# masks classifier (examples/train/masks_resnet18.yaml, its 5-minute budget) on the training side of a
# leak-free split (near-duplicate faces kept on one side), builds a 640x480 video of the *validation* side's
# photos moving across a background two at a time (bench/cascade_faces.py make), runs `vigil watch` on every
# frame with a face detector and that classifier on each face crop, and scores the detections log against
# the known rectangles and labels (bench/cascade_faces.py score): per class, the share of faces found and the
# mask accuracy on the found ones.
#
# Usage: bench/cascade_accuracy.sh [OUT_DIR] [build-dir]
#   env: VIGIL_SHARED (default ../shared), DETECTORS (default "faceapi:ssd_mobilenetv1
#        opencv:haarcascade_frontalface_default"), MARGINS (crop margins, default "0.15 0.5"), TIME (training
#        budget, default the recipe's 5m), MODEL=FILE skips training and uses that mask classifier.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="${1:-$(mktemp -d)/cascade_accuracy}"
build="${2:-$repo/build}"
vigil="$build/apps/vigil/vigil"
python="${PYTHON:-/usr/bin/python3}"
shared="${VIGIL_SHARED:-$(cd "$repo/.." && pwd)/shared}"
masks="$shared/datasets/masks"
[[ -x "$vigil" ]] || { echo "no $vigil: build first" >&2; exit 2; }
[[ -d "$masks/with_mask" ]] || { echo "no $masks: the masks dataset is not here" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
ws="$out/ws"
v() { "$vigil" --workspace "$ws" "$@"; }
stamp() { echo "[$(date +%T)] $*" >&2; }

v data ingest "$masks" --format imagefolder --name masks >"$out/ingest.log" 2>&1
v data split masks --val 0.2 --seed 0 -o "$out/split" >"$out/split.log" 2>&1
grep -m1 '^split ' "$out/split.log" >&2 || true
model="${MODEL:-}"
if [[ -z "$model" ]]; then
  stamp "training the mask classifier (examples/train/masks_resnet18.yaml, time ${TIME:-5m})"
  v train --config "$repo/examples/train/masks_resnet18.yaml" --name cascade-masks --set "time=${TIME:-5m}" \
    >"$out/train.stdout" 2>"$out/train.stderr"
  model="$ws/runs/cascade-masks/weights/best.ckpt"
  grep -m1 'best weights' "$out/train.stdout" >&2 || true
fi
stamp "video of the $(wc -l <"$out/split/val.txt") validation photos"
"$python" "$here/cascade_faces.py" make --list "$out/split/val.txt" --root "$masks" --out "$out/faces.avi" \
  --truth "$out/truth.json"

summary="$out/summary.jsonl"
: >"$summary"
for det in ${DETECTORS:-faceapi:ssd_mobilenetv1 opencv:haarcascade_frontalface_default}; do
  for margin in ${MARGINS:-0.15 0.5}; do
    tag="$(echo "${det#*:}-$margin" | tr -c 'A-Za-z0-9_.\n-' _)"
    cat >"$out/$tag.yaml" <<EOF
cameras:
  faces:
    source: {url: $out/faces.avi, realtime: false}
    detect: {model: "$det", fps: 100}
    classify: {model: $model, margin: $margin}
outputs: {store: false, detections: $out/$tag.jsonl}
EOF
    rm -f "$out/$tag.jsonl"
    stamp "vigil watch: $det, crop margin $margin"
    if ! v --log-level warn watch --config "$out/$tag.yaml" --no-snapshots --quiet --stats-json "$out/$tag.stats.json" \
      >/dev/null 2>"$out/$tag.err"; then
      echo "   skipped: $(tail -n 1 "$out/$tag.err")" >&2
      continue
    fi
    res="$("$python" "$here/cascade_faces.py" score --truth "$out/truth.json" --detections "$out/$tag.jsonl" | tail -n 1)"
    printf '{"detector": "%s", "margin": %s, "result": %s}\n' "$det" "$margin" "$res" >>"$summary"
  done
done

"$python" - "$summary" <<'PY' | tee "$out/summary.md"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("| face detector | crop margin | class | faces (face x frame) | found | mask accuracy on found |")
print("|---|---|---|---|---|---|")
for r in rows:
    for label, c in r["result"]["classes"].items():
        print(f"| {r['detector']} | {r['margin']} | {label} | {c['faces']} | {c['found_rate']:.3f} | "
              f"{c['mask_accuracy']:.3f} |")
PY
echo "outputs in $out" >&2
