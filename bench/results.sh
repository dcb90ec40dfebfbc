#!/usr/bin/env bash
# Regenerates bench/RESULTS.md (`make bench`): the side-by-side benchmarks against the Python references, run one
# after the other on this machine, each section with the exact command that produced it and the machine, commit
# and thread settings in the header. Raw outputs stay in bench/results/all-<UTC time>/ (ignored by git).
#
# Sections (SECTIONS, default all, in this order):
#   models          bench/models.sh: batch-1 / batch-8 inference latency and training images/s, every architecture
#   serve           bench/serve.sh: the seeds' FastAPI server against `vigil serve` (req/s, latency, peak RSS);
#                   needs ../shared/bench/baseline, skipped without it
#   prediction_log  bench/prediction_log.sh: what the prediction log costs a request, paired rounds
#   precision       bench/precision.sh: bf16 and int8 against fp32 inference latency (vigil against itself); with
#                   PRECISION_WORKSPACE (a workspace holding its RUNS) also the accuracy / COCO AP of both
#   micro           the google-benchmark binaries (bench/run.sh): vigil alone, no ratio
#
# Usage: bench/results.sh [build-dir]
# Env:   SECTIONS, MODELS_ITERS (10), MODELS_ROUNDS (3), MODELS_ARCHS (all), SERVE_ARCHS (fasterrcnn_mobilenet_v3_large_320_fpn),
#        SERVE_DURATION (20), LOG_ROUNDS (8), PRECISION_WORKSPACE (none), OUTPUT (bench/RESULTS.md)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="$(cd "${1:-$repo/build}" && pwd)"
sections="${SECTIONS:-models serve prediction_log precision micro}"
output="${OUTPUT:-$here/RESULTS.md}"
stamp="$(date -u +%Y%m%d-%H%M%S)"
out="$here/results/all-$stamp"
mkdir -p "$out"
: >"$out/sections.jsonl"
# The commit the figures belong to, taken before anything runs ("dirty" when tracked files differ from it).
(cd "$repo" && echo "$(git rev-parse --short=12 HEAD) $([[ -n "$(git status --porcelain --untracked-files=no)" ]] && echo dirty)") \
  >"$out/commit.txt"

# One section: the command as it is run (recorded verbatim for the report), its output, status and duration.
section() {
  local name="$1" command="$2"
  echo "== $name: $command" >&2
  local t0=$SECONDS
  (cd "$repo" && bash -c "$command") >"$out/$name.txt" 2>"$out/$name.log"
  local status=$?
  /usr/bin/python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "command": sys.argv[2],
    "status": int(sys.argv[3]), "seconds": int(sys.argv[4])}))' "$name" "$command" "$status" \
    "$((SECONDS - t0))" >>"$out/sections.jsonl"
  [[ $status -eq 0 ]] || echo "   $name exited $status (see $out/$name.log)" >&2
}

rel_build="${build#"$repo"/}"
for s in $sections; do
  case "$s" in
    models)
      archs="${MODELS_ARCHS:-}"
      section models "ITERS=${MODELS_ITERS:-10} ROUNDS=${MODELS_ROUNDS:-3} TRAIN_ITERS=3 bench/models.sh $rel_build $archs"
      ;;
    serve)
      if [[ -d "$repo/../shared/bench/baseline" ]]; then
        section serve "RESULTS_DIR=$out/serve ARCHS='${SERVE_ARCHS:-fasterrcnn_mobilenet_v3_large_320_fpn}' \
DURATION=${SERVE_DURATION:-20} bench/serve.sh $rel_build/apps/vigil/vigil"
      else
        echo "== serve: skipped (no ../shared/bench/baseline)" >&2
      fi
      ;;
    prediction_log)
      section prediction_log "MODES='off on' ROUNDS=${LOG_ROUNDS:-8} SECONDS_PER_RUN=10 bench/prediction_log.sh $rel_build"
      ;;
    precision)
      if [[ -n "${PRECISION_WORKSPACE:-}" ]]; then
        section precision "RESULTS_DIR=$out/precision WORKSPACE=$PRECISION_WORKSPACE ITERS=6 ROUNDS=3 bench/precision.sh $rel_build"
      else
        section precision "RESULTS_DIR=$out/precision RUNS='' ITERS=6 ROUNDS=3 bench/precision.sh $rel_build"
      fi
      ;;
    micro)
      section micro "bench/run.sh $rel_build --benchmark_min_time=0.2"
      ;;
    *)
      echo "unknown section '$s' (models, serve, prediction_log, precision, micro)" >&2
      exit 2
      ;;
  esac
done

/usr/bin/python3 "$here/results_md.py" "$out" "$build" >"$output.tmp" && mv "$output.tmp" "$output"
echo "wrote $output (raw outputs in $out)" >&2
