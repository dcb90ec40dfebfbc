#include "vigil/core/thread_pool.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <vector>

namespace vigil {

size_t hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

int blas_threads() {
  using Get = int (*)();
  auto get = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get ? get() : -1;
}

int initial_blas_threads() {
  static const int initial = blas_threads();
  return initial;
}

BlasChoice choose_blas_threads(int many, const std::function<void()>& forward, int runs) {
  BlasChoice c;
  initial_blas_threads();  // remember the start-up count before changing it
  if (blas_threads() < 0 || many <= 1) {
    c.threads = blas_threads();
    return c;
  }
  std::vector<double> one, several;
  auto time_with = [&](int n, std::vector<double>& into) {
    set_blas_threads(n);
    const auto t0 = std::chrono::steady_clock::now();
    forward();
    into.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  };
  for (int i = 0; i < std::max(1, runs); ++i) {  // interleaved: a noisy neighbour hits both alike
    time_with(1, one);
    time_with(many, several);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  c.ms_one = median(one);
  c.ms_many = median(several);
  c.timed = true;
  c.threads = c.ms_one <= 0.97 * c.ms_many ? 1 : many;
  set_blas_threads(c.threads);
  return c;
}

int set_blas_threads(int n) {
  using Set = void (*)(int);
  auto set = reinterpret_cast<Set>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  initial_blas_threads();
  const int before = blas_threads();
  if (set && n > 0) set(n);
  return before;
}

ThreadPool::ThreadPool(size_t n_threads) {
  if (n_threads == 0) n_threads = hardware_threads();
  for (size_t i = 0; i < n_threads; ++i) workers_.emplace_back([this] { run(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop();
    }
    task();
  }
}

void parallel_for(size_t n, size_t threads, const std::function<void(size_t)>& fn) {
  if (threads == 0) threads = hardware_threads();
  threads = std::min(threads, n);
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) {
        try {
          fn(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (!error) error = std::current_exception();
          next = n;
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace vigil
