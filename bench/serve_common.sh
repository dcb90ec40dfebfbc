# Shared by bench/serve.sh and bench/soak.sh (sourced after THREADS and repo are set): where the seeds' Python
# stack lives, and the thread settings every server gets (both use OpenMP/oneDNN for convolutions and OpenBLAS
# for GEMMs; OPENBLAS_THREAD_TIMEOUT=4 was the Python stack's best configuration in the baseline's own runs).
BASELINE_DIR="${BASELINE_DIR:-$(cd "$repo/.." && pwd)/shared/bench/baseline}"
[ -d "$BASELINE_DIR" ] || BASELINE_DIR=/work/shared/bench/baseline
export TORCH_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS"
export OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT-4}"
[ -n "$OPENBLAS_THREAD_TIMEOUT" ] || unset OPENBLAS_THREAD_TIMEOUT
export PYTHONWARNINGS=ignore
