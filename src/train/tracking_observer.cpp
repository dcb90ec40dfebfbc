#include <spdlog/spdlog.h>

#include "observers.h"
#include "vigil/core/interrupt.h"

namespace vigil::train::detail {

namespace fs = std::filesystem;

TrackingObserver::TrackingObserver(std::unique_ptr<TrackedRun> run, fs::path run_dir)
    : run_(std::move(run)), run_dir_(std::move(run_dir)) {}

void TrackingObserver::on_epoch_end(const EpochReport& report) {
  auto values = report.metrics;
  values.erase("epoch");
  values["time/epoch_seconds"] = report.seconds;
  run_->log_metrics(values, report.epoch);
}

void TrackingObserver::on_finish(const TrainResult& result) {
  std::vector<store::Artifact> artifacts;
  for (const auto& dir : {run_dir_, run_dir_ / "weights"}) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file()) artifacts.push_back(make_artifact(e.path(), run_dir_, ""));
    }
  }
  run_->log_artifacts(artifacts);
  // The run's summary names the weights it hands over (`vigil runs show`), not only the last epoch.
  if (result.best_epoch > 0) {
    try {
      run_->store().set_tag(run_->id(), "best.epoch", std::to_string(result.best_epoch));
      run_->store().set_tag(run_->id(), "best.metric",
                            fmt::format("{} {:.5g}", result.metric, result.best_metric));
    } catch (const std::exception& e) {
      spdlog::warn("tracking: could not tag run {} with its best epoch: {}", run_->id(), e.what());
    }
  }
  run_->end(result.interrupted ? store::RunStatus::kKilled : store::RunStatus::kFinished);
}

void TrackingObserver::on_failure() noexcept {
  // An observer after this one may fail the run once it has been recorded as finished: that record stands.
  if (run_->ended()) return;
  try {
    run_->end(interrupt_requested() ? store::RunStatus::kKilled : store::RunStatus::kFailed);
  } catch (const std::exception& e) {  // the run's own error is the one to report
    spdlog::warn("tracking: could not mark run {} ended: {}", run_->id(), e.what());
  }
}

}  // namespace vigil::train::detail
