#pragma once
/// A fixed-size thread pool and a parallel_for built on it.

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <future>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace vigil {

class ThreadPool {
 public:
  /// n_threads == 0 means hardware concurrency.
  explicit ThreadPool(size_t n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size(); }

  template <class F>
  auto submit(F&& f) -> std::future<decltype(f())> {
    using R = decltype(f());
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
    auto fut = task->get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.emplace([task] { (*task)(); });
    }
    cv_.notify_one();
    return fut;
  }

 private:
  void run();
  std::vector<std::thread> workers_;
  std::queue<std::function<void()>> tasks_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

/// Runs fn(i) for i in [0, n) on `threads` threads (0 = hardware concurrency); rethrows the first exception.
void parallel_for(size_t n, size_t threads, const std::function<void(size_t)>& fn);

/// Logical cores available to this process.
size_t hardware_threads();

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

}  // namespace vigil
