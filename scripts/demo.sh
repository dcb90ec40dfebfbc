#!/usr/bin/env bash
# The main job on built-in defaults. Until training and serving exist it runs what exists:
# synthesise a dataset (or ingest DATA=path), ingest, validate, split, print stats.
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
echo
echo "demo done: workspace $ws (plots under $ws/datasets/*/stats/)"
