#!/usr/bin/env bash
# Data-parallel training speed: the same masks run (examples/train/masks_small_cnn.yaml's model, 100x100,
# global batch 32) as 1 process with every core, then as `vigil train --nproc 2` (2 ranks over c10d + Gloo on
# loopback, cores / 2 threads each), one after the other. Prints each run's training images per second (rank
# 0's count of every rank's images over its step time) and wall-clock, and the ratio.
#
# Usage: bench/distributed_train.sh [EPOCHS] [OUT_DIR] [build-dir]
#   EPOCHS defaults to 2 (about 30-60 s per run on a 2-core machine). env: VIGIL_SHARED (default ../shared).
# On a machine whose cores are all busy with one process already, 2 processes cannot be faster: the figure
# measures the cost of the all-reduce and of splitting the batch, which is what a multi-machine run pays.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
epochs="${1:-2}"
out="${2:-$(mktemp -d)/distributed_train}"
build="${3:-$repo/build}"
vigil="$build/apps/vigil/vigil"
shared="${VIGIL_SHARED:-$(cd "$repo/.." && pwd)/shared}"
data="$shared/datasets/masks"
[[ -x "$vigil" ]] || { echo "no $vigil: build first (ninja -C $build vigil)" >&2; exit 2; }
[[ -d "$data" ]] || { echo "$data absent: nothing to measure" >&2; exit 77; }

mkdir -p "$out"
ws="$out/ws"
if [[ ! -f "$out/.ingested" ]]; then  # a second call with the same OUT_DIR reuses the data
  "$vigil" --workspace "$ws" data ingest "$data" --format imagefolder --name masks > /dev/null
  "$vigil" --workspace "$ws" data split masks --val 0.2 --seed 0 > /dev/null
  touch "$out/.ingested"
fi
cat > "$out/train.yaml" << EOF
epochs: $epochs
seed: 0
model: {arch: mask_small_cnn}
data: {dataset: masks, batch_size: 32, threads: 1}
optimizer: {name: adam, lr: 0.001}
early_stopping: {patience: 0}
EOF

run() {  # NAME ARGS...
  local name="$1"
  shift
  echo "load average before $name: $(cut -d' ' -f1-3 /proc/loadavg)"
  local start end
  start=$(date +%s.%N)
  "$vigil" --workspace "$ws" train --config "$out/train.yaml" --name "$name-$(date +%s)" "$@" \
    > "$out/$name.out" 2> "$out/$name.err"
  end=$(date +%s.%N)
  local ips
  ips=$(grep -o '[0-9.]* img/s training' "$out/$name.out" | cut -d' ' -f1)
  printf '%-12s %8.1f img/s training  %6.1f s wall-clock\n' "$name" "$ips" "$(echo "$end - $start" | bc)"
  echo "$ips" > "$out/$name.ips"
}

run one
run two --nproc 2
printf 'ratio 2 processes / 1 process: %.2f\n' "$(echo "$(cat "$out/two.ips") / $(cat "$out/one.ips")" | bc -l)"
echo "outputs in $out"
