#pragma once
/// The prediction log: one row per answered image, written by `vigil serve` (and read by monitoring,
/// /v1/stats and the feedback loop). Like the events table it lives in <workspace>/vigil.db and is only ever
/// added (CREATE TABLE IF NOT EXISTS), so the schema version stays and older vigils keep opening the
/// database. Inputs and outputs are JSON documents the writer chooses (image statistics; labels, scores,
/// boxes): the store does not interpret them, so adding a statistic needs no migration.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/core/workspace.h"
#include "vigil/store/store.h"

namespace vigil::store {

struct PredictionRow {
  std::string id;          ///< unique per image (the server makes it; the request id may repeat)
  std::string request_id;  ///< the HTTP request's X-Request-Id (shared by the images of a batch)
  int64_t time_ms = 0;     ///< Unix milliseconds
  std::string model;       ///< registered name or file stem
  std::string version;     ///< the served version (registry version or file hash prefix)
  std::string route;       ///< "/v1/predict", "/v2/models/{name}/infer", ...
  std::string client;      ///< remote address
  double latency_ms = 0;
  std::string input_json = "{}";   ///< input statistics (width, height, brightness, ...)
  std::string output_json = "{}";  ///< what was answered (label/score, or boxes)
  std::string image;               ///< a kept sample of the input, relative to the workspace ("" = not kept)
  std::string feedback_json;       ///< "" until feedback arrives: {"correct": bool, "label"?, "boxes"?, ...}
  int64_t feedback_ms = 0;
};

/// Which predictions search() returns, newest first.
struct PredictionFilter {
  std::string model;                 ///< "" = every model
  std::string version;               ///< "" = every version
  int64_t since_ms = 0;              ///< at or after (0 = no bound)
  int64_t until_ms = 0;              ///< before (0 = no bound)
  std::optional<bool> has_feedback;  ///< true: with feedback only; false: without
  int limit = 1000;                  ///< page size (1..1000000: monitoring reads whole windows)
  int offset = 0;
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

struct PredictionPage {
  std::vector<PredictionRow> rows;
  int64_t total = 0;  ///< matching rows in all pages
};

/// The predictions table of a workspace store. Thread-safe; several processes (replicas) may write at once.
class PredictionLog {
 public:
  explicit PredictionLog(const Workspace& ws, StoreOptions options = {});
  ~PredictionLog();
  PredictionLog(const PredictionLog&) = delete;
  PredictionLog& operator=(const PredictionLog&) = delete;

  /// Appends rows in one transaction (the writer batches: one fsync for many predictions). A row whose id
  /// exists already is an error naming it, and nothing of the batch is written.
  void append(const std::vector<PredictionRow>& rows);
  PredictionPage search(const PredictionFilter& filter);
  /// NotFound naming the id.
  PredictionRow get(const std::string& id);
  /// Sets (or replaces) the feedback of a prediction; NotFound naming the id when there is none.
  void set_feedback(const std::string& id, const std::string& feedback_json);
  /// Deletes rows older than `before_ms`; returns how many (their kept images are the caller's to delete).
  int64_t prune(int64_t before_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::store
