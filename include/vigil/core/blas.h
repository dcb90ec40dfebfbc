#pragma once
/// OpenBLAS's own thread pool: its count, and choosing it per model by timing.

#include <functional>

namespace vigil {

/// Sets OpenBLAS's own thread count. OpenBLAS keeps a pool beside LibTorch's, one thread per core, and its
/// idle threads spin in sched_yield between calls: under serving load that spin took a fifth of the CPU
/// (perf, mask_small_cnn at 245 requests/s). Returns the previous count, or -1 when no OpenBLAS is loaded (it
/// is looked up by symbol, so vigil does not link against it and runs with any BLAS LibTorch was built with).
int set_blas_threads(int n);
/// OpenBLAS's thread count, or -1 without OpenBLAS.
int blas_threads();
/// OpenBLAS's thread count when the process started (before any set_blas_threads), or -1 without OpenBLAS.
int initial_blas_threads();

/// Which OpenBLAS thread count serves a model better, and the timings that chose it.
struct BlasChoice {
  int threads = -1;    ///< what OpenBLAS was left at (-1: no OpenBLAS, nothing timed)
  double ms_one = 0;   ///< median of `forward` with 1 thread
  double ms_many = 0;  ///< median with `many` threads
  bool timed = false;  ///< false when OpenBLAS is absent or `many` <= 1
};
/// Times `forward` (one inference, already warmed up) with OpenBLAS at 1 thread and at `many`, interleaved,
/// `runs` times each, and leaves OpenBLAS at the faster: 1 wins only when its median is at least 3% lower.
/// One thread is faster for small models, whose BLAS calls are too short to share (the mask CNN at batch 1:
/// 3.3 ms against 4.0 ms, and its idle pool's spin costs the rest of the process), and slower for ResNet-50
/// (115 ms against 79 ms): hence a measurement, not a rule.
BlasChoice choose_blas_threads(int many, const std::function<void()>& forward, int runs = 5);

/// The longest first inference for which the thread count is timed: above it, a model's BLAS calls are long
/// enough to share among cores, and ten timed batches would slow its load.
constexpr double kBlasTimedUpToMs = 60;
/// `vigil serve`'s policy for one model (serve/model_host.cpp; bench/model_timer.cpp reproduces it): when its
/// first inference took at most kBlasTimedUpToMs and OpenBLAS started with more than one thread, runs
/// `batch_forward` once (the batched shape's own warm-up) and keeps choose_blas_threads' choice between 1 and
/// the start-up count; otherwise puts OpenBLAS back to its start-up count, untimed.
BlasChoice choose_model_blas_threads(double first_inference_ms, const std::function<void()>& batch_forward);

}  // namespace vigil
