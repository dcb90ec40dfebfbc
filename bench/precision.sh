#!/usr/bin/env bash
# bf16 and int8 against fp32 (nn/precision.h, nn/quantize.h), both halves of the trade in one run:
#   speed   - bench/model_timer's batch-1 and batch-8 inference latency in fp32 and each of PRECISIONS on the same
#             weights and inputs (bench/models_ref.py prepare), alternating ROUNDS times so a slow minute of the
#             shared machine falls on all; each figure the median of the rounds' medians. int8 runs only on the
#             ResNet-backbone models (the others refuse it), calibrated on the timing inputs;
#   quality - `vigil evaluate --precision P` of trained models on their validation split: accuracy for
#             classifiers, COCO AP / AP50 for detectors, and the difference in points (int8 calibrates on the
#             split's training images, evaluate's default).
# Models: the runs named in RUNS inside WORKSPACE. With TRAIN=1 (and ../shared present) they are made first, from
# scratch, with the repository's recipes: examples/train/masks_small_cnn.yaml (MASKS_TIME, 6m),
# examples/train/guns_frcnn_mobilenet_320.yaml (GUNS_TIME, 24m) and masks_mobilenet_v2.yaml with ResNet-18
# (RESNET_TIME, 8m; the run int8 applies to), each on its dataset's 80/20 split.
#
# Usage: bench/precision.sh [build-dir]        bench/precision.sh --report RESULTS_DIR (the tables again, from a run)
# Env:   ARCHS (mask_small_cnn mobilenet_v2 resnet50 fasterrcnn_mobilenet_v3_large_320_fpn
#        fasterrcnn_resnet50_fpn), PRECISIONS (bf16 int8), ROUNDS (3), ITERS (10), THREADS (all cores), WORKSPACE
#        (a fresh /tmp dir with TRAIN=1), RUNS (masks-small-cnn guns-frcnn-mobilenet-320 masks-resnet18; '' = speed
#        only), TRAIN (0), MASKS_TIME, GUNS_TIME, RESNET_TIME, SHARED (../shared), RESULTS_DIR
#        (bench/results/precision-<date>).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
report_only=""
if [[ "${1:-}" == "--report" ]]; then
  report_only="${2:?--report needs the results folder of an earlier run}"
  shift 2
