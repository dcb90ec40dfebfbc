#pragma once
/// Dynamic batching between the HTTP threads and the one inference worker (Triton's dynamic batcher): a
/// bounded queue; the worker takes whatever is waiting, up to max_batch, after waiting at most
/// max_queue_delay for more to arrive. A full queue refuses at once (the caller answers 503) instead of
/// growing without bound.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "vigil/serve/model_host.h"

namespace vigil::serve {

struct BatcherOptions {
  int max_batch = 8;
  double max_queue_delay_ms = 5;
  size_t capacity = 64;  ///< images waiting, at most
  int instances = 1;     ///< inference workers, each with its own copy of the model (Triton's instance_group)
  int threads_per_instance = 0;  ///< LibTorch intra-op threads of each worker (0 = leave as configured)
  void validate() const;
};

/// One preprocessed image bound to the model that preprocessed it.
struct InferenceRequest {
  std::shared_ptr<ServedModel> model;
  torch::Tensor input;
  int width = 0, height = 0;
  nn::PostprocessOptions post;  ///< detection thresholds of this request
};

struct InferenceResult {
  model::Prediction prediction;
  double queue_ms = 0, inference_ms = 0;
  int batch_size = 0;  ///< images in the forward pass this one ran in
  std::string error;   ///< non-empty when inference itself failed (a server-side error)
};

class Batcher {
 public:
  /// Called by the worker after every forward pass: images in it, its seconds, the queue wait of each.
  using Observer =
      std::function<void(int batch_size, double inference_s, const std::vector<double>& queue_s)>;

  Batcher(BatcherOptions options, Observer observer = {});
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  /// Says that `n` images are being decoded and will be submitted (or withdrawn): the worker waits up to
  /// max_queue_delay for them, but not for images nobody is preparing (a lone request runs at once).
  void announce(size_t n);
  void withdraw(size_t n);
  /// Queues all requests or none: nullopt when they do not fit (or the batcher is shutting down). Counts as
  /// withdrawing that many announced images either way.
  std::optional<std::vector<std::future<InferenceResult>>> submit(std::vector<InferenceRequest> requests);
  size_t depth() const;
  const BatcherOptions& options() const { return options_; }
  /// Finishes everything queued, then stops the worker. Idempotent.
  void shutdown();

 private:
  using Clock = std::chrono::steady_clock;
  struct Job {
    InferenceRequest request;
    std::promise<InferenceResult> promise;
    Clock::time_point enqueued;
  };
  void run(int instance);
  void execute(std::vector<Job>& jobs, int instance);

  BatcherOptions options_;
  Observer observer_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  size_t announced_ = 0;  ///< images being decoded for submission
  std::vector<std::thread> workers_;
};

}  // namespace vigil::serve
