#include "observers.h"

namespace vigil::train::detail {

void ResultsCsvObserver::on_train_start(const RunStart& start) {
  csv_ = std::make_unique<ResultsCsv>(start.run_dir / "results.csv", start.columns);
  csv_->truncate_after(
      static_cast<double>(start.epochs_completed));  // rows of epochs the checkpoint has not seen end
}

void ResultsCsvObserver::on_epoch_end(const EpochReport& report) {
  csv_->append(report.metrics);
}

}  // namespace vigil::train::detail
