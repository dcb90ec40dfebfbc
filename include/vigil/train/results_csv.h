#pragma once
/// `results.csv` in the layout Ultralytics writes (`epoch, train/box_loss, ..., metrics/mAP50(B), ...,
/// lr/pg0`), so the plotting scripts and notebooks people already have read vigil runs unchanged.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace vigil::train {

/// Appends one row per epoch. Cells are right-aligned to 23 characters and numbers use %.5g, as Ultralytics
/// does (`'%23s,' * n` header, `'%23.5g,' * n` rows); a column missing from a row is an empty cell, which
/// pandas reads as NaN. Not thread-safe: one trainer thread owns it.
class ResultsCsv {
 public:
  /// `columns` is the whole header in order, normally starting with "epoch". When `file` already exists
  /// (a resumed run) its header must name the same columns, else InvalidArgument naming the file; a last line
  /// cut short by a kill is dropped so the next row starts cleanly.
  ResultsCsv(std::filesystem::path file, std::vector<std::string> columns);

  /// Appends a row and flushes it to disk. A key that is not a column -> InvalidArgument naming it.
  void append(const std::map<std::string, double>& row);

  /// Drops rows whose "epoch" cell is above `epoch`, for a resume from a checkpoint older than the last row
  /// (a kill between writing the row and saving the checkpoint). No "epoch" column -> InvalidArgument.
  void truncate_after(double epoch);

  const std::filesystem::path& path() const { return file_; }
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  std::filesystem::path file_;
  std::vector<std::string> columns_;
};

}  // namespace vigil::train
