// `vigil store migrate` and the global `--store` flag, driven through the real binary against a real
// throwaway PostgreSQL cluster: a workspace's SQLite store moved into PostgreSQL lists the same runs and
// models, --store wins over $VIGIL_STORE, a second move into the filled database is refused with exit 2,
// and an unreachable server is exit 6 with the password hidden.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "pg_server.h"
#include "tests_util.h"
#include "vigil/store/store.h"

namespace vigil {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using json = nlohmann::json;

void seed(const Workspace& ws, const TempDir& dir) {
  store::StoreOptions o;
  o.url = "sqlite:" + (ws.root() / "vigil.db").string();
  store::Store s(ws, o);
  for (const std::string name : {"guns-a", "masks-b"}) {
    store::NewRun r;
    r.name = name;
    r.experiment = name.substr(0, name.find('-'));
    r.kind = "train";
    r.params = {{"optimizer.lr", "0.01"}};
    const auto id = s.create_run(r);
    s.log_metrics(id, {{"val_accuracy", 0.5, 1, 1000}, {"val_accuracy", 0.75, 2, 2000}});
    s.end_run(id, store::RunStatus::kFinished);
  }
  testing::write_text(dir / "w.ckpt", "weights");
  store::NewModelVersion v;
  v.name = "guns";
  s.register_model_file(v, dir / "w.ckpt");
  s.set_alias("guns", "production", 1);
}

TEST(StoreCli, MigrateMovesAWorkspaceAndStoreSelectsIt) {
  std::string why;
  bool absent = false;
  auto* pg = testing::PgServer::get(why, absent);
  if (!pg && absent) GTEST_SKIP() << why;
  ASSERT_NE(pg, nullptr) << why;
  TempDir dir;
  const Workspace ws(dir / "ws");
  seed(ws, dir);
  // A password in the URL (trust authentication ignores it) must never be printed.
  std::string url = pg->create_database();
  url.replace(url.find("vigil@"), 6, "vigil:hunter2@");

  const auto moved = testing::run_vigil("store migrate --to '" + url + "'", ws.root());
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_THAT(moved.out, HasSubstr("model_versions"));
  EXPECT_THAT(moved.out, HasSubstr("postgresql://vigil:***@"));
  EXPECT_THAT(moved.out + moved.err, ::testing::Not(HasSubstr("hunter2")));

  const auto before = testing::run_vigil("runs list --json", ws.root());
  ::setenv("VIGIL_STORE", "sqlite:/nonexistent/folder/vigil.db", 1);  // the flag wins over the environment
  const auto after = testing::run_vigil("--store '" + url + "' runs list --json", ws.root());
  ::unsetenv("VIGIL_STORE");
  ASSERT_EQ(before.exit_code, 0) << before.err;
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(json::parse(after.out), json::parse(before.out));
  EXPECT_EQ(json::parse(before.out)["total"], 2);
  const auto models = testing::run_vigil("--store '" + url + "' models list --json", ws.root());
  ASSERT_EQ(models.exit_code, 0) << models.err;
  EXPECT_EQ(json::parse(models.out), json::parse(testing::run_vigil("models list --json", ws.root()).out));
  EXPECT_THAT(models.out, HasSubstr("production"));

  const auto again = testing::run_vigil("--store '" + url + "' store migrate", ws.root());
  EXPECT_EQ(again.exit_code, 2) << again.out << again.err;
  EXPECT_THAT(again.err, HasSubstr("already holds data"));

  const std::string gone = "postgresql://vigil:hunter2@/nope?host=" + (dir / "no-server").string();
  const auto down = testing::run_vigil("--store '" + gone + "' runs list", ws.root());
  EXPECT_EQ(down.exit_code, 6) << down.err;
  EXPECT_THAT(down.err, HasSubstr("postgresql://vigil:***@/nope"));
  EXPECT_THAT(down.err, ::testing::Not(HasSubstr("hunter2")));
}

}  // namespace
}  // namespace vigil
