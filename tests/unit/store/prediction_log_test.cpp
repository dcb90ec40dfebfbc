// The prediction log on a real SQLite file and a real PostgreSQL database (each test runs on both): batches
// append in one transaction (a duplicate id writes nothing of its batch), filters by model, version, time and
// feedback, paging with a total, feedback set and refused for a missing id, pruning by age, a second
// connection (another replica) seeing the rows, and invalid JSON refused.

#include "vigil/store/prediction_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "store_backends.h"
#include "tests_util.h"
#include "vigil/core/error.h"

namespace vigil::store {
namespace {

using ::testing::HasSubstr;
using vigil::testing::TempDir;

PredictionRow row(const std::string& id, const std::string& model, int64_t time_ms,
                  const std::string& version = "1") {
  PredictionRow r;
  r.id = id;
  r.model = model;
  r.version = version;
  r.time_ms = time_ms;
  r.route = "/v1/predict";
  r.latency_ms = 12.5;
  r.input_json = R"({"brightness":120.5,"width":640})";
  r.output_json = R"({"label":"with_mask","score":0.9})";
  return r;
}

std::vector<std::string> ids(const PredictionPage& p) {
  std::vector<std::string> out;
  for (const auto& r : p.rows) out.push_back(r.id);
  return out;
}

class PredictionLogTest : public vigil::testing::StoreBackendTest {};
VIGIL_STORE_BACKENDS(PredictionLogTest);

TEST_P(PredictionLogTest, AppendsBatchesAndFiltersSelect) {
  TempDir tmp;
  Workspace ws(tmp / "ws");
  PredictionLog log(ws);
  log.append({row("a", "masks", 1000), row("b", "masks", 2000, "2"), row("c", "guns", 3000)});
  EXPECT_EQ(ids(log.search({})), (std::vector<std::string>{"c", "b", "a"}));
  PredictionFilter f;
  f.model = "masks";
  EXPECT_EQ(ids(log.search(f)), (std::vector<std::string>{"b", "a"}));
  f.version = "2";
  EXPECT_EQ(ids(log.search(f)), (std::vector<std::string>{"b"}));
  f = {};
  f.since_ms = 1500;
  f.until_ms = 3000;
  EXPECT_EQ(ids(log.search(f)), (std::vector<std::string>{"b"}));
  f = {};
  f.limit = 2;
  f.offset = 1;
  const PredictionPage page = log.search(f);
  EXPECT_EQ(ids(page), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(page.total, 3);
  const PredictionRow got = log.get("a");
  EXPECT_EQ(got.input_json, R"({"brightness":120.5,"width":640})");
  EXPECT_DOUBLE_EQ(got.latency_ms, 12.5);
  EXPECT_EQ(got.route, "/v1/predict");

  // A duplicate id fails its whole batch, naming the id; the other rows of that batch are not written.
  try {
    log.append({row("d", "masks", 4000), row("a", "masks", 4000)});
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("prediction 'a' is logged already"));
  }
  EXPECT_THROW(log.get("d"), NotFound);
}

TEST_P(PredictionLogTest, FeedbackIsSetAndFilteredAndAMissingIdIsNotFound) {
  TempDir tmp;
  Workspace ws(tmp / "ws");
  PredictionLog log(ws);
  log.append({row("a", "masks", 1000), row("b", "masks", 2000)});
  log.set_feedback("a", R"({"correct":false,"label":"without_mask"})");
  PredictionFilter f;
  f.has_feedback = true;
  EXPECT_EQ(ids(log.search(f)), (std::vector<std::string>{"a"}));
  f.has_feedback = false;
  EXPECT_EQ(ids(log.search(f)), (std::vector<std::string>{"b"}));
  EXPECT_GT(log.get("a").feedback_ms, 0);
  try {
    log.set_feedback("zzz", R"({"correct":true})");
    FAIL();
  } catch (const NotFound& e) {
    EXPECT_THAT(e.what(), HasSubstr("no prediction 'zzz'"));
  }
  EXPECT_THROW(log.set_feedback("a", "{not json"), InvalidArgument);
  PredictionRow bad = row("x", "masks", 1);
  bad.output_json = "[1,";
  EXPECT_THROW(log.append({bad}), InvalidArgument);
}

TEST_P(PredictionLogTest, PrunesByAgeAndASecondConnectionSeesEveryCommittedRow) {
  TempDir tmp;
  Workspace ws(tmp / "ws");
  PredictionLog log(ws);
  // Two writers at once (two replicas on one workspace): every committed row is there.
  std::thread other([&] {
    PredictionLog second(ws);
    for (int i = 0; i < 20; ++i) second.append({row("second-" + std::to_string(i), "masks", 5000 + i)});
  });
  for (int i = 0; i < 20; ++i) log.append({row("first-" + std::to_string(i), "masks", 1000 + i)});
  other.join();
  EXPECT_EQ(log.search({}).total, 40);
  EXPECT_EQ(log.prune(5000), 20);
  EXPECT_EQ(log.search({}).total, 20);
  PredictionFilter bad;
  bad.limit = 0;
  EXPECT_THROW(log.search(bad), InvalidArgument);
}

}  // namespace
}  // namespace vigil::store
