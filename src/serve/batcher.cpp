#include "vigil/serve/batcher.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <map>
#include <tuple>

#include "vigil/core/error.h"

namespace vigil::serve {

void BatcherOptions::validate() const {
  VIGIL_CHECK(max_batch >= 1 && max_batch <= 256, "expected max_batch in 1..256, got {}", max_batch);
  VIGIL_CHECK(max_queue_delay_ms >= 0 && max_queue_delay_ms <= 10000,
              "expected max_queue_delay_ms in 0..10000, got {}", max_queue_delay_ms);
  VIGIL_CHECK(capacity >= 1, "expected queue_capacity >= 1, got {}", capacity);
  VIGIL_CHECK(instances >= 1 && instances <= 64, "expected instances in 1..64, got {}", instances);
  VIGIL_CHECK(threads_per_instance >= 0, "expected threads_per_instance >= 0, got {}", threads_per_instance);
}

Batcher::Batcher(BatcherOptions options, Observer observer)
    : options_(options), observer_(std::move(observer)) {
  options_.validate();
  for (int i = 0; i < options_.instances; ++i) workers_.emplace_back([this, i] { run(i); });
}

Batcher::~Batcher() {
  shutdown();
}

void Batcher::announce(size_t n) {
  std::lock_guard lock(mutex_);
  announced_ += n;
}

void Batcher::withdraw(size_t n) {
  {
    std::lock_guard lock(mutex_);
    announced_ -= std::min(announced_, n);
  }
  cv_.notify_all();
}

std::optional<std::vector<std::future<InferenceResult>>> Batcher::submit(
    std::vector<InferenceRequest> requests) {
  std::vector<std::future<InferenceResult>> futures;
  {
    std::lock_guard lock(mutex_);
    announced_ -= std::min(announced_, requests.size());
    if (stopping_ || queue_.size() + requests.size() > options_.capacity) {
      cv_.notify_all();
      return std::nullopt;
    }
    const auto now = Clock::now();
    for (auto& r : requests) {
      Job job{std::move(r), {}, now};
      futures.push_back(job.promise.get_future());
      queue_.push_back(std::move(job));
    }
  }
  cv_.notify_all();
  return futures;
}

size_t Batcher::depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Batcher::shutdown() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_)
    if (w.joinable()) w.join();
}

void Batcher::run(int instance) {
  if (options_.threads_per_instance > 0) at::set_num_threads(options_.threads_per_instance);
  const auto delay = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(options_.max_queue_delay_ms));
  const size_t max_batch = static_cast<size_t>(options_.max_batch);
  while (true) {
    std::vector<Job> jobs;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and everything queued is done
      // Wait for more work until the oldest job has waited max_queue_delay, unless the batch is full or no
      // other image is on its way (then waiting only adds latency).
      const auto deadline = queue_.front().enqueued + delay;
      cv_.wait_until(lock, deadline, [&] {
        return stopping_ || queue_.size() >= max_batch || announced_ == 0 || queue_.empty();
      });
      if (queue_.empty()) continue;  // another worker took it
      const size_t n = std::min(max_batch, queue_.size());
      for (size_t i = 0; i < n; ++i) {
        jobs.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    execute(jobs, instance);
  }
}

void Batcher::execute(std::vector<Job>& jobs, int instance) {
  // One forward pass per model and threshold set (a hot reload or per-request thresholds split a batch).
  using Key = std::tuple<ServedModel*, double, double, int64_t>;
  std::map<Key, std::vector<size_t>> groups;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const InferenceRequest& r = jobs[i].request;
    groups[{r.model.get(), r.post.score_threshold, r.post.nms_iou, r.post.max_detections}].push_back(i);
  }
  for (const auto& [key, members] : groups) {
    const auto start = Clock::now();
    std::vector<InferenceResult> results(members.size());
    std::vector<torch::Tensor> inputs;
    std::vector<model::Prediction*> outputs;
    std::vector<double> waits;
    for (size_t k = 0; k < members.size(); ++k) {
      Job& job = jobs[members[k]];
      inputs.push_back(job.request.input);
      results[k].prediction.width = job.request.width;
      results[k].prediction.height = job.request.height;
      results[k].queue_ms = std::chrono::duration<double, std::milli>(start - job.enqueued).count();
      waits.push_back(results[k].queue_ms / 1000);
      outputs.push_back(&results[k].prediction);
    }
    ServedModel& model = *jobs[members.front()].request.model;
    std::string error;
    try {
      model::Predictor& predictor = model.instance(instance);
      predictor.set_postprocess(jobs[members.front()].request.post);
      predictor.predict(inputs, outputs);
    } catch (const std::exception& e) {
      error = e.what();
      spdlog::error("serve: inference failed on a batch of {}: {}", members.size(), error);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (observer_) observer_(static_cast<int>(members.size()), seconds, waits);
    for (size_t k = 0; k < members.size(); ++k) {
      results[k].inference_ms = seconds * 1000;
      results[k].batch_size = static_cast<int>(members.size());
      results[k].error = error;
      jobs[members[k]].promise.set_value(std::move(results[k]));
    }
  }
}

}  // namespace vigil::serve
