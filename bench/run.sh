#!/usr/bin/env bash
# Runs every built *_bench binary in a build directory and prints their results.
# Usage: bench/run.sh [build-dir] [extra google-benchmark flags...]
set -euo pipefail

build_dir="${1:-build}"
shift || true
bench_dir="$build_dir/bench"
if [[ ! -d "$bench_dir" ]]; then
  echo "no $bench_dir: build the benchmarks first (cmake --build $build_dir)" >&2
  exit 2
fi

shopt -s nullglob
found=0
status=0
for bin in "$bench_dir"/*_bench; do
  [[ -x "$bin" && -f "$bin" ]] || continue
  found=1
  echo "== $(basename "$bin")"
  "$bin" --benchmark_counters_tabular=true "$@" || status=$?
  echo
done
if [[ $found -eq 0 ]]; then
  echo "no *_bench binaries in $bench_dir" >&2
  exit 2
fi
exit $status
