#include <spdlog/spdlog.h>

#include "observers.h"
#include "vigil/core/fs.h"

namespace vigil::train::detail {

void LogObserver::on_train_start(const RunStart& s) {
  columns_ = s.columns;
  spdlog::info(
      "training {} on {} (split {}: {} train / {} val samples, {} classes): {} parameters ({} "
      "trainable), {} threads, device {}; run folder {}",
      s.arch, s.dataset, s.split, s.train_samples, s.val_samples, s.classes, s.parameters,
      s.trainable_parameters, s.threads, s.device, to_utf8(s.run_dir));
  if (!s.resumed_from.empty()) {
    spdlog::info("resuming from {}: epoch {}, batch {} of {}, iteration {}", to_utf8(s.resumed_from),
                 s.epochs_completed + 1, s.batch_in_epoch, s.batches_per_epoch, s.iterations);
  }
  if (s.epochs_completed >= s.epochs)
    spdlog::info("run {} has already trained all {} epochs", s.run_name, s.epochs);
}

void LogObserver::on_epoch_end(const EpochReport& r) {
  std::string summary;
  for (const auto& c : columns_) {
    if (c != "epoch" && r.metrics.count(c)) summary += fmt::format("  {} {:.5g}", c, r.metrics.at(c));
  }
  spdlog::info("epoch {}/{}{}  ({:.1f} s){}", r.epoch, r.epochs, summary, r.seconds,
               r.improved ? "  best so far" : "");
}

void LogObserver::on_train_end(const TrainEnd& end) {
  if (!end.early_stopped) return;
  spdlog::info("early stopping: no improvement of {} for {} epochs (best {:.5g} at epoch {})", end.metric,
               end.patience, end.best_metric, end.best_epoch);
}

}  // namespace vigil::train::detail
