#include "observers.h"

namespace vigil::train::detail {

namespace fs = std::filesystem;

CheckpointWriter::CheckpointWriter(const fs::path& run_dir, SaveFn save, bool best_written)
    : last_(run_dir / "weights" / kLastName),
      best_(run_dir / "weights" / kBestName),
      save_(std::move(save)),
      best_written_(best_written) {}

void CheckpointWriter::on_epoch_end(const EpochReport& report) {
  if (report.improved) {
    // best before last: a kill between the two resumes from the previous last.ckpt and redoes this epoch.
    save_(best_, /*with_optimizer=*/false, best_written_);
    best_written_ = true;
  }
  save_(last_, /*with_optimizer=*/true, best_written_);
}

void CheckpointWriter::on_train_end(const TrainEnd& end) {
  if (end.stopped_inside_epoch) {
    save_(last_, /*with_optimizer=*/true, best_written_);  // the exact position inside the epoch
  } else if (!end.interrupted && !best_written_ && fs::exists(last_)) {
    save_(best_, /*with_optimizer=*/false, best_written_);  // no finite metric: keep the last
    best_written_ = true;
  }
}

}  // namespace vigil::train::detail
