// The tracking store and registry on a real SQLite file and on a real PostgreSQL database (each test runs
// on both): runs, params, metric history, the search language, references, aliases, immutability,
// export/import, schema checks.

#include "vigil/store/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "store_backends.h"
#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/store/mlflow_export.h"
#include "vigil/store/model_archive.h"

namespace vigil::store {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;
using testing::write_text;

std::string new_run(Store& s, const std::string& name, const std::string& exp, double lr, double acc,
                    RunStatus end = RunStatus::kFinished) {
  NewRun r;
  r.name = name;
  r.experiment = exp;
  r.kind = "train";
  r.params = {{"optimizer.lr", fmt::format("{}", lr)}, {"model.arch", name.substr(0, 4)}};
  const auto id = s.create_run(r);
  for (int step = 1; step <= 3; ++step) s.log_metric(id, "val_accuracy", acc * step / 3, step);
  if (end != RunStatus::kRunning) s.end_run(id, end);
  return id;
}

class StoreTest : public testing::StoreBackendTest {};
class MlflowExportTest : public testing::StoreBackendTest {};
class RegistryTest : public testing::StoreBackendTest {};
class ModelArchiveTest : public testing::StoreBackendTest {};
VIGIL_STORE_BACKENDS(StoreTest);
VIGIL_STORE_BACKENDS(MlflowExportTest);
VIGIL_STORE_BACKENDS(RegistryTest);
VIGIL_STORE_BACKENDS(ModelArchiveTest);

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::vector<std::string> names(const RunPage& p) {
  std::vector<std::string> out;
  for (const auto& r : p.runs) out.push_back(r.info.name);
  return out;
}

TEST_P(StoreTest, RecordsARunWithHistoryAndLatestValues) {
  TempDir dir;
  Store s{Workspace(dir.path())};
  NewRun r;
  r.name = "masks-cnn";
  r.kind = "train";
  r.dataset_id = "abc123";
  r.params = {{"epochs", "3"}};
  const auto id = s.create_run(r);
  EXPECT_EQ(id.size(), 32u);
  s.log_metrics(id, {{"loss", 0.9, 1, 0}, {"loss", 0.5, 2, 0}, {"loss", 0.7, 0, 0}});
  s.set_tag(id, "note", "first");
  s.log_artifact(id, {"weights/best.ckpt", "checkpoint", "deadbeef", 42});
  s.end_run(id, RunStatus::kFinished);

  const auto rec = s.get_run("masks-cnn");
  EXPECT_EQ(rec.info.id, id);
  EXPECT_EQ(rec.info.status, RunStatus::kFinished);
  EXPECT_EQ(rec.info.experiment, "Default");
  EXPECT_EQ(rec.info.dataset_id, "abc123");
  EXPECT_GT(rec.info.end_ms, 0);
  EXPECT_EQ(rec.params.at("epochs"), "3");
  EXPECT_DOUBLE_EQ(rec.latest_metrics.at("loss"), 0.5);  // the largest step, not the last written
  EXPECT_EQ(rec.tags.at("note"), "first");
  ASSERT_EQ(rec.artifacts.size(), 1u);
  EXPECT_EQ(rec.artifacts[0].sha256, "deadbeef");
  const auto hist = s.metric_history(id, "loss");
  ASSERT_EQ(hist.size(), 3u);
  EXPECT_EQ(hist[0].step, 0);
  EXPECT_EQ(hist[2].step, 2);
  EXPECT_EQ(s.resolve_run(id.substr(0, 6)), id);
  EXPECT_EQ(s.resolve_run("last"), id);
  EXPECT_THROW(s.get_run("masks-cnm"), NotFound);
  try {
    s.get_run("masks-cnm");
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'masks-cnn'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(s.log_metric("nope", "loss", 1, 1), NotFound);
}

TEST_P(StoreTest, SearchFiltersSortsAndPages) {
  TempDir dir;
  Store s{Workspace(dir.path())};
  new_run(s, "mask-a", "masks", 0.01, 0.80);
  new_run(s, "mask-b", "masks", 0.001, 0.95);
  new_run(s, "mask-c", "masks", 0.1, 0.60, RunStatus::kFailed);
  new_run(s, "guns-a", "guns", 0.01, 0.50);

  RunFilter f;
  f.experiment = "masks";
  f.order_by = "metrics.val_accuracy DESC";
  auto p = s.search_runs(f);
  EXPECT_EQ(p.total, 3);
  EXPECT_EQ(names(p), (std::vector<std::string>{"mask-b", "mask-a", "mask-c"}));

  f.conditions = {"metrics.val_accuracy > 0.7 and status = finished"};
  EXPECT_EQ(names(s.search_runs(f)), (std::vector<std::string>{"mask-b", "mask-a"}));
  f.conditions = {"params.optimizer.lr < 0.05", "name LIKE 'mask%'"};
  f.order_by = "params.optimizer.lr ASC";
  EXPECT_EQ(names(s.search_runs(f)), (std::vector<std::string>{"mask-b", "mask-a"}));
  f.conditions = {"params.`optimizer.lr` = 0.1"};
  EXPECT_EQ(names(s.search_runs(f)), (std::vector<std::string>{"mask-c"}));

  RunFilter all;
  all.order_by = "name";
  all.limit = 2;
  all.offset = 2;
  p = s.search_runs(all);
  EXPECT_EQ(p.total, 4);
  EXPECT_EQ(names(p), (std::vector<std::string>{"mask-b", "mask-c"}));
  all.status = RunStatus::kFailed;
  all.offset = 0;
  EXPECT_EQ(names(s.search_runs(all)), (std::vector<std::string>{"mask-c"}));
  EXPECT_EQ(s.experiments(), (std::vector<std::string>{"guns", "masks"}));
}

TEST_P(StoreTest, BadSearchesNameTheProblem) {
  TempDir dir;
  Store s{Workspace(dir.path())};
  auto message = [&](std::vector<std::string> conditions, std::string order = "start_time DESC") {
    RunFilter f;
    f.conditions = std::move(conditions);
    f.order_by = std::move(order);
    try {
      s.search_runs(f);
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"metrics.acc > high"}).find("expected a number"), std::string::npos);
  EXPECT_NE(message({"colour = red"}).find("unknown field 'colour'"), std::string::npos);
  EXPECT_NE(message({"metrics.acc 0.5"}).find("expected an operator"), std::string::npos);
  EXPECT_NE(message({"status = sleeping"}).find("running, finished, failed, killed"), std::string::npos);
  EXPECT_NE(message({"params.x = 'open"}).find("unclosed quote"), std::string::npos);
  EXPECT_NE(message({}, "colour").find("expected to order by"), std::string::npos);
  EXPECT_NE(message({}, "metrics.x sideways").find("ASC|DESC"), std::string::npos);
  RunFilter f;
  f.limit = 0;
  EXPECT_THROW(s.search_runs(f), InvalidArgument);
}

TEST_P(StoreTest, DeleteRunRemovesEverythingRecorded) {
  TempDir dir;
  Store s{Workspace(dir.path())};
  const auto id = new_run(s, "gone", "x", 0.1, 0.5);
  new_run(s, "kept", "x", 0.1, 0.5);
  EXPECT_EQ(s.delete_run("gone"), id);
  EXPECT_THROW(s.get_run(id), NotFound);
  EXPECT_TRUE(s.metric_history(id, "val_accuracy").empty());
  EXPECT_EQ(s.search_runs({}).total, 1);
}

TEST_P(StoreTest, ANonStoreDatabaseIsRefused) {
  TempDir dir;
  if (postgres()) {
    ASSERT_EQ(pg_->psql(url_, "CREATE TABLE customers(id INT)").first, 0);
    EXPECT_THROW(Store{Workspace(dir.path())}, DataError);
    EXPECT_NE(error_of([&] { Store{Workspace(dir.path())}; }).find("but not a vigil store"),
              std::string::npos);
  } else {
    write_text(dir / "vigil.db", "this is not a database at all, just text long enough to be looked at");
    EXPECT_THROW(Store{Workspace(dir.path())}, Error);
  }
}

TEST_P(StoreTest, ANewerSchemaIsRefusedAndLeftAlone) {
  TempDir dir;
  { Store s{Workspace(dir.path())}; }
  if (postgres()) {
    ASSERT_EQ(pg_->psql(url_, "UPDATE vigil_meta SET value = '99' WHERE key = 'schema_version'").first, 0);
  } else {
    const auto [rc, out] =
        testing::run_shell("sqlite3 '" + (dir / "vigil.db").string() + "' 'PRAGMA user_version = 99'");
    if (rc != 0) GTEST_SKIP() << "the sqlite3 command line is absent: " << out;
  }
  const std::string msg = error_of([&] { Store{Workspace(dir.path())}; });
  EXPECT_NE(msg.find("written by a newer vigil (schema 99; this vigil knows up to 2)"), std::string::npos)
      << msg;
  EXPECT_THROW(Store{Workspace(dir.path())}, DataError);
}

// A store written by the vigil before the registry outbox (schema 1) gains the registry_events table on open.
TEST_P(StoreTest, AVersion1StoreIsMigratedToTheRegistryOutbox) {
  TempDir dir;
  { Store s{Workspace(dir.path())}; }
  if (postgres()) {
    ASSERT_EQ(pg_->psql(url_,
                        "DROP TABLE registry_events; UPDATE vigil_meta SET value = '1' WHERE key = "
                        "'schema_version'")
                  .first,
              0);
  } else {
    const auto [rc, out] = testing::run_shell("sqlite3 '" + (dir / "vigil.db").string() +
                                              "' 'DROP TABLE registry_events; PRAGMA user_version = 1'");
    if (rc != 0) GTEST_SKIP() << "the sqlite3 command line is absent: " << out;
  }
  Store s{Workspace(dir.path())};
  EXPECT_TRUE(s.registry_events(0, 0, 10).empty());  // the table is back (a missing one would throw)
  EXPECT_FALSE(s.claim_registry_event(1, "nobody")) << "no such event";
}

TEST_P(StoreTest, ABadStoreUrlIsAClearError) {
  TempDir dir;
  StoreOptions o;
  o.url = "mysql://root:hunter2@db/vigil";
  const std::string msg = error_of([&] { Store{Workspace(dir.path()), o}; });
  EXPECT_NE(msg.find("expected sqlite:PATH, postgresql://"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("hunter2"), std::string::npos) << "the password must not be shown: " << msg;
  // A server that is not there: Unavailable, naming the URL without its password.
  o.url = "postgresql://vigil:hunter2@/nowhere?host=" + (dir / "no-socket").string() + "&port=1";
  try {
    Store s(Workspace(dir.path()), o);
    ADD_FAILURE() << "opened a store at a server that does not exist";
  } catch (const Unavailable& e) {
    EXPECT_NE(std::string(e.what()).find("postgresql://vigil:***@/nowhere"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
  }
}

TEST_P(StoreTest, AConnectionLostBetweenWritesIsReopened) {
  if (!postgres()) GTEST_SKIP() << "PostgreSQL only: an SQLite store has no connection to lose";
  TempDir dir;
  Store s{Workspace(dir.path())};
  NewRun r;
  r.name = "survivor";
  r.kind = "train";
  const auto id = s.create_run(r);
  // As a server restart or a proxy's idle timeout would: the store's connection is closed under it.
  const std::string kill =
      "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity WHERE datname = "
      "current_database() AND pid <> pg_backend_pid()";
  ASSERT_EQ(pg_->psql(url_, kill), (std::pair<int, std::string>{0, "1\n"}));
  s.log_metric(id, "loss", 0.5, 1);  // BEGIN finds the connection gone: re-opened, nothing lost
  ASSERT_EQ(pg_->psql(url_, kill), (std::pair<int, std::string>{0, "1\n"}));
  const auto hist = s.metric_history(id, "loss");  // a read re-opens it too
  ASSERT_EQ(hist.size(), 1u);
  EXPECT_DOUBLE_EQ(hist[0].value, 0.5);
}

TEST_P(MlflowExportTest, WritesTheFileStoreLayout) {
  TempDir dir;
  Store s{Workspace(dir / "ws")};
  write_text(dir / "run" / "weights/best.ckpt", "weights");
  NewRun r;
  r.name = "masks cnn";
  r.experiment = "masks";
  r.kind = "train";
  r.run_dir = (dir / "run").string();
  r.params = {{"optimizer.lr", "0.001"}};
  const auto id = s.create_run(r);
  s.log_metrics(id,
                {{"train/loss", 0.9, 1, 1000}, {"train/loss", 0.5, 2, 2000}, {"acc", std::nan(""), 1, 1500}});
  s.log_artifact(id, {"weights/best.ckpt", "checkpoint", hash_bytes("weights"), 7});
  s.log_artifact(id, {"gone.png", "plot", "00", 1});
  s.end_run(id, RunStatus::kKilled);
  new_run(s, "other", "Default", 0.1, 0.5);

  MlflowExportOptions o;
  o.filter.experiment = "masks";
  const auto rep = export_mlflow(s, dir / "mlruns", o);
  EXPECT_EQ(rep.runs, 1);
  EXPECT_EQ(rep.metric_points, 3);
  EXPECT_EQ(rep.artifacts, 1);
  ASSERT_EQ(rep.skipped.size(), 1u);
  const fs::path exp = dir / "mlruns" / "1";  // Default is 0, masks the next
  const std::string exp_meta = read_file(exp / "meta.yaml");
  EXPECT_NE(exp_meta.find("name: masks"), std::string::npos) << exp_meta;
  EXPECT_NE(exp_meta.find("experiment_id: '1'"), std::string::npos) << exp_meta;
  const fs::path run = exp / id;
  const std::string meta = read_file(run / "meta.yaml");
  for (const std::string& want : {"run_id: " + id, "run_uuid: " + id, std::string("status: 5"),
                                  std::string("run_name: masks cnn"), std::string("lifecycle_stage: active")})
    EXPECT_NE(meta.find(want), std::string::npos) << want << "\n" << meta;
  EXPECT_EQ(read_file(run / "params/optimizer.lr"), "0.001");
  EXPECT_EQ(read_file(run / "metrics/train/loss"), "1000 0.9 1\n2000 0.5 2\n");
  EXPECT_EQ(read_file(run / "metrics/acc"), "1500 nan 1\n");
  EXPECT_EQ(read_file(run / "tags/mlflow.runName"), "masks cnn");
  EXPECT_EQ(read_file(run / "artifacts/weights/best.ckpt"), "weights");
  EXPECT_FALSE(fs::exists(dir / "mlruns" / "0")) << "the filter left Default out";
}

fs::path model_file(const TempDir& dir, const std::string& name, const std::string& content) {
  const auto p = dir / name;
  write_text(p, content);
  return p;
}

NewModelVersion version_of(const std::string& name, double map50) {
  NewModelVersion v;
  v.name = name;
  v.run_id = "run1";
  v.dataset_id = "ds1";
  v.arch = "fasterrcnn_mobilenet_v3_large_320_fpn";
  v.task = "detection";
  v.metrics = {{"mAP50", map50}};
  v.info_json = R"({"arch":"fasterrcnn_mobilenet_v3_large_320_fpn"})";
  return v;
}

TEST_P(RegistryTest, VersionsAliasesAndResolution) {
  TempDir dir;
  Store s{Workspace(dir / "ws")};
  const auto v1 = s.register_model_file(version_of("guns", 0.4), model_file(dir, "a.ckpt", "weights one"));
  const auto v2 = s.register_model_file(version_of("guns", 0.6), model_file(dir, "b.ckpt", "weights two"));
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v2.version, 2);
  EXPECT_EQ(v2.sha256, hash_bytes("weights two"));
  EXPECT_DOUBLE_EQ(v2.metrics.at("mAP50"), 0.6);
  // Immutable: the registered copy is read-only and independent of the source.
  struct stat st {};
  ASSERT_EQ(::stat(v1.file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0222, 0u);
  write_text(dir / "a.ckpt", "changed later");
  EXPECT_NO_THROW(s.verify_model_version(s.get_model_version("guns", 1)));

  EXPECT_EQ(s.resolve_model("guns").version, 2);
  EXPECT_EQ(s.resolve_model("guns@latest").version, 2);
  EXPECT_EQ(s.resolve_model("guns/1").version, 1);
  EXPECT_EQ(s.set_alias("guns", "production", 1), 0);
  EXPECT_EQ(s.resolve_model("guns@production").version, 1);
  EXPECT_EQ(s.set_alias("guns", "production", 2), 1);  // moved: returns where it was
  EXPECT_EQ(s.resolve_model("guns@production").version, 2);
  EXPECT_EQ(s.get_model_version("guns", 2).aliases, (std::vector<std::string>{"production"}));
  const auto models = s.list_models();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].latest_version, 2);
  EXPECT_EQ(models[0].aliases.at("production"), 2);
}

TEST_P(RegistryTest, BadReferencesAreClearErrors) {
  TempDir dir;
  Store s{Workspace(dir / "ws")};
  s.register_model_file(version_of("guns", 0.4), model_file(dir, "a.ckpt", "one"));
  s.set_alias("guns", "staging", 1);
  EXPECT_NE(error_of([&] { s.set_alias("guns", "production", 7); }).find("has no version 7 (versions: 1)"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              s.resolve_model("guns@production");
            }).find("no alias 'production' (aliases: staging -> 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.resolve_model("gunz"); }).find("did you mean 'guns'"), std::string::npos);
  EXPECT_NE(error_of([&] { s.resolve_model("guns/0"); }).find("version number >= 1"), std::string::npos);
  EXPECT_NE(error_of([&] { s.set_alias("guns", "latest", 1); }).find("latest"), std::string::npos);
  EXPECT_NE(error_of([&] { s.set_alias("guns", "3", 1); }).find("not a number"), std::string::npos);
  EXPECT_NE(
      error_of([&] { s.register_model_file(version_of("bad name", 0), dir / "a.ckpt"); }).find("model name"),
      std::string::npos);
  // An aliased version is protected; --force removes it with its aliases.
  EXPECT_NE(error_of([&] { s.delete_model_version("guns", 1, false); }).find("aliased as staging"),
            std::string::npos);
  const auto file = s.get_model_version("guns", 1).file;
  s.delete_model_version("guns", 1, true);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_THROW(s.resolve_model("guns@staging"), NotFound);
  // Version numbers are never reused.
  EXPECT_EQ(s.register_model_file(version_of("guns", 0.5), model_file(dir, "c.ckpt", "three")).version, 2);
}

TEST_P(RegistryTest, ATamperedFileFailsVerification) {
  TempDir dir;
  Store s{Workspace(dir / "ws")};
  const auto v = s.register_model_file(version_of("guns", 0.4), model_file(dir, "a.ckpt", "one"));
  ::chmod(v.file.c_str(), 0644);
  write_text(v.file, "two");
  EXPECT_NE(error_of([&] { s.verify_model_version(v); }).find("was changed"), std::string::npos);
}

TEST_P(ModelArchiveTest, ExportImportMovesAVersionIntact) {
  TempDir dir;
  std::string weights(3 << 20, '\0');  // > 1 MiB: streamed in several chunks, not a multiple of 512
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<char>((i * 2654435761u) >> 13);
  weights += "tail";
  Store a{Workspace(dir / "machine-a")};
  a.register_model_file(version_of("guns", 0.4), model_file(dir, "old.ckpt", "old"));
  const auto v = a.register_model_file(version_of("guns", 0.7), model_file(dir, "w.ckpt", weights));
  a.set_alias("guns", "production", 2);
  export_model_version(a, "guns@production", dir / "guns-2.tar");
  // A real tar reads it.
  const auto [rc, listing] = testing::run_shell("tar -tf '" + (dir / "guns-2.tar").string() + "'");
  EXPECT_EQ(rc, 0);
  EXPECT_NE(listing.find("vigil-model.json"), std::string::npos);
  EXPECT_NE(listing.find("model.ckpt"), std::string::npos);

  Store b{Workspace(dir / "machine-b"), other_store()};
  const auto r = import_model_archive(b, dir / "guns-2.tar");
  EXPECT_FALSE(r.already_present);
  EXPECT_EQ(r.original, "guns/2");
  EXPECT_EQ(r.version.version, 1);  // numbering is per machine
  EXPECT_EQ(r.version.sha256, v.sha256);
  EXPECT_EQ(r.version.run_id, "run1");
  EXPECT_DOUBLE_EQ(r.version.metrics.at("mAP50"), 0.7);
  EXPECT_EQ(testing::run_shell("cmp '" + r.version.file + "' '" + (dir / "w.ckpt").string() + "'").first, 0);
  EXPECT_TRUE(import_model_archive(b, dir / "guns-2.tar").already_present);
  EXPECT_EQ(import_model_archive(b, dir / "guns-2.tar", "guns-copy").version.name, "guns-copy");
}

TEST_P(ModelArchiveTest, DamagedArchivesAreRefused) {
  TempDir dir;
  Store a{Workspace(dir / "a")};
  a.register_model_file(version_of("guns", 0.4), model_file(dir, "w.ckpt", std::string(5000, 'w')));
  export_model_version(a, "guns/1", dir / "ok.tar");
  Store b{Workspace(dir / "b"), other_store()};
  // One byte of the model flipped: the recorded hash no longer matches.
  std::string bytes = testing::run_shell("cat '" + (dir / "ok.tar").string() + "'").second;
  auto flipped = bytes;
  flipped[flipped.rfind(std::string(100, 'w'))] = 'x';
  write_text(dir / "flipped.tar", flipped);
  EXPECT_NE(error_of([&] { import_model_archive(b, dir / "flipped.tar"); }).find("damaged or altered"),
            std::string::npos);
  write_text(dir / "cut.tar", bytes.substr(0, 2000));
  EXPECT_NE(error_of([&] { import_model_archive(b, dir / "cut.tar"); }).find("truncated"), std::string::npos);
  write_text(dir / "text.tar", std::string(2048, 'a'));
  EXPECT_NE(error_of([&] { import_model_archive(b, dir / "text.tar"); }).find("not a tar archive"),
            std::string::npos);
  EXPECT_THROW(import_model_archive(b, dir / "missing.tar"), NotFound);
  EXPECT_TRUE(b.list_models().empty());
}

}  // namespace
}  // namespace vigil::store
