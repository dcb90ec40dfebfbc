#include "vigil/serve/prediction_recorder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>

#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/workspace.h"
#include "vigil/image/decode.h"

namespace vigil::serve {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr size_t kBatchRows = 256;
constexpr auto kBatchWait = std::chrono::milliseconds(200);
constexpr auto kPruneEvery = std::chrono::hours(1);

/// A file name from a request id: ids are ours (hex + "/k"), but keep only safe characters anyway.
std::string file_stem(const std::string& id) {
  std::string out;
  for (char c : id) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  return out;
}

int64_t folder_bytes(const fs::path& dir) {
  int64_t total = 0;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  for (fs::recursive_directory_iterator it(dir, ec), end; it != end; it.increment(ec))
    if (it->is_regular_file(ec)) total += static_cast<int64_t>(it->file_size(ec));
  return total;
}

}  // namespace

void PredictionRecorderOptions::validate() const {
  VIGIL_CHECK(!workspace.empty(), "expected a workspace for the prediction log");
  VIGIL_CHECK(capacity >= 1, "log_queue: expected >= 1, got {}", capacity);
  VIGIL_CHECK(image_sample >= 0 && image_sample <= 1, "log_images: expected a fraction in 0..1, got {}",
              image_sample);
  VIGIL_CHECK(retention_days >= 0, "log_retention_days: expected >= 0, got {}", retention_days);
  VIGIL_CHECK(max_image_mb >= 0, "log_max_image_mb: expected >= 0, got {}", max_image_mb);
}

PredictionRecorder::PredictionRecorder(PredictionRecorderOptions options) : options_(std::move(options)) {
  options_.validate();
  Workspace ws(options_.workspace);
  log_ = std::make_unique<store::PredictionLog>(ws);
  image_dir_ = ws.root() / "predictions";
  if (options_.image_sample > 0) image_bytes_ = folder_bytes(image_dir_);
  prune();
  thread_ = std::thread([this] { run(); });
}

PredictionRecorder::~PredictionRecorder() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool PredictionRecorder::keeps_image(const std::string& id) const {
  if (options_.image_sample <= 0) return false;
  if (options_.image_sample >= 1) return true;
  const size_t h = std::hash<std::string>{}(id);
  return static_cast<double>(h % 1000000) / 1e6 < options_.image_sample;
}

bool PredictionRecorder::record(store::PredictionRow row, const cv::Mat& bgr) {
  Item item{std::move(row), {}};
  if (!bgr.empty() && keeps_image(item.row.id)) item.bgr = bgr;  // shares the pixels, no copy
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= options_.capacity) {
      ++dropped_;
      return false;
    }
    queue_.push_back(std::move(item));
    // The writer waits for a first row, then for a full batch (or kBatchWait): only those two moments need
    // it. Waking it on every row cost a context switch per request on the request path
    // (bench/prediction_log.sh).
    wake = queue_.size() == 1 || queue_.size() == kBatchRows;
  }
  if (wake) wake_.notify_one();
  return true;
}

void PredictionRecorder::flush() {
  std::unique_lock lock(mutex_);
  wake_.notify_all();
  drained_.wait(lock, [&] { return queue_.empty() && in_flight_ == 0; });
}

size_t PredictionRecorder::depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void PredictionRecorder::run() {
  auto next_prune = Clock::now() + kPruneEvery;
  std::unique_lock lock(mutex_);
  while (true) {
    // Gather: wake on the first row, then give a burst up to kBatchWait to fill a batch.
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (!stopping_ && queue_.size() < kBatchRows)
      wake_.wait_for(lock, kBatchWait, [&] { return stopping_ || queue_.size() >= kBatchRows; });
    if (queue_.empty() && stopping_) break;
    std::vector<Item> batch;
    while (!queue_.empty() && batch.size() < kBatchRows) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    in_flight_ = batch.size();
    lock.unlock();
    write_batch(batch);
    if (Clock::now() >= next_prune) {
      prune();
      next_prune = Clock::now() + kPruneEvery;
    }
    lock.lock();
    in_flight_ = 0;
    if (queue_.empty()) drained_.notify_all();
  }
  drained_.notify_all();
}

void PredictionRecorder::write_batch(std::vector<Item>& batch) {
  const int64_t image_cap = options_.max_image_mb * 1024 * 1024;
  std::vector<store::PredictionRow> rows;
  rows.reserve(batch.size());
  for (auto& item : batch) {
    if (!item.bgr.empty() && image_bytes_ < image_cap) {
      try {
        const std::string day = format_utc_ms(item.row.time_ms).substr(0, 10);
        const fs::path rel = fs::path("predictions") / day / (file_stem(item.row.id) + ".jpg");
        const std::string bytes = image::encode(item.bgr, "jpg", 90);
        write_file_atomic(fs::path(options_.workspace) / rel, bytes);
        image_bytes_ += static_cast<int64_t>(bytes.size());
        item.row.image = rel.generic_string();
      } catch (const std::exception& e) {  // a full disk loses the image, never the row
        spdlog::warn("prediction log: cannot keep the image of {}: {}", item.row.id, e.what());
      }
    }
    rows.push_back(std::move(item.row));
  }
  try {
    log_->append(rows);
    written_ += rows.size();
  } catch (const std::exception& e) {
    failed_ += rows.size();
    spdlog::warn("prediction log: {} rows not written: {}", rows.size(), e.what());
  }
}

void PredictionRecorder::prune() {
  if (options_.retention_days <= 0) return;
  const int64_t before = unix_now_ms() - static_cast<int64_t>(options_.retention_days * 86400e3);
  try {
    const int64_t removed = log_->prune(before);
    // Kept images live in one folder per UTC day: a day wholly before the cut goes with its rows.
    std::error_code ec;
    if (fs::is_directory(image_dir_, ec)) {
      const std::string cut_day = format_utc_ms(before).substr(0, 10);
      for (const auto& day : fs::directory_iterator(image_dir_, ec)) {
        if (day.is_directory(ec) && day.path().filename().string() < cut_day) {
          image_bytes_ -= folder_bytes(day.path());
          fs::remove_all(day.path(), ec);
        }
      }
    }
    if (removed > 0)
      spdlog::info("prediction log: pruned {} rows older than {} days", removed, options_.retention_days);
  } catch (const std::exception& e) {
    spdlog::warn("prediction log: pruning failed: {}", e.what());
  }
}

}  // namespace vigil::serve
