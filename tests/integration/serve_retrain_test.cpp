// Retraining from the API on a real server: `vigil serve --model shapes@production --set retrain_config=...`,
// POST /v1/retrain runs `vigil retrain` as a child job; when it promotes the challenger the server
// hot-reloads NAME@alias and answers with the new version. A second job waits in the queue (and is cancelled
// there); a long job is cancelled by DELETE while training and ends "cancelled" without moving the alias; the
// job shows the run's per-epoch progress; request fields outside the allowed few are refused. Predictions
// keep flowing through the whole promotion and reload (0 failed requests), and a challenger that is not
// better by the margin is registered but leaves the alias where it was.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>

#include "integration/serve_util.h"
#include "integration/tiny_train.h"
#include "tests_util.h"

namespace vigil::testing {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

json wait_job(httplib::Client& c, const std::string& id) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  json j;
  while (std::chrono::steady_clock::now() < deadline) {
    j = json::parse(c.Get("/v1/jobs/" + id)->body);
    if (j["state"] != "running" && j["state"] != "queued") return j;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ADD_FAILURE() << "job " << id << " still running: " << j.dump(1);
  return j;
}

TEST(ServeRetrain, AJobPromotesAndTheServerReloadsOrIsCancelled) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  auto vigil = [&](const std::string& args) { return run_vigil(args, ws); };
  const fs::path config = make_tiny_shapes(tmp.path(), ws);
  auto first = vigil("retrain --config '" + config.string() + "' --model shapes --run first");
  ASSERT_EQ(first.exit_code, 0) << first.err;

  ServerProcess s(fmt::format("--model shapes@production --set retrain_config='{}'", config.string()),
                  tmp / "run", "serve", ws);
  ASSERT_TRUE(s.running()) << s.log();
  httplib::Client c("127.0.0.1", s.port());
  const std::string v1 = json::parse(c.Get("/v1/models")->body)["models"][0]["version"];

  // Only the allowed fields.
  auto bad = c.Post("/v1/retrain", R"({"config": "/etc/passwd"})", "application/json");
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("unknown field 'config'"));
  EXPECT_EQ(c.Post("/v1/retrain", R"({"epochs": 0})", "application/json")->status, 400);
  EXPECT_EQ(c.Post("/v1/retrain", R"({"dataset": "../x"})", "application/json")->status, 400);

  // Live traffic from here until the promoted version is served: every request must be answered.
  write_image(tmp / "probe.png", 64, 64, 3);
  const std::string probe = read_file(tmp / "probe.png");
  std::atomic<bool> traffic_done{false};
  std::atomic<int> answered{0}, failed{0};
  std::string first_failure;
  std::thread traffic([&] {
    httplib::Client t("127.0.0.1", s.port());
    t.set_read_timeout(60, 0);
    while (!traffic_done) {
      auto r = t.Post("/v1/predict", probe, "image/png");
      if (r && r->status == 200) {
        ++answered;
      } else if (failed++ == 0) {
        first_failure = r ? std::to_string(r->status) + " " + r->body : "no answer";
      }
    }
  });

  auto started = c.Post("/v1/retrain", R"({"min_delta": -1, "seed": 7})", "application/json");
  ASSERT_EQ(started->status, 202) << started->body;
  const std::string id = json::parse(started->body)["job"];
  // A second job waits behind the first; cancelled while queued, it never starts.
  auto queued = c.Post("/v1/retrain", "", "application/json");
  ASSERT_EQ(queued->status, 202) << queued->body;
  const std::string queued_id = json::parse(queued->body)["job"];
  EXPECT_EQ(json::parse(c.Get("/v1/jobs/" + queued_id)->body)["state"], "queued");
  EXPECT_EQ(c.Delete("/v1/jobs/" + queued_id)->status, 202);
  EXPECT_EQ(json::parse(c.Get("/v1/jobs/" + queued_id)->body)["state"], "cancelled");
  const json done = wait_job(c, id);
  EXPECT_EQ(done["state"], "promoted") << done.dump(1);
  EXPECT_EQ(done["challenger"]["version"], 2);
  EXPECT_THAT(done["log_tail"].get<std::string>(), HasSubstr("retrain: scoring the champion"));
  ASSERT_EQ(done["progress"].size(), 1u) << "one epoch of results.csv: " << done.dump(1);
  EXPECT_TRUE(done["progress"][0].contains("epoch"));
  // The reload follows the job's end.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string served = v1;
  while (served == v1 && std::chrono::steady_clock::now() < deadline) {
    served = json::parse(c.Get("/v1/models")->body)["models"][0]["version"];
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_NE(served, v1) << "the promoted version is served";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // traffic on the new version too
  traffic_done = true;
  traffic.join();
  EXPECT_GT(answered.load(), 20) << "the traffic ran through the job";
  EXPECT_EQ(failed.load(), 0) << "first failure: " << first_failure;
  EXPECT_EQ(json::parse(vigil("models describe shapes@production --json").out)["version"], 2);

  // A challenger that must beat the champion by more than 1 (no accuracy can): registered (version 3), not
  // promoted; the server keeps serving version 2.
  auto strict = c.Post("/v1/retrain", R"({"min_delta": 1, "seed": 8})", "application/json");
  ASSERT_EQ(strict->status, 202) << strict->body;
  const json kept = wait_job(c, json::parse(strict->body)["job"]);
  EXPECT_EQ(kept["state"], "kept") << kept.dump(1);
  EXPECT_EQ(kept["challenger"]["version"], 3);
  EXPECT_TRUE(kept["champion"].contains("score")) << kept.dump(1);
  EXPECT_EQ(json::parse(vigil("models describe shapes@production --json").out)["version"], 2);
  EXPECT_EQ(json::parse(c.Get("/v1/models")->body)["models"][0]["version"], served);

  // A long job, cancelled: the alias stays.
  auto long_job = c.Post("/v1/retrain", R"({"epochs": 200})", "application/json");
  ASSERT_EQ(long_job->status, 202) << long_job->body;
  const std::string long_id = json::parse(long_job->body)["job"];
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(c.Delete("/v1/jobs/" + long_id)->status, 202);
  EXPECT_EQ(wait_job(c, long_id)["state"], "cancelled");
  EXPECT_EQ(c.Delete("/v1/jobs/" + long_id)->status, 409) << "not running any more";
  EXPECT_EQ(c.Get("/v1/jobs/nosuchjob")->status, 404);
  const json listed = json::parse(c.Get("/v1/jobs")->body);
  ASSERT_EQ(listed["jobs"].size(), 4u);
  EXPECT_EQ(listed["jobs"][0]["id"], long_id) << "newest first";
  // The store after the cancel: the alias stays, no version was added, and the cancelled job's run is not
  // left "running".
  EXPECT_EQ(json::parse(vigil("models describe shapes@production --json").out)["version"], 2);
  const json versions = json::parse(vigil("models describe shapes --json").out);
  EXPECT_EQ(versions.dump().find("\"version\":4"), std::string::npos) << versions.dump(1);
  const auto runs = vigil("runs list --json");
  ASSERT_EQ(runs.exit_code, 0) << runs.err;
  const json listed_runs = json::parse(runs.out)["runs"];
  EXPECT_GE(listed_runs.size(), 3u);
  for (const auto& r : listed_runs) EXPECT_NE(r.value("status", ""), "running") << r.dump();
}

}  // namespace
}  // namespace vigil::testing