fi
build="${1:-$repo/build}"
timer="$build/bench/model_timer"
vigil="$build/apps/vigil/vigil"
python=/usr/bin/python3
threads="${THREADS:-$(nproc)}"
rounds="${ROUNDS:-3}"
iters="${ITERS:-10}"
read -r -a archs <<<"${ARCHS:-mask_small_cnn mobilenet_v2 resnet50 fasterrcnn_mobilenet_v3_large_320_fpn fasterrcnn_resnet50_fpn}"
read -r -a runs <<<"${RUNS-masks-small-cnn guns-frcnn-mobilenet-320 masks-resnet18}"
read -r -a reduced <<<"${PRECISIONS:-bf16 int8}"
shared="${SHARED:-$repo/../shared}"
res="${report_only:-${RESULTS_DIR:-$here/results/precision-$(date +%Y%m%d-%H%M%S)}}"
mkdir -p "$res"
[[ -f "$res/runs.txt" ]] && [[ -n "$report_only" ]] && read -r -a runs <"$res/runs.txt"
[[ -f "$res/precisions.txt" ]] && [[ -n "$report_only" ]] && read -r -a reduced <"$res/precisions.txt"
for tool in "$timer" "$vigil"; do [[ -x "$tool" ]] || { echo "no $tool: build first" >&2; exit 2; }; done
"$python" -c 'import torchvision' 2>/dev/null || { echo "$python lacks torchvision (scripts/install-deps.sh)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

report() {
  {
    echo "# ${reduced[*]} against fp32 ($(cat "$res/started.txt" 2>/dev/null))"
    echo
    cat "$res/machine.txt" 2>/dev/null
    echo
    "$python" - "$res/timings.jsonl" "$res" "${reduced[*]}" "${runs[@]}" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
res, reduced, runs = sys.argv[2], sys.argv[3].split(), sys.argv[4:]
print("## Speed: bench/model_timer, median ms over rounds (ratio = fp32 / P, > 1 means P is faster)\n")
head = "| model | batch 1 fp32 | " + " | ".join(f"batch 1 {p} | ratio" for p in reduced)
head += " | batch 8 fp32 | " + " | ".join(f"batch 8 {p} | ratio" for p in reduced) + " |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
def med(arch, p, k):
    v = [r[k] for r in rows if r["arch"] == arch and r["precision"] == p]
    return statistics.median(v) if v else None
for arch in dict.fromkeys(r["arch"] for r in rows):
    cells = [arch]
    for key in ("infer_b1_ms", "infer_b8_ms"):
        f = med(arch, "fp32", key)
        cells.append(f"{f:.1f}")
        for p in reduced:
            v = med(arch, p, key)
            cells += [f"{v:.1f}", f"{f / v:.2f}"] if v else ["n/a", ""]
    print("| " + " | ".join(cells) + " |")
if not runs:
    sys.exit(0)
print("\n## Quality: `vigil evaluate --split val` of models trained from scratch here\n")
print("| run | metric | fp32 | " + " | ".join(f"{p} | {p} - fp32 (points)" for p in reduced) + " |")
print("|---|---|---|" + "---|---|" * len(reduced))
for run in runs:
    m = {}
    for p in ["fp32"] + reduced:
        path = os.path.join(res, f"eval-{run}-{p}", "metrics.json")
        if os.path.exists(path):
            m[p] = json.load(open(path))
    if "fp32" not in m:
        continue
    keys = [k for k in ("accuracy", "macro/f1", "coco/AP", "coco/AP50", "coco/AP75", "coco/AR100") if k in m["fp32"]]
    if "samples" in m["fp32"]:
        keys.append("samples")
    for k in keys:
        fmt = (lambda v: f"{v:.4f}") if k != "samples" else (lambda v: str(v))
        cells = [run, k, fmt(m["fp32"][k])]
        for p in reduced:
            if p not in m:
                cells += ["n/a (refused)", ""]
                continue
            b = m[p][k]
            cells += [fmt(b), f"{100 * (b - m['fp32'][k]):+.2f}" if k != "samples" else ""]
        print("| " + " | ".join(cells) + " |")
PY
    echo
    echo "Commands: bench/precision.sh; evaluations: $res/commands.txt; raw timings: $res/timings.jsonl"
  } | tee "$res/results.md"
}
if [[ -n "$report_only" ]]; then report; exit 0; fi
echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$repo" rev-parse --short=12 HEAD)" >"$res/started.txt"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; threads $threads;" \
  "bf16 instructions: $(grep -o -m1 -w 'avx512_bf16\|amx_bf16' /proc/cpuinfo | head -1 || echo none)" >"$res/machine.txt"
echo "${runs[*]}" >"$res/runs.txt"
echo "${reduced[*]}" >"$res/precisions.txt"

# ---- models (TRAIN=1) -------------------------------------------------------------------------------------------
if [[ "${TRAIN:-0}" == 1 ]]; then
  [[ -d "$shared/datasets/masks" && -d "$shared/datasets/guns" ]] || { echo "TRAIN=1 needs $shared/datasets" >&2; exit 2; }
  export VIGIL_WORKSPACE="${WORKSPACE:-$work/ws}"
  "$vigil" data ingest "$shared/datasets/masks" --format imagefolder --name masks
  "$vigil" data split masks --val 0.2
  "$vigil" data ingest "$shared/datasets/guns" --format guns --name guns
  "$vigil" data split guns --val 0.2
  "$vigil" --threads "$threads" train --config "$repo/examples/train/masks_small_cnn.yaml" --set "time=${MASKS_TIME:-6m}"
  "$vigil" --threads "$threads" train --config "$repo/examples/train/guns_frcnn_mobilenet_320.yaml" --set "time=${GUNS_TIME:-24m}"
  "$vigil" --threads "$threads" train --config "$repo/examples/train/masks_mobilenet_v2.yaml" --set model.arch=resnet18 \
    --set model.dropout=0 --set name=masks-resnet18 --set "time=${RESNET_TIME:-8m}"
elif [[ ${#runs[@]} -gt 0 ]]; then
  [[ -n "${WORKSPACE:-}" ]] || { echo "set WORKSPACE to a workspace with trained runs (${runs[*]}), TRAIN=1, or RUNS='' (speed only)" >&2; exit 2; }
  export VIGIL_WORKSPACE="$WORKSPACE"
fi

# ---- quality ----------------------------------------------------------------------------------------------------
for run in "${runs[@]}"; do
  for p in fp32 "${reduced[@]}"; do
    echo "== evaluate $run ($p)" >&2
    echo "vigil --threads $threads evaluate --run $run --split val --precision $p --no-track --gallery 0" >>"$res/commands.txt"
    # int8 refuses models without a ResNet backbone (exit 2): reported as such, not a failed run.
    "$vigil" --threads "$threads" evaluate --run "$run" --split val --precision "$p" --no-track --gallery 0 \
      -o "$res/eval-$run-$p" >&2 || [[ $p == int8 ]]
  done
done

# ---- speed ------------------------------------------------------------------------------------------------------
timings="$res/timings.jsonl"
: >"$timings"
for arch in "${archs[@]}"; do
  echo "== $arch (threads $threads, $rounds rounds of $iters)" >&2
  "$python" "$here/models_ref.py" prepare "$work" "$arch" --threads "$threads" >/dev/null
  for ((round = 1; round <= rounds; round++)); do
    for p in fp32 "${reduced[@]}"; do
      flags=()
      [[ $p == bf16 ]] && flags=(--bf16 1)
      if [[ $p == int8 ]]; then
        [[ $arch == *resnet* ]] || continue  # int8 quantises ResNet backbones only
        flags=(--int8 1)
      fi
      "$timer" "$work" "$arch" --threads "$threads" --iters "$iters" --train-iters 0 "${flags[@]}" | tee -a "$timings" >&2
    done
  done
done

report
