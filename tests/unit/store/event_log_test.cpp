// The events table on a real SQLite file and a real PostgreSQL database (each test runs on both): an event's
// records fold into one row, filters by camera, label, zone, time and open/ended, paging with a total, a
// second connection seeing the rows, and an older store (runs only) gaining the table without a schema
// change.

#include "vigil/store/events.h"

#include <gtest/gtest.h>

#include "store_backends.h"
#include "tests_util.h"
#include "vigil/core/error.h"

namespace vigil::store {
namespace {

using vigil::testing::TempDir;

EventRow row(const std::string& id, const std::string& camera, const std::string& label, int64_t start_ms,
             std::vector<std::string> zones = {}) {
  EventRow r;
  r.id = id;
  r.camera = camera;
  r.label = label;
  r.track_id = 1;
  r.start_ms = start_ms;
  r.top_score = 0.8;
  r.zones = std::move(zones);
  r.data_json = R"({"type":"start"})";
  return r;
}

std::vector<std::string> ids(const EventPage& p) {
  std::vector<std::string> out;
  for (const auto& e : p.events) out.push_back(e.id);
  return out;
}

class EventLogTest : public vigil::testing::StoreBackendTest {};
VIGIL_STORE_BACKENDS(EventLogTest);

TEST_P(EventLogTest, RecordsOfOneEventFoldIntoOneRowAndFiltersSelect) {
  TempDir tmp;
  Workspace ws(tmp / "ws");
  EventLog log(ws);
  log.upsert(row("door-1000-1", "door", "person", 1000, {"porch"}));
  log.upsert(row("door-2000-2", "door", "car", 2000));
  log.upsert(row("yard-3000-1", "yard", "person", 3000, {"lawn", "porch_2"}));
  EventRow ended = row("door-1000-1", "door", "person", 1000, {"porch", "gate"});
  ended.end_ms = 1800;
  ended.end_reason = "left_zones";
  ended.snapshot = "/s/door-1000-1.jpg";
  log.upsert(ended);

  EXPECT_EQ(ids(log.search({})), (std::vector<std::string>{"yard-3000-1", "door-2000-2", "door-1000-1"}));
  const EventRow got = log.get("door-1000-1");
  EXPECT_EQ(got.end_ms, 1800);
  EXPECT_EQ(got.end_reason, "left_zones");
  EXPECT_EQ(got.zones, (std::vector<std::string>{"porch", "gate"}));
  EXPECT_EQ(got.snapshot, "/s/door-1000-1.jpg");
  EXPECT_GT(got.updated_ms, 0);

  EventFilter f;
  f.camera = "door";
  EXPECT_EQ(ids(log.search(f)), (std::vector<std::string>{"door-2000-2", "door-1000-1"}));
  f = {};
  f.label = "person";
  EXPECT_EQ(log.search(f).total, 2);
  f = {};
  f.zone = "porch";  // matched as a whole name: porch_2 is another zone
  EXPECT_EQ(ids(log.search(f)), (std::vector<std::string>{"door-1000-1"}));
  f = {};
  f.ended = false;
  EXPECT_EQ(ids(log.search(f)), (std::vector<std::string>{"yard-3000-1", "door-2000-2"}));
  f.ended = true;
  EXPECT_EQ(ids(log.search(f)), (std::vector<std::string>{"door-1000-1"}));
  f = {};
  f.since_ms = 1500;
  f.until_ms = 3000;
  EXPECT_EQ(ids(log.search(f)), (std::vector<std::string>{"door-2000-2"}));
  f = {};
  f.limit = 1;
  f.offset = 1;
  const auto page = log.search(f);
  EXPECT_EQ(ids(page), (std::vector<std::string>{"door-2000-2"}));
  EXPECT_EQ(page.total, 3);
  EXPECT_EQ(log.cameras(), (std::vector<std::string>{"door", "yard"}));

  EventLog other(ws);  // another connection, as another process would have
  EXPECT_EQ(other.search({}).total, 3);
  EXPECT_THROW(log.get("nope"), NotFound);
  f = {};
  f.limit = 0;
  EXPECT_THROW(log.search(f), InvalidArgument);
}

TEST_P(EventLogTest, ExistingStoreGainsTheTableAndKeepsItsRuns) {
  TempDir tmp;
  Workspace ws(tmp / "ws");
  std::string run;
  {
    Store store(ws);
    NewRun r;
    r.name = "before-events";
    r.kind = "train";
    run = store.create_run(r);
  }
  EventLog log(ws);
  log.upsert(row("cam-1-1", "cam", "gun", 1));
  Store store(ws);
  EXPECT_EQ(store.get_run(run).info.name, "before-events");
  EXPECT_EQ(log.search({}).total, 1);
}

}  // namespace
}  // namespace vigil::store
