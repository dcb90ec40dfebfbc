#include "observers.h"

namespace vigil::train::detail {

void TensorBoardObserver::on_train_start(const RunStart& start) {
  events_ = std::make_unique<EventWriter>(start.run_dir);
}

void TensorBoardObserver::on_batch_end(const BatchReport& batch) {
  events_->add_scalar("train/batch_loss", batch.loss, batch.iteration);
}

void TensorBoardObserver::on_epoch_end(const EpochReport& report) {
  const int64_t step = report.epoch;
  for (const auto& [key, value] : report.metrics) {
    if (key != "epoch") events_->add_scalar(key, value, step);
  }
  events_->add_scalar("time/epoch_seconds", report.seconds, step);
  if (report.seconds > 0) events_->add_scalar("time/images_per_second", report.images / report.seconds, step);
  events_->flush();
}

void TensorBoardObserver::on_train_end(const TrainEnd& end) {
  events_->flush();
}

}  // namespace vigil::train::detail
