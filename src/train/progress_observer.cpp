#include <fmt/format.h>

#include "observers.h"

namespace vigil::train::detail {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void ProgressObserver::on_epoch_start(const EpochStart& epoch) {
  bar_.emplace(fmt::format("epoch {}/{}", epoch.epoch, epoch.epochs),
               static_cast<size_t>(epoch.batches_per_epoch), "batch");
  bar_->advance(static_cast<size_t>(epoch.batches_done));
  start_ = std::chrono::steady_clock::now();
  images_ = 0;
}

void ProgressObserver::on_batch_end(const BatchReport& batch) {
  if (!bar_) return;
  images_ += batch.images;
  // The total loss first, then the parts in the model's order.
  std::string loss, parts;
  for (const auto& [name, mean] : batch.mean_losses) {
    if (name == "loss")
      loss = fmt::format("loss {:.4f}", mean);
    else
      parts += fmt::format(" {} {:.4f}", name, mean);
  }
  std::string left;
  if (batch.time_left >= 0) {
    const auto s = static_cast<int64_t>(batch.time_left);
    left = fmt::format(" {}:{:02d}:{:02d} left", s / 3600, s / 60 % 60, s % 60);
  }
  bar_->set_postfix(fmt::format("{}{} lr {:.3g} {:.1f} img/s{}", loss, parts, batch.lr,
                                images_ / seconds_since(start_), left));
  bar_->advance();
}

void ProgressObserver::on_validation_start(const ValidationProgress& progress) {
  bar_.reset();  // finishes the training bar with its final line
  bar_.emplace("  validating", static_cast<size_t>(progress.batches), "batch");
}

void ProgressObserver::on_validation_batch_end(const ValidationProgress& progress) {
  if (bar_) bar_->advance();
}

void ProgressObserver::on_epoch_end(const EpochReport& report) {
  bar_.reset();
}

void ProgressObserver::on_train_end(const TrainEnd& end) {
  bar_.reset();
}

void ProgressObserver::on_failure() noexcept {
  bar_.reset();
}

}  // namespace vigil::train::detail
