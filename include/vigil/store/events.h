#pragma once
/// Alert events in the workspace store: one row per event (vigil watch's start / update / end records of one
/// track's episode fold into it), queryable by camera, label, zone, time and whether it is still open. The
/// `events` table lives in the same <workspace>/vigil.db as runs and models; it is only ever added (CREATE
/// TABLE IF NOT EXISTS), so the schema version does not change and older vigils keep opening the database.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/core/workspace.h"
#include "vigil/store/store.h"

namespace vigil::store {

/// One event as stored.
struct EventRow {
  std::string id;  ///< the watcher's event id ("<camera>-<start ms>-<track id>")
  std::string camera;
  std::string label;
  int64_t track_id = 0;
  int64_t start_ms = 0;    ///< Unix milliseconds
  int64_t end_ms = 0;      ///< 0 while open
  std::string end_reason;  ///< "" while open; else track_ended, left_zones, stationary, stopped
  double top_score = 0;
  std::vector<std::string> zones;  ///< zones entered, in order
  std::string snapshot;            ///< JPEG of the best frame ("" when none)
  std::string model;               ///< what detected it
  std::string data_json;           ///< the whole event as the watcher writes it (boxes included)
  int64_t updated_ms = 0;          ///< set by the store on every write
};

/// Which events search() returns, newest start first.
struct EventFilter {
  std::string camera;         ///< "" = every camera
  std::string label;          ///< "" = every label
  std::string zone;           ///< events that entered this zone ("" = any)
  int64_t since_ms = 0;       ///< started at or after (0 = no bound)
  int64_t until_ms = 0;       ///< started before (0 = no bound)
  std::optional<bool> ended;  ///< true: ended only; false: open only
  int limit = 100;            ///< page size (1..10000)
  int offset = 0;
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

struct EventPage {
  std::vector<EventRow> events;
  int64_t total = 0;  ///< matching events in all pages
};

/// The events table of a workspace store. Thread-safe (one statement sequence at a time); several processes
/// may write at once (WAL, retried transactions, as Store).
class EventLog {
 public:
  /// Opens the workspace store (creating or migrating it as Store does) and adds the events table if missing.
  explicit EventLog(const Workspace& ws, StoreOptions options = {});
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  /// Inserts the event or replaces the row with its id (each record of an event carries all of it).
  void upsert(const EventRow& row);
  EventPage search(const EventFilter& filter);
  /// NotFound naming the id when there is no such event.
  EventRow get(const std::string& id);
  /// Cameras that have events, sorted.
  std::vector<std::string> cameras();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::store
