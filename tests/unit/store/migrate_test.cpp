// `vigil store migrate` on real engines: a workspace's SQLite store moved into a fresh PostgreSQL database
// keeps every run (params, metric histories with NaN, tags, artifacts), experiment, registry version, alias,
// event and prediction, compared through the Store API; the moved store keeps working (new runs, new
// experiments, new versions); a second migrate into the now non-empty database is refused and writes nothing.

#include "vigil/store/store_migrate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "pg_server.h"
#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/store/events.h"
#include "vigil/store/json.h"
#include "vigil/store/prediction_log.h"
#include "vigil/store/store.h"

namespace vigil::store {
namespace {

using ::testing::HasSubstr;
using vigil::testing::TempDir;
using json = nlohmann::json;

/// Everything a store holds, as JSON through the public API (running runs' duration left out: it moves).
json snapshot(const Workspace& ws, const std::string& url) {
  StoreOptions o;
  o.url = url;
  o.reap_on_open = false;
  Store s(ws, o);
  json out;
  RunFilter all;
  all.order_by = "name";
  for (const auto& r : s.search_runs(all).runs) {
    json j = to_json(r, true);
    j.erase("duration_s");
    for (const auto& key : s.metric_keys(r.info.id))
      j["history"][key] = to_json(s.metric_history(r.info.id, key));
    out["runs"].push_back(j);
  }
  out["experiments"] = s.experiments();
  for (const auto& m : s.list_models()) {
    out["models"].push_back(to_json(m));
    for (const auto& v : s.list_versions(m.name)) out["versions"].push_back(to_json(v));
  }
  EventLog events(ws, o);
  for (const auto& e : events.search({}).events) out["events"].push_back(to_json(e));
  PredictionLog predictions(ws, o);
  for (const auto& p : predictions.search({}).rows) {
    out["predictions"].push_back({p.id, p.request_id, p.time_ms, p.model, p.version, p.route, p.client,
                                  p.latency_ms, p.input_json, p.output_json, p.image, p.feedback_json,
                                  p.feedback_ms});
  }
  return out;
}

NewRun run_named(const std::string& name, const std::string& experiment) {
  NewRun r;
  r.name = name;
  r.experiment = experiment;
  r.kind = "train";
  r.dataset_id = "ds-" + name;
  r.params = {{"optimizer.lr", "0.01"}, {"epochs", "3"}};
  r.tags = {{"note", "it's \"quoted\"; and ? marked"}};  // quotes and '?' pass through as data
  return r;
}

void fill(const Workspace& ws, const std::string& url, const TempDir& dir) {
  StoreOptions o;
  o.url = url;
  Store s(ws, o);
  const auto a = s.create_run(run_named("guns-a", "guns"));
  s.log_metrics(a, {{"loss", 0.9, 1, 1000},
                    {"loss", 0.4, 2, 2000},
                    {"acc", std::nan(""), 1, 1500},
                    {"acc", 0.75, 2, 2500}});
  s.log_artifact(a, {"weights/best.ckpt", "checkpoint", "abc", 7});
  s.end_run(a, RunStatus::kFinished);
  const auto b = s.create_run(run_named("masks-b", "masks"));
  s.log_metric(b, "loss", 1.5, 1);
  s.end_run(b, RunStatus::kFailed);
  s.create_run(run_named("still-running", "Default"));

  NewModelVersion v;
  v.name = "guns";
  v.run_id = a;
  v.arch = "ssdlite";
  v.task = "detection";
  v.metrics = {{"mAP50", 0.5}};
  v.info_json = R"({"arch":"ssdlite"})";
  vigil::testing::write_text(dir / "w1.ckpt", "weights one");
  vigil::testing::write_text(dir / "w2.ckpt", "weights two");
  s.register_model_file(v, dir / "w1.ckpt");
  s.register_model_file(v, dir / "w2.ckpt");
  s.set_alias("guns", "production", 1);
  s.set_alias("guns", "staging", 2);

  EventLog events(ws, o);
  EventRow e;
  e.id = "door-1000-1";
  e.camera = "door";
  e.label = "gun";
  e.track_id = 1;
  e.start_ms = 1000;
  e.end_ms = 1800;
  e.end_reason = "track_ended";
  e.top_score = 0.875;
  e.zones = {"porch"};
  e.data_json = R"({"type":"end"})";
  events.upsert(e);
  PredictionLog predictions(ws, o);
  PredictionRow p;
  p.id = "p1";
  p.model = "guns";
  p.version = "1";
  p.time_ms = 5000;
  p.latency_ms = 12.25;
  p.output_json = R"({"boxes":[]})";
  p.feedback_json = R"({"correct":true})";
  p.feedback_ms = 6000;
  PredictionRow q = p;
  q.id = "p2";
  q.feedback_json.clear();
  q.feedback_ms = 0;
  predictions.append({p, q});
}

TEST(StoreMigrate, SqliteToPostgresqlKeepsEveryRowAndRefusesASecondMove) {
  std::string why;
  bool absent = false;
  auto* pg = vigil::testing::PgServer::get(why, absent);
  if (!pg && absent) GTEST_SKIP() << why;
  ASSERT_NE(pg, nullptr) << why;
  TempDir dir;
  const Workspace ws(dir / "ws");
  const std::string from = "sqlite:" + (dir / "ws" / "vigil.db").string();
  const std::string to = pg->create_database();
  fill(ws, from, dir);
  const json before = snapshot(ws, from);
  ASSERT_EQ(before["runs"].size(), 3u);
  ASSERT_EQ(before["versions"].size(), 2u);

  const MigrateReport report = migrate_store(ws, from, to);
  EXPECT_EQ(report.from, (dir / "ws" / "vigil.db").string());
  int64_t rows = 0;
  for (const auto& [table, n] : report.tables) {
    rows += n;
    if (table == "metrics") {
      EXPECT_EQ(n, 5);
    } else if (table == "model_aliases") {
      EXPECT_EQ(n, 2);
    } else if (table == "registry_events") {
      EXPECT_EQ(n, 5) << "a model created, 2 versions, 2 aliases set: the registry's outbox moves too";
    }
  }
  EXPECT_EQ(report.tables.size(), 13u);
  EXPECT_EQ(rows, report.rows);
  const json after = snapshot(ws, to);
  EXPECT_EQ(after, before) << "before: " << before.dump(1) << "\nafter: " << after.dump(1);

  // The moved store keeps working: its numbering continues after the copied ids.
  StoreOptions o;
  o.url = to;
  Store moved(ws, o);
  const auto c = moved.create_run(run_named("after-move", "new-experiment"));
  EXPECT_EQ(moved.get_run(c).info.experiment, "new-experiment");
  EXPECT_EQ(moved.experiments(), (std::vector<std::string>{"Default", "guns", "masks", "new-experiment"}));
  EXPECT_EQ(moved.resolve_model("guns@staging").version, 2);
  vigil::testing::write_text(dir / "w3.ckpt", "weights three");
  NewModelVersion v;
  v.name = "guns";
  EXPECT_EQ(moved.register_model_file(v, dir / "w3.ckpt").version, 3);
  EXPECT_NO_THROW(moved.verify_model_version(moved.resolve_model("guns@production")));

  // A second move into the filled database is refused before anything is written.
  try {
    migrate_store(ws, from, to);
    ADD_FAILURE() << "a second migrate into a non-empty store was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("already holds data"));
    EXPECT_THAT(e.what(), HasSubstr("migrate copies into an empty store only"));
  }
  EXPECT_EQ(moved.search_runs({}).total, 4);
  EXPECT_THROW(migrate_store(ws, from, from), InvalidArgument);
}

}  // namespace
}  // namespace vigil::store
