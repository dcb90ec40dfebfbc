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
  if (s.time_budget > 0) {
    spdlog::info(
        "time budget {:.0f} s ({:.0f} s spent): the schedule is fitted to it, {} epochs is the first "
        "guess",
        s.time_budget, s.time_spent, s.epochs);
  } else if (s.epochs_completed >= s.epochs) {
    spdlog::info("run {} has already trained all {} epochs", s.run_name, s.epochs);
  }
  if (s.stop_metric != s.metric) {
    spdlog::info("early stopping follows {} as configured; best.ckpt follows {}", s.stop_metric, s.metric);
  }
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
  if (end.early_stopped) {
    spdlog::info("early stopping: no improvement of {} for {} epochs (best {:.5g} at epoch {})",
                 end.stop_metric, end.patience, end.best_stop_value, end.best_stop_epoch);
  }
  if (end.time_budget_reached) {
    spdlog::info("time budget reached after {:.0f} s and {} epochs", end.seconds, end.epochs_completed);
  }
  if (end.best_epoch > 0) {
    spdlog::info("best.ckpt holds epoch {}: {} {:.5g}", end.best_epoch, end.metric, end.best_metric);
  }
}

}  // namespace vigil::train::detail
