#include "vigil/core/blas.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace vigil {

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

BlasChoice choose_model_blas_threads(double first_inference_ms, const std::function<void()>& batch_forward) {
  const int start = initial_blas_threads();
  if (first_inference_ms > kBlasTimedUpToMs || start <= 1) {
    set_blas_threads(start);
    BlasChoice c;
    c.threads = blas_threads();
    return c;
  }
  batch_forward();
  return choose_blas_threads(start, batch_forward);
}

}  // namespace vigil
