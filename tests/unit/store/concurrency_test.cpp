// On SQLite and on PostgreSQL: several real processes write into one store at once and lose nothing; a writer
// killed with SIGKILL leaves every row it committed, and its run is found and marked killed.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include "store_backends.h"
#include "tests_util.h"
#include "vigil/store/store.h"

extern char** environ;

namespace vigil::store {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

/// A store_writer process with its stdout on a pipe.
struct Writer {
  pid_t pid = -1;
  FILE* out = nullptr;
  Writer(const fs::path& ws, const std::string& name, int count, int sleep_ms) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    const std::string ws_s = ws.string(), count_s = std::to_string(count), sleep_s = std::to_string(sleep_ms);
    std::vector<char*> argv = {const_cast<char*>(VIGIL_STORE_WRITER), const_cast<char*>(ws_s.c_str()),
                               const_cast<char*>(name.c_str()),       const_cast<char*>(count_s.c_str()),
                               const_cast<char*>(sleep_s.c_str()),    nullptr};
    EXPECT_EQ(posix_spawn(&pid, VIGIL_STORE_WRITER, &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    out = fdopen(fds[0], "r");
  }
  ~Writer() {
    if (out) fclose(out);
  }
  /// The next line of output, "" at the end.
  std::string line() {
    char buf[256];
    if (!fgets(buf, sizeof buf, out)) return "";
    std::string s(buf);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
  int wait() {
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  }
};

class StoreConcurrencyTest : public vigil::testing::StoreBackendTest {};
VIGIL_STORE_BACKENDS(StoreConcurrencyTest);

TEST_P(StoreConcurrencyTest, ParallelWritersLoseNothing) {
  TempDir dir;
  const int kWriters = 4, kPoints = 150;
  std::vector<std::unique_ptr<Writer>> writers;
  for (int w = 0; w < kWriters; ++w)
    writers.push_back(std::make_unique<Writer>(dir.path(), "writer-" + std::to_string(w), kPoints, 0));
  // This process writes too, from two threads sharing one Store.
  Store mine{Workspace(dir.path())};
  NewRun r;
  r.name = "in-process";
  r.kind = "test";
  const auto id = mine.create_run(r);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPoints; ++i) mine.log_metric(id, "t" + std::to_string(t), i, i);
    });
  for (auto& t : threads) t.join();
  for (auto& w : writers) {
    std::string last, l;
    while (!(l = w->line()).empty()) last = l;
    const int status = w->wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "writer status " << status;
    EXPECT_EQ(last, "done");
  }
  mine.end_run(id, RunStatus::kFinished);

  Store check{Workspace(dir.path())};
  RunFilter f;
  f.conditions = {"kind = test"};
  const auto page = check.search_runs(f);
  ASSERT_EQ(page.total, kWriters + 1);
  for (const auto& run : page.runs) {
    EXPECT_EQ(run.info.status, RunStatus::kFinished) << run.info.name;
    if (run.info.name == "in-process") {
      EXPECT_EQ(check.metric_history(run.info.id, "t0").size(), static_cast<size_t>(kPoints));
      EXPECT_EQ(check.metric_history(run.info.id, "t1").size(), static_cast<size_t>(kPoints));
      continue;
    }
    const auto hist = check.metric_history(run.info.id, "loss");
    ASSERT_EQ(hist.size(), static_cast<size_t>(kPoints)) << run.info.name;
    for (int i = 0; i < kPoints; ++i) EXPECT_EQ(hist[i].step, i);
    EXPECT_EQ(run.params.at("writer"), run.info.name);
  }
}

TEST_P(StoreConcurrencyTest, AWriterKilledMidRunKeepsItsCommittedRowsAndIsMarkedKilled) {
  TempDir dir;
  Writer w(dir.path(), "doomed", 1000000, 2);
  // A neighbour writing at the same time must be unaffected by the kill.
  Writer neighbour(dir.path(), "neighbour", 100, 1);
  std::string run_id;
  int last_committed = -1;
  for (std::string l; !(l = w.line()).empty();) {
    if (l.rfind("run ", 0) == 0) run_id = l.substr(4);
    if (l.rfind("committed ", 0) == 0) last_committed = std::stoi(l.substr(10));
    if (last_committed >= 60) break;
  }
  ASSERT_FALSE(run_id.empty());
  kill(w.pid, SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(w.wait()));
  for (std::string l; !(l = w.line()).empty();) {  // lines printed before the kill landed
    if (l.rfind("committed ", 0) == 0) last_committed = std::stoi(l.substr(10));
  }
  while (!neighbour.line().empty()) {
  }
  neighbour.wait();

  Store check{Workspace(dir.path())};  // opening reaps runs whose process is gone
  const auto run = check.get_run(run_id);
  EXPECT_EQ(run.info.status, RunStatus::kKilled);
  EXPECT_GT(run.info.end_ms, 0);
  const auto hist = check.metric_history(run_id, "loss");
  // Every committed point is there (one more may have committed before its line was printed).
  ASSERT_GE(static_cast<int>(hist.size()), last_committed + 1);
  ASSERT_LE(static_cast<int>(hist.size()), last_committed + 2);
  for (int i = 0; i <= last_committed; ++i) EXPECT_EQ(hist[i].step, i);
  EXPECT_EQ(check.get_run("neighbour").info.status, RunStatus::kFinished);
  EXPECT_EQ(check.metric_history(check.resolve_run("neighbour"), "loss").size(), 100u);
  EXPECT_EQ(check.reap_dead_runs(), 0);  // once is enough
}

}  // namespace
}  // namespace vigil::store
