#!/usr/bin/env bash
# Side by side: training throughput (images/s) and inference latency (batch 1 and batch 8) of every architecture in
# vigil and in Python torchvision, same weights, same inputs, same thread count, one after the other; prints the
# ratios (> 1 = vigil ahead). The machines are shared and noisy: compare ratios within one run, not absolute times.
#
# Usage: bench/models.sh [build-dir] [arch ...]     env: THREADS (default: all cores), ITERS, TRAIN_ITERS
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
shift || true
timer="$build/bench/model_timer"
python=/usr/bin/python3
threads="${THREADS:-$(nproc)}"
iters="${ITERS:-5}"
train_iters="${TRAIN_ITERS:-3}"
archs=("$@")
if [[ ${#archs[@]} -eq 0 ]]; then
  archs=(mask_small_cnn mobilenet_v3_small mobilenet_v3_large mobilenet_v2 resnet18 resnet50
    fasterrcnn_mobilenet_v3_large_320_fpn fasterrcnn_mobilenet_v3_large_fpn fasterrcnn_resnet50_fpn)
fi
[[ -x "$timer" ]] || { echo "no $timer: build first (cmake --build $build --target model_timer)" >&2; exit 2; }
"$python" -c 'import torchvision' 2>/dev/null || { echo "$python lacks torchvision (scripts/install-deps.sh)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"
for arch in "${archs[@]}"; do
  echo "== $arch (threads $threads)" >&2
  "$python" "$here/models_ref.py" prepare "$work" "$arch" --threads "$threads"
  py="$("$python" "$here/models_ref.py" time "$work" "$arch" --threads "$threads" --iters "$iters" --train-iters "$train_iters")"
  cc="$("$timer" "$work" "$arch" --threads "$threads" --iters "$iters" --train-iters "$train_iters")"
  echo "   python $py" >&2
  echo "   vigil  $cc" >&2
  printf '{"python": %s, "vigil": %s}\n' "$py" "$cc" >>"$results"
done

"$python" - "$results" "$threads" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"\nthreads {sys.argv[2]}; latency = median ms, train = images/s; ratio > 1 means vigil is ahead")
head = f"{'arch':40} {'b1 py':>9} {'b1 vigil':>9} {'ratio':>6} {'b8 py':>9} {'b8 vigil':>9} {'ratio':>6} {'tr py':>7} {'tr vigil':>8} {'ratio':>6}"
print(head)
print("-" * len(head))
for r in rows:
    p, v = r["python"], r["vigil"]
    print(f"{p['arch']:40} {p['infer_b1_ms']:9.1f} {v['infer_b1_ms']:9.1f} {p['infer_b1_ms'] / v['infer_b1_ms']:6.2f} "
          f"{p['infer_b8_ms']:9.1f} {v['infer_b8_ms']:9.1f} {p['infer_b8_ms'] / v['infer_b8_ms']:6.2f} "
          f"{p['train_img_s']:7.2f} {v['train_img_s']:8.2f} {v['train_img_s'] / p['train_img_s']:6.2f}")
PY
