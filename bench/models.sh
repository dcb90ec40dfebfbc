#!/usr/bin/env bash
# Side by side: training throughput (images/s) and inference latency (batch 1 and batch 8) of every architecture in
# vigil and in Python torchvision, same weights, same inputs, same thread count; prints the ratios (> 1 = vigil
# ahead). The machines are shared and noisy: the two sides alternate ROUNDS times (python, vigil, python, vigil,
# ...), each round timing ITERS inferences after a warm-up, and each figure is the median of the rounds' medians,
# so a slow minute of the machine falls on both sides. Compare ratios within one run, not absolute times.
#
# Usage: bench/models.sh [build-dir] [arch ...]     env: THREADS (default: all cores), ITERS (10), ROUNDS (3),
#        TRAIN_ITERS (3)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
shift || true
timer="$build/bench/model_timer"
python=/usr/bin/python3
threads="${THREADS:-$(nproc)}"
iters="${ITERS:-10}"
rounds="${ROUNDS:-3}"
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
  echo "== $arch (threads $threads, $rounds rounds of $iters)" >&2
  "$python" "$here/models_ref.py" prepare "$work" "$arch" --threads "$threads"
  for ((round = 1; round <= rounds; round++)); do
    py="$("$python" "$here/models_ref.py" time "$work" "$arch" --threads "$threads" --iters "$iters" --train-iters "$train_iters")"
    cc="$("$timer" "$work" "$arch" --threads "$threads" --iters "$iters" --train-iters "$train_iters")"
    echo "   round $round python $py" >&2
    echo "   round $round vigil  $cc" >&2
    printf '{"round": %d, "python": %s, "vigil": %s}\n' "$round" "$py" "$cc" >>"$results"
  done
done

"$python" - "$results" "$threads" "$rounds" "$iters" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"\nthreads {sys.argv[2]}; {sys.argv[3]} alternating rounds of {sys.argv[4]} timed inferences per side; "
      "latency = median ms, train = images/s (medians over rounds); ratio > 1 means vigil is ahead")
head = f"{'arch':40} {'b1 py':>9} {'b1 vigil':>9} {'ratio':>6} {'b8 py':>9} {'b8 vigil':>9} {'ratio':>6} {'tr py':>7} {'tr vigil':>8} {'ratio':>6}"
print(head)
print("-" * len(head))
archs = list(dict.fromkeys(r["python"]["arch"] for r in rows))
for arch in archs:
    rs = [r for r in rows if r["python"]["arch"] == arch]
    med = lambda side, key: statistics.median(r[side][key] for r in rs)
    p = {k: med("python", k) for k in ("infer_b1_ms", "infer_b8_ms", "train_img_s")}
    v = {k: med("vigil", k) for k in ("infer_b1_ms", "infer_b8_ms", "train_img_s")}
    # per round, to show how steady the b1 ratio is
    b1 = sorted(r["python"]["infer_b1_ms"] / r["vigil"]["infer_b1_ms"] for r in rs)
    print(f"{arch:40} {p['infer_b1_ms']:9.1f} {v['infer_b1_ms']:9.1f} {p['infer_b1_ms'] / v['infer_b1_ms']:6.2f} "
          f"{p['infer_b8_ms']:9.1f} {v['infer_b8_ms']:9.1f} {p['infer_b8_ms'] / v['infer_b8_ms']:6.2f} "
          f"{p['train_img_s']:7.2f} {v['train_img_s']:8.2f} {v['train_img_s'] / p['train_img_s']:6.2f}")
print("\nbatch-1 ratio per round (min .. max): " + "; ".join(
    f"{a} {min(x):.2f}..{max(x):.2f}" for a in archs
    for x in [[r["python"]["infer_b1_ms"] / r["vigil"]["infer_b1_ms"] for r in rows if r["python"]["arch"] == a]]))
vigil_blas = {r["vigil"]["arch"]: r["vigil"].get("blas_threads") for r in rows}
print("vigil's OpenBLAS threads for inference (chosen as vigil serve does): " +
      ", ".join(f"{a} {t}" for a, t in vigil_blas.items()))
PY
