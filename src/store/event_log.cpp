// The events table (store/events.h): added beside the runs and registry tables of vigil.db on first use.

#include "vigil/store/events.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <mutex>

#include "store_impl.h"
#include "vigil/core/error.h"

namespace vigil::store {

namespace {

using json = nlohmann::json;
using detail::now_ms;
using detail::SqlValue;

constexpr const char* kEventsSchema = R"sql(
CREATE TABLE IF NOT EXISTS events(
  id TEXT PRIMARY KEY, camera TEXT NOT NULL, label TEXT NOT NULL, track_id BIGINT NOT NULL,
  start_ms BIGINT NOT NULL, end_ms BIGINT NOT NULL DEFAULT 0, end_reason TEXT NOT NULL DEFAULT '',
  top_score DOUBLE PRECISION NOT NULL DEFAULT 0, zones_json TEXT NOT NULL DEFAULT '[]',
  snapshot TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '', data_json TEXT NOT NULL DEFAULT '{}',
  updated_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_start ON events(start_ms);
CREATE INDEX IF NOT EXISTS events_by_camera ON events(camera, start_ms);
)sql";

constexpr const char* kEventColumns =
    "id, camera, label, track_id, start_ms, end_ms, end_reason, top_score, zones_json, snapshot, model, "
    "data_json, updated_ms";

EventRow read_row(detail::Statement& s) {
  EventRow r;
  r.id = s.text_at(0);
  r.camera = s.text_at(1);
  r.label = s.text_at(2);
  r.track_id = s.int_at(3);
  r.start_ms = s.int_at(4);
  r.end_ms = s.int_at(5);
  r.end_reason = s.text_at(6);
  r.top_score = s.double_at(7);
  const json zones = json::parse(s.text_at(8), nullptr, false);
  if (zones.is_array())
    for (const auto& z : zones)
      if (z.is_string()) r.zones.push_back(z.get<std::string>());
  r.snapshot = s.text_at(9);
  r.model = s.text_at(10);
  r.data_json = s.text_at(11);
  r.updated_ms = s.int_at(12);
  return r;
}

/// Escapes LIKE's wildcards so a zone name is matched literally.
std::string like_literal(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

void EventFilter::validate() const {
  VIGIL_CHECK(limit >= 1 && limit <= 10000, "limit: expected 1..10000, got {}", limit);
  VIGIL_CHECK(offset >= 0, "offset: expected >= 0, got {}", offset);
  VIGIL_CHECK(since_ms >= 0 && until_ms >= 0, "since/until: expected Unix milliseconds >= 0, got {} and {}",
              since_ms, until_ms);
}

struct EventLog::Impl {
  std::unique_ptr<detail::Database> db;
  std::mutex mutex;
};

EventLog::EventLog(const Workspace& ws, StoreOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->db = detail::open_side_table(ws, options, kEventsSchema);
}

EventLog::~EventLog() = default;

void EventLog::upsert(const EventRow& row) {
  VIGIL_CHECK(!row.id.empty() && !row.camera.empty(),
              "expected an event with an id and a camera, got '{}' / '{}'", row.id, row.camera);
  std::lock_guard lock(impl_->mutex);
  const std::string zones = json(row.zones).dump();
  const int64_t now = now_ms();
  impl_->db->write([&] {
    auto s = impl_->db->prepare(fmt::format(
        "INSERT INTO events({}) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET camera = "
        "excluded.camera, label = excluded.label, track_id = excluded.track_id, start_ms = "
        "excluded.start_ms, "
        "end_ms = excluded.end_ms, end_reason = excluded.end_reason, top_score = excluded.top_score, "
        "zones_json = excluded.zones_json, snapshot = excluded.snapshot, model = excluded.model, "
        "data_json = excluded.data_json, updated_ms = excluded.updated_ms",
        kEventColumns));
    s.bind_all({row.id, row.camera, row.label, row.track_id, row.start_ms, row.end_ms, row.end_reason,
                row.top_score, zones, row.snapshot, row.model, row.data_json.empty() ? "{}" : row.data_json,
                now});
    s.run();
  });
}

EventPage EventLog::search(const EventFilter& filter) {
  filter.validate();
  const detail::Dialect& d = impl_->db->dialect();
  detail::PagedQuery q;
  if (!filter.camera.empty()) q.where("camera = ?", filter.camera);
  if (!filter.label.empty()) q.where("label = ?", filter.label);
  if (!filter.zone.empty())
    q.where(fmt::format("zones_json {} ? ESCAPE '\\'", d.like_nocase),
            "%" + like_literal(json(filter.zone).dump()) + "%");
  if (filter.since_ms > 0) q.where("start_ms >= ?", filter.since_ms);
  if (filter.until_ms > 0) q.where("start_ms < ?", filter.until_ms);
  if (filter.ended) q.where(*filter.ended ? "end_ms > ?" : "end_ms = ?", int64_t{0});
  std::lock_guard lock(impl_->mutex);
  EventPage page;
  page.total = q.run(*impl_->db, "events", kEventColumns, "start_ms DESC, id", filter.limit, filter.offset,
                     [&](detail::Statement& s) { page.events.push_back(read_row(s)); });
  return page;
}

EventRow EventLog::get(const std::string& id) {
  std::lock_guard lock(impl_->mutex);
  auto s = impl_->db->prepare(fmt::format("SELECT {} FROM events WHERE id = ?", kEventColumns));
  s.bind(1, id);
  if (!s.step()) throw NotFound(fmt::format("no event '{}' in {}", id, impl_->db->name()));
  return read_row(s);
}

std::vector<std::string> EventLog::cameras() {
  std::lock_guard lock(impl_->mutex);
  auto s = impl_->db->prepare("SELECT DISTINCT camera FROM events ORDER BY camera");
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text_at(0));
  return out;
}

namespace detail {

std::unique_ptr<Database> open_side_table(const Workspace& ws, StoreOptions options, const char* schema) {
  options.reap_on_open = false;
  { Store store(ws, options); }  // creates, checks and migrates the database first
  auto db = open_database(resolve_store_url(ws, options), options);
  db->write_schema([&] { db->exec(schema); });
  return db;
}

}  // namespace detail

}  // namespace vigil::store
