#pragma once
/// The queue between the request path and the prediction log (store/prediction_log.h). A request hands its
/// rows over and returns at once; one writer thread appends what has gathered in one transaction (up to 256
/// rows or every 200 ms), so a burst costs one commit, not one per image. When the queue is full (the disk is
/// slower than the traffic) the row is dropped and counted, never the request. Sampled input images are
/// written by the same thread, and rows older than the retention are pruned at start and every hour.

#include <opencv2/core/mat.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vigil/store/prediction_log.h"

namespace vigil::serve {

struct PredictionRecorderOptions {
  std::string workspace;
  size_t capacity = 4096;       ///< rows waiting at most (then dropped and counted)
  double image_sample = 0;      ///< fraction of inputs kept as JPEG (0..1), for review and retraining
  double retention_days = 30;   ///< older rows and their images are pruned (0 = keep forever)
  int64_t max_image_mb = 1024;  ///< kept images stop being written past this total (rows still logged)
  void validate() const;
};

class PredictionRecorder {
 public:
  explicit PredictionRecorder(PredictionRecorderOptions options);
  ~PredictionRecorder();
  PredictionRecorder(const PredictionRecorder&) = delete;
  PredictionRecorder& operator=(const PredictionRecorder&) = delete;

  /// Queues one row; with `bgr` non-empty and the sample drawing it, its JPEG is kept too. Never blocks on
  /// the database; false when the row was dropped (queue full).
  bool record(store::PredictionRow row, const cv::Mat& bgr = {});
  /// Whether the sample keeps this input (decided per row id, so it is reproducible and needs no lock).
  bool keeps_image(const std::string& id) const;

  /// Writes everything queued so far, then returns (tests, shutdown, reading what was just predicted).
  void flush();

  /// The log itself, for reads (stats, feedback, monitoring).
  store::PredictionLog& log() { return *log_; }

  uint64_t written() const { return written_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t failed() const { return failed_; }
  size_t depth() const;

 private:
  struct Item {
    store::PredictionRow row;
    cv::Mat bgr;
  };
  void run();
  void write_batch(std::vector<Item>& batch);
  void prune();

  PredictionRecorderOptions options_;
  std::unique_ptr<store::PredictionLog> log_;
  std::filesystem::path image_dir_;
  mutable std::mutex mutex_;
  std::condition_variable wake_, drained_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  size_t in_flight_ = 0;
  std::atomic<uint64_t> written_{0}, dropped_{0}, failed_{0};
  int64_t image_bytes_ = 0;
  std::thread thread_;
};

}  // namespace vigil::serve
