// The predictions table (store/prediction_log.h), added beside runs, registry and events in vigil.db.

#include "vigil/store/prediction_log.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <mutex>

#include "store_impl.h"
#include "vigil/core/error.h"

namespace vigil::store {

namespace {

using detail::SqlValue;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS predictions(
  id TEXT PRIMARY KEY, request_id TEXT NOT NULL DEFAULT '', time_ms BIGINT NOT NULL, model TEXT NOT NULL,
  version TEXT NOT NULL DEFAULT '', route TEXT NOT NULL DEFAULT '', client TEXT NOT NULL DEFAULT '',
  latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0, input_json TEXT NOT NULL DEFAULT '{}',
  output_json TEXT NOT NULL DEFAULT '{}', image TEXT NOT NULL DEFAULT '',
  feedback_json TEXT NOT NULL DEFAULT '', feedback_ms BIGINT NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions(time_ms);
CREATE INDEX IF NOT EXISTS predictions_by_model ON predictions(model, time_ms);
)sql";

constexpr const char* kColumns =
    "id, request_id, time_ms, model, version, route, client, latency_ms, input_json, output_json, image, "
    "feedback_json, "
    "feedback_ms";

PredictionRow read_row(detail::Statement& s) {
  PredictionRow r;
  r.id = s.text_at(0);
  r.request_id = s.text_at(1);
  r.time_ms = s.int_at(2);
  r.model = s.text_at(3);
  r.version = s.text_at(4);
  r.route = s.text_at(5);
  r.client = s.text_at(6);
  r.latency_ms = s.double_at(7);
  r.input_json = s.text_at(8);
  r.output_json = s.text_at(9);
  r.image = s.text_at(10);
  r.feedback_json = s.text_at(11);
  r.feedback_ms = s.int_at(12);
  return r;
}

void check_json(const std::string& text, const std::string& id, const char* field) {
  VIGIL_CHECK(nlohmann::json::accept(text), "prediction '{}': {} is not valid JSON", id, field);
}

}  // namespace

void PredictionFilter::validate() const {
  VIGIL_CHECK(limit >= 1 && limit <= 1000000, "limit: expected 1..1000000, got {}", limit);
  VIGIL_CHECK(offset >= 0, "offset: expected >= 0, got {}", offset);
  VIGIL_CHECK(since_ms >= 0 && until_ms >= 0, "since/until: expected Unix milliseconds >= 0, got {} and {}",
              since_ms, until_ms);
}

struct PredictionLog::Impl {
  std::unique_ptr<detail::Database> db;
  std::mutex mutex;
};

PredictionLog::PredictionLog(const Workspace& ws, StoreOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->db = detail::open_side_table(ws, options, kSchema);
}

PredictionLog::~PredictionLog() = default;

void PredictionLog::append(const std::vector<PredictionRow>& rows) {
  if (rows.empty()) return;
  for (const auto& r : rows) {
    VIGIL_CHECK(!r.id.empty() && !r.model.empty(),
                "expected a prediction with an id and a model, got '{}' / '{}'", r.id, r.model);
    check_json(r.input_json, r.id, "input_json");
    check_json(r.output_json, r.id, "output_json");
    if (!r.feedback_json.empty()) check_json(r.feedback_json, r.id, "feedback_json");
  }
  std::lock_guard lock(impl_->mutex);
  impl_->db->write([&] {
    auto s = impl_->db->prepare(
        fmt::format("INSERT INTO predictions({}) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)", kColumns));
    for (const auto& r : rows) {
      s.reset();
      s.bind_all({r.id, r.request_id, r.time_ms, r.model, r.version, r.route, r.client, r.latency_ms,
                  r.input_json, r.output_json, r.image, r.feedback_json, r.feedback_ms});
      try {
        s.run();
      } catch (const IoError& e) {
        throw InvalidArgument(fmt::format("prediction '{}' is logged already ({})", r.id, e.what()));
      }
    }
  });
}

PredictionPage PredictionLog::search(const PredictionFilter& filter) {
  filter.validate();
  detail::PagedQuery q;
  if (!filter.model.empty()) q.where("model = ?", filter.model);
  if (!filter.version.empty()) q.where("version = ?", filter.version);
  if (filter.since_ms > 0) q.where("time_ms >= ?", filter.since_ms);
  if (filter.until_ms > 0) q.where("time_ms < ?", filter.until_ms);
  if (filter.has_feedback)
    q.where(*filter.has_feedback ? "feedback_json != ?" : "feedback_json = ?", std::string());
  std::lock_guard lock(impl_->mutex);
  PredictionPage page;
  page.total = q.run(*impl_->db, "predictions", kColumns, "time_ms DESC, id", filter.limit, filter.offset,
                     [&](detail::Statement& s) { page.rows.push_back(read_row(s)); });
  return page;
}

PredictionRow PredictionLog::get(const std::string& id) {
  std::lock_guard lock(impl_->mutex);
  auto s = impl_->db->prepare(fmt::format("SELECT {} FROM predictions WHERE id = ?", kColumns));
  s.bind(1, id);
  if (!s.step()) throw NotFound(fmt::format("no prediction '{}' in {}", id, impl_->db->name()));
  return read_row(s);
}

void PredictionLog::set_feedback(const std::string& id, const std::string& feedback_json) {
  check_json(feedback_json, id, "feedback");
  std::lock_guard lock(impl_->mutex);
  bool found = false;
  impl_->db->write([&] {
    auto s = impl_->db->prepare("UPDATE predictions SET feedback_json = ?, feedback_ms = ? WHERE id = ?");
    s.bind_all({feedback_json, detail::now_ms(), id});
    found = s.run() > 0;
  });
  if (!found) throw NotFound(fmt::format("no prediction '{}' in {}", id, impl_->db->name()));
}

int64_t PredictionLog::prune(int64_t before_ms) {
  std::lock_guard lock(impl_->mutex);
  int64_t removed = 0;
  impl_->db->write([&] {
    auto s = impl_->db->prepare("DELETE FROM predictions WHERE time_ms < ?");
    s.bind(1, before_ms);
    removed = s.run();
  });
  return removed;
}

}  // namespace vigil::store
