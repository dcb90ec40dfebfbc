// The monitoring loop on a real server: `vigil serve` logs every answered image (input statistics, output) in
// the workspace store, /v1/stats is rebuilt from that log after a restart, feedback marks predictions right
// or wrong, and `vigil monitor report` compares the logged traffic with a reference profile (`vigil monitor
// profile` of a class-folder dataset): traffic like the reference shows no dataset drift, darker images do
// (brightness, contrast and colour columns), with JSON, an HTML page with charts and --fail-on-drift's
// exit 1. Bad arguments get messages naming the flag or file.
//
// The images are real JPEGs drawn here (textured scenes of ellipses and noise), the reference from one seed
// range and the traffic from another, so "no drift" is a statement about two samples of one distribution.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <nlohmann/json.hpp>

#include <random>

#include "integration/serve_util.h"
#include "integration/tiny_train.h"
#include "tests_util.h"
#include "webhook_receiver.h"

namespace vigil::testing {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

/// A 160x120 scene: a mid-grey textured background with coloured ellipses; `gain` scales every pixel.
cv::Mat scene(int seed, double gain) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int> u(0, 255);
  cv::Mat img(120, 160, CV_8UC3, cv::Scalar(110 + u(rng) % 40, 110 + u(rng) % 40, 110 + u(rng) % 40));
  for (int k = 0; k < 6; ++k)
    cv::ellipse(img, {u(rng) % 160, u(rng) % 120}, {10 + u(rng) % 30, 8 + u(rng) % 20}, u(rng), 0, 360,
                cv::Scalar(u(rng), u(rng), u(rng)), -1);
  cv::Mat noise(img.size(), CV_8UC3);
  cv::randn(noise, cv::Scalar::all(0), cv::Scalar::all(12));
  img += noise;
  img.convertTo(img, -1, gain, 0);
  return img;
}

std::string jpeg(const cv::Mat& img) {
  std::vector<uchar> buf;
  cv::imencode(".jpg", img, buf);
  return {buf.begin(), buf.end()};
}

json report_for(const fs::path& ws, const std::string& model, const std::string& args,
                int* exit_code = nullptr) {
  const CommandResult r = run_vigil("monitor report --model " + model + " --json " + args, ws);
  if (exit_code) *exit_code = r.exit_code;
  return json::parse(r.out, nullptr, false);
}

json report(const fs::path& ws, const std::string& args, int* exit_code = nullptr) {
  return report_for(ws, "masks", args, exit_code);
}

const json& column(const json& rep, const std::string& name) {
  for (const auto& c : rep["columns"])
    if (c["column"] == name) return c;
  throw std::runtime_error("no column " + name + " in " + rep.dump());
}

TEST(ServeMonitor, LogsPredictionsKeepsStatsOverRestartsAndReportsDriftOnlyWhenThereIs) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  // The reference: a class-folder dataset of 120 images.
  fs::create_directories(tmp / "data" / "with_mask");
  fs::create_directories(tmp / "data" / "without_mask");
  for (int i = 0; i < 120; ++i)
    cv::imwrite((tmp / "data" / (i % 2 ? "with_mask" : "without_mask") / fmt::format("{}.jpg", i)).string(),
                scene(i, 1.0));
  const fs::path model =
      make_model_file(tmp / "masks.vgm", "mask_small_cnn", {"with_mask", "without_mask"}, 3);
  // With --model the profile also holds the model's answers on the reference images: the output
  // distribution the served answers are compared with.
  CommandResult prof =
      run_vigil(fmt::format("monitor profile '{}' -o '{}' --model '{}'", (tmp / "data").string(),
                            (tmp / "profile.json").string(), model.string()),
                ws);
  ASSERT_EQ(prof.exit_code, 0) << prof.err;
  EXPECT_THAT(prof.out, HasSubstr("profiled 120 images"));
  EXPECT_THAT(prof.out, HasSubstr("with the answers of"));
  {
    const json pj = json::parse(read_file(tmp / "profile.json"));
    ASSERT_TRUE(pj["rows"][0].contains("output")) << pj["rows"][0].dump();
    EXPECT_EQ(pj["rows"][0]["output"]["labels"].size(), 1u);
    const std::string l = pj["rows"][0]["output"]["labels"][0];
    EXPECT_TRUE(l == "with_mask" || l == "without_mask") << l;
    EXPECT_EQ(pj["rows"][0]["output"]["embedding"].size(), 16u) << "the model's image embedding";
  }
  const std::string serve_args = fmt::format("--model '{}' --name masks", model.string());

  std::vector<std::string> ids;
  const int64_t t0 = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  {
    ServerProcess s(serve_args, tmp / "run1", "serve", ws);
    ASSERT_TRUE(s.running()) << s.log();
    httplib::Client c("127.0.0.1", s.port());
    for (int i = 0; i < 40; ++i) {
      auto r = c.Post("/v1/predict", jpeg(scene(1000 + i, 1.0)), "image/jpeg");
      ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
      const json j = json::parse(r->body);
      ASSERT_TRUE(j.contains("prediction_id")) << r->body;
      ids.push_back(j["prediction_id"]);
    }
    // Feedback: one right, one wrong with the right label; unknown ids and bad bodies are refused.
    auto ok = c.Post("/v1/predictions/" + ids[0] + "/feedback", R"({"correct": true})", "application/json");
    ASSERT_TRUE(ok && ok->status == 200) << (ok ? ok->body : "");
    auto wrong = c.Post("/v1/predictions/" + ids[1] + "/feedback",
                        R"({"correct": false, "label": "with_mask"})", "application/json");
    ASSERT_TRUE(wrong && wrong->status == 200);
    EXPECT_EQ(json::parse(wrong->body)["feedback"]["label"], "with_mask");
    EXPECT_EQ(c.Post("/v1/predictions/0123456789abcdef/feedback", R"({"correct": true})", "application/json")
                  ->status,
              404);
    auto bad = c.Post("/v1/predictions/" + ids[2] + "/feedback", R"({"correct": "yes"})", "application/json");
    EXPECT_EQ(bad->status, 400);
    EXPECT_THAT(bad->body, HasSubstr("correct: expected true or false"));
    // The log lists what was answered, with the input's statistics.
    const json listed = json::parse(c.Get("/v1/predictions?model=masks&limit=5")->body);
    EXPECT_EQ(listed["total"], 40);
    EXPECT_GT(listed["predictions"][0]["input"]["brightness"].get<double>(), 50);
    EXPECT_EQ(listed["predictions"][0]["input"]["width"], 160);
    EXPECT_EQ(json::parse(c.Get("/v1/predictions?feedback=true")->body)["total"], 2);
    EXPECT_THAT(c.Get("/metrics")->body, HasSubstr("vigil_prediction_log_rows_total{result=\"dropped\"} 0"));
  }
  // Same distribution as the reference: no dataset drift, the image columns mostly quiet.
  json same = report(ws, fmt::format("--reference '{}' -o '{}'", (tmp / "profile.json").string(),
                                     (tmp / "report_same").string()));
  ASSERT_TRUE(same.is_object());
  EXPECT_EQ(same["current_rows"], 40);
  EXPECT_TRUE(same["enough_data"]);
  EXPECT_FALSE(same["dataset_drift"]) << same.dump(1);
  EXPECT_FALSE(column(same, "brightness")["drifted"]) << column(same, "brightness").dump();
  // The answers against the model's own answers on the reference: same images, same distribution.
  EXPECT_FALSE(column(same, "label")["drifted"]) << column(same, "label").dump();
  EXPECT_FALSE(column(same, "score")["drifted"]) << column(same, "score").dump();
  // The images' embeddings from the model's backbone, logged by the server and profiled by the CLI: one
  // distribution, so the classifier told to separate them guesses (Evidently's "model" method, bootstrapped).
  ASSERT_TRUE(same["embedding"].is_object()) << same.dump(1);
  EXPECT_EQ(same["embedding"]["method"], "model");
  EXPECT_EQ(same["embedding"]["dims"], 16);
  EXPECT_EQ(same["embedding"]["current_size"], 40);
  EXPECT_FALSE(same["embedding_drift"]) << same["embedding"].dump();
  EXPECT_FALSE(same["drift_detected"]);
  EXPECT_EQ(column(same, "brightness")["test"], "ks") << "Evidently's choice for <= 1000 reference rows";
  EXPECT_EQ(same["feedback"]["total"], 2);
  EXPECT_DOUBLE_EQ(same["feedback"]["accuracy"].get<double>(), 0.5);
  const std::string html = read_file(tmp / "report_same" / "drift.html");
  EXPECT_THAT(html, HasSubstr("<svg"));
  EXPECT_THAT(html, HasSubstr("no dataset drift"));
  EXPECT_THAT(html, HasSubstr("no embedding drift"));

  // A restart keeps /v1/stats (rebuilt from the log); darker traffic follows.
  const int64_t t1 = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  {
    ServerProcess s(serve_args, tmp / "run2", "serve", ws);
    ASSERT_TRUE(s.running()) << s.log();
    httplib::Client c("127.0.0.1", s.port());
    const json stats = json::parse(c.Get("/v1/stats")->body);
    EXPECT_EQ(stats["predictions"], 40) << "the first run's predictions, restored from the log";
    for (int i = 0; i < 40; ++i)
      ASSERT_EQ(c.Post("/v1/predict", jpeg(scene(2000 + i, 0.4)), "image/jpeg")->status, 200);
  }
  int code = -1;
  json dark = report(
      ws, fmt::format("--reference '{}' --since {} --fail-on-drift", (tmp / "profile.json").string(), t1),
      &code);
  ASSERT_TRUE(dark.is_object());
  EXPECT_EQ(dark["current_rows"], 40) << "--since keeps only the second run";
  EXPECT_TRUE(dark["dataset_drift"]) << dark.dump(1);
  EXPECT_TRUE(column(dark, "brightness")["drifted"]);
  EXPECT_LT(column(dark, "brightness")["score"].get<double>(), 1e-6);
  EXPECT_EQ(code, 1) << "--fail-on-drift exits 1 on drift";
  EXPECT_TRUE(dark["embedding_drift"]) << dark["embedding"].dump();
  EXPECT_GT(dark["embedding"]["score"].get<double>(), same["embedding"]["score"].get<double>());
  // Both windows together: 80 rows.
  EXPECT_EQ(report(ws, fmt::format("--reference '{}' --since {}", (tmp / "profile.json").string(),
                                   t0))["current_rows"],
            80);

  // Bad arguments name what is wrong.
  CommandResult r = run_vigil("monitor report --model masks --reference /nope/profile.json", ws);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("/nope/profile.json"));
  r = run_vigil(fmt::format("monitor report --model masks --reference '{}' --test kolmogorov",
                            (tmp / "profile.json").string()),
                ws);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("ks, wasserstein, chisquare, z, jensenshannon, psi"));
  r = run_vigil(fmt::format("monitor report --model masks --reference '{}' --since yesterday",
                            (tmp / "profile.json").string()),
                ws);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--since"));
}

TEST(ServeMonitor, TheScheduledCheckExportsGaugesAndAlertsAWebhookWhenDriftStarts) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  fs::create_directories(tmp / "data" / "with_mask");
  fs::create_directories(tmp / "data" / "without_mask");
  for (int i = 0; i < 60; ++i)
    cv::imwrite((tmp / "data" / (i % 2 ? "with_mask" : "without_mask") / fmt::format("{}.jpg", i)).string(),
                scene(i, 1.0));
  const fs::path model =
      make_model_file(tmp / "masks.vgm", "mask_small_cnn", {"with_mask", "without_mask"}, 3);
  WebhookReceiver receiver(1);  // fails the first delivery: the alert is retried
  // A dataset folder as the reference (profiled at start); checks only on demand within this test.
  ServerProcess s(fmt::format("--model '{}' --name masks --monitor-reference '{}' --monitor-every-s 3600 "
                              "--monitor-webhook '{}' --set monitor_min_current=20",
                              model.string(), (tmp / "data").string(), receiver.url("/drift")),
                  tmp / "run", "serve", ws);
  ASSERT_TRUE(s.running()) << s.log();
  httplib::Client c("127.0.0.1", s.port());
  const json before = json::parse(c.Get("/v1/monitor")->body);
  EXPECT_TRUE(before["report"].is_null()) << "no check has run yet";
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(c.Post("/v1/predict", jpeg(scene(3000 + i, 0.4)), "image/jpeg")->status, 200);
  const json few = json::parse(c.Post("/v1/monitor/check", "", "application/json")->body);
  EXPECT_FALSE(few["enough_data"]) << "10 predictions are under monitor_min_current";
  for (int i = 10; i < 40; ++i)
    ASSERT_EQ(c.Post("/v1/predict", jpeg(scene(3000 + i, 0.4)), "image/jpeg")->status, 200);
  const json checked = json::parse(c.Post("/v1/monitor/check", "", "application/json")->body);
  EXPECT_EQ(checked["current_rows"], 40);
  EXPECT_TRUE(checked["dataset_drift"]) << checked.dump(1);
  EXPECT_EQ(json::parse(c.Get("/v1/monitor")->body)["report"]["checked"], checked["checked"]);
  const std::string metrics = c.Get("/metrics")->body;
  EXPECT_THAT(metrics, HasSubstr("vigil_drift_detected{model=\"masks\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("vigil_drift_score{model=\"masks\",column=\"brightness\",test=\"ks\"}"));
  // The alert arrives (after one failed attempt), once: a second check with drift still there sends nothing.
  c.Post("/v1/monitor/check", "", "application/json");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (receiver.requests().size() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto got = receiver.requests();
  ASSERT_EQ(got.size(), 2u) << "one failed attempt, one delivery";
  EXPECT_EQ(got[1].event, "drift");
  EXPECT_EQ(got[1].path, "/drift");
  const json alert = json::parse(got[1].body);
  EXPECT_EQ(alert["model"], "masks");
  EXPECT_GE(alert["drifted_columns"].get<int>(), 1);
  EXPECT_EQ(json::parse(c.Get("/v1/monitor")->body)["webhook"]["delivered"], 1);
}

// The must-show case on real images (../shared/datasets/masks): half of each class is the reference, the
// other half is traffic. Held-back images as they are: no dataset drift, brightness quiet. The same images
// darkened: dataset drift, led by brightness and contrast, while size and aspect (unchanged) stay quiet.
TEST(ServeMonitor, RealMaskImagesHeldBackShowNoDriftAndDarkenedOnesDo) {
  VIGIL_REQUIRE_SHARED(masks, "masks");
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  std::vector<fs::path> held_back[2], traffic;
  for (int k = 0; k < 2; ++k) {
    const char* cls = k == 0 ? "with_mask" : "without_mask";
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(fs::path(masks) / cls)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    fs::create_directories(tmp / "reference" / cls);
    for (size_t i = 0; i + 1 < files.size() && i < 400; i += 2) {
      fs::copy_file(files[i], tmp / "reference" / cls / files[i].filename());
      held_back[k].push_back(files[i + 1]);
    }
  }
  for (size_t i = 0; traffic.size() < 150 && i < held_back[0].size() && i < held_back[1].size(); ++i) {
    traffic.push_back(held_back[0][i]);  // both classes, interleaved
    traffic.push_back(held_back[1][i]);
  }
  ASSERT_EQ(traffic.size(), 150u);
  const fs::path model =
      make_model_file(tmp / "masks.vgm", "mask_small_cnn", {"with_mask", "without_mask"}, 5);
  ASSERT_EQ(run_vigil(fmt::format("monitor profile '{}' -o '{}' --model '{}'", (tmp / "reference").string(),
                                  (tmp / "profile.json").string(), model.string()),
                      ws)
                .exit_code,
            0);
  int64_t split_ms = 0;
  {
    ServerProcess s(fmt::format("--model '{}' --name masks", model.string()), tmp / "run", "serve", ws);
    ASSERT_TRUE(s.running()) << s.log();
    httplib::Client c("127.0.0.1", s.port());
    for (const auto& f : traffic)
      ASSERT_EQ(c.Post("/v1/predict", read_file(f), "image/jpeg")->status, 200) << f;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    split_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    for (const auto& f : traffic) {
      const cv::Mat img = cv::imread(f.string());
      cv::Mat dark;
      img.convertTo(dark, -1, 0.5, 0);
      ASSERT_EQ(c.Post("/v1/predict", jpeg(dark), "image/jpeg")->status, 200) << f;
    }
  }
  const json plain = report(
      ws, fmt::format("--reference '{}' --since 1h --until {}", (tmp / "profile.json").string(), split_ms));
  ASSERT_TRUE(plain.is_object());
  EXPECT_EQ(plain["current_rows"], 150);
  EXPECT_FALSE(plain["dataset_drift"]) << plain.dump(1);
  EXPECT_FALSE(column(plain, "brightness")["drifted"]);
  // The model's embeddings of held-back images: no drift (every method's verdict recorded for the log).
  EXPECT_FALSE(plain["embedding_drift"]) << plain["embedding"].dump();
  const json dark =
      report(ws, fmt::format("--reference '{}' --since {}", (tmp / "profile.json").string(), split_ms));
  EXPECT_EQ(dark["current_rows"], 150);
  EXPECT_TRUE(dark["dataset_drift"]) << dark.dump(1);
  for (const char* name : {"brightness", "contrast", "red", "green", "blue"})
    EXPECT_TRUE(column(dark, name)["drifted"]) << name;
  for (const char* name : {"width", "height", "aspect"})
    EXPECT_FALSE(column(dark, name)["drifted"]) << name << ": the darkened images keep their sizes";
  EXPECT_TRUE(dark["embedding_drift"]) << dark["embedding"].dump();
  fmt::print(
      "embeddings, method model: held-back {:.3f} (threshold {:.3f}), darkened {:.3f} (threshold {:.3f})\n",
      plain["embedding"]["score"].get<double>(), plain["embedding"]["threshold"].get<double>(),
      dark["embedding"]["score"].get<double>(), dark["embedding"]["threshold"].get<double>());
  // Evidently's other embedding methods: every one flags the darkened images; distance and mmd also pass the
  // held-back ones (ratio's per-component test flags sampling noise at this size: docs/monitor.md).
  for (const char* m : {"distance", "mmd", "ratio"}) {
    const json p = report(ws, fmt::format("--reference '{}' --since 1h --until {} --embedding-method {}",
                                          (tmp / "profile.json").string(), split_ms, m));
    const json d = report(ws, fmt::format("--reference '{}' --since {} --embedding-method {}",
                                          (tmp / "profile.json").string(), split_ms, m));
    EXPECT_EQ(p["embedding"]["method"], m);
    EXPECT_GT(d["embedding"]["score"].get<double>(), p["embedding"]["score"].get<double>()) << m;
    EXPECT_TRUE(d["embedding_drift"]) << m << " " << d["embedding"]["score"];
    if (std::string(m) != "ratio") {
      EXPECT_FALSE(p["embedding_drift"]) << m << " " << p["embedding"].dump();
    }
    fmt::print("embeddings, method {}: held-back {:.4g} (drift {}), darkened {:.4g} (threshold {:.4g})\n", m,
               p["embedding"]["score"].get<double>(), p["embedding_drift"].get<bool>(),
               d["embedding"]["score"].get<double>(), d["embedding"]["threshold"].get<double>());
  }
}

// Training keeps the reference: `vigil train` writes weights/best.profile.json (the validation split with the
// trained model's answers and embeddings), `vigil models register` keeps it with the version, `vigil monitor
// report --reference NAME@alias` reads it, and `vigil serve --monitor-reference model` compares the served
// version's traffic with it.
TEST(ServeMonitor, ATrainedModelCarriesItsProfileIntoTheRegistryAndTheServer) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  const fs::path config = make_tiny_shapes(tmp.path(), ws);
  CommandResult r = run_vigil("train --config '" + config.string() + "' --name first", ws);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path profile = ws / "runs" / "first" / "weights" / "best.profile.json";
  ASSERT_TRUE(fs::exists(profile)) << r.err;
  const json pj = json::parse(read_file(profile));
  EXPECT_EQ(pj["rows"].size(), 18u) << "the 30% validation split of 60 images";
  EXPECT_EQ(pj["task"], "classification");
  EXPECT_EQ(pj["rows"][0]["output"]["embedding"].size(), 16u);
  EXPECT_THAT(pj["source"].get<std::string>(), HasSubstr("shapes@"));
  r = run_vigil("models register first --name shapes --alias production", ws);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // The server follows the served version's profile; an untrained-like traffic mix of the same shapes.
  ServerProcess s("--model shapes@production --monitor-reference model --set monitor_min_current=10",
                  tmp / "run", "serve", ws);
  ASSERT_TRUE(s.running()) << s.log();
  httplib::Client c("127.0.0.1", s.port());
  int sent = 0;
  for (const auto& e : fs::recursive_directory_iterator(tmp / "src")) {
    if (!e.is_regular_file() || e.path().extension() != ".jpg") continue;
    ASSERT_EQ(c.Post("/v1/predict", read_file(e.path()), "application/octet-stream")->status, 200)
        << e.path();
    if (++sent == 30) break;
  }
  ASSERT_EQ(sent, 30);
  const json checked = json::parse(c.Post("/v1/monitor/check", "", "application/json")->body);
  EXPECT_EQ(checked["current_rows"], 30) << checked.dump(1);
  EXPECT_EQ(checked["version"], "1") << "only the served version's traffic";
  EXPECT_EQ(checked["reference_rows"], 18);
  EXPECT_TRUE(checked["embedding"].is_object()) << checked.dump(1);
  EXPECT_EQ(checked["embedding"]["reference_size"], 18);
  // The CLI reads the same stored profile by the registry name.
  const json cli = report_for(ws, "shapes", "--reference shapes@production --since 1h");
  EXPECT_EQ(cli["reference_rows"], 18) << cli.dump(1);
  EXPECT_EQ(cli["current_rows"], 30);
  // A model without a stored profile is named, with the way to make one.
  const fs::path bare = make_model_file(tmp / "bare.vgm", "mask_small_cnn", {"a", "b"}, 1);
  r = run_vigil(fmt::format("monitor report --model shapes --reference '{}'", bare.string()), ws);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("has no stored profile"));
  EXPECT_THAT(r.err, HasSubstr("vigil monitor profile"));
}

TEST(ServeMonitor, ABadReferenceStopsTheServerWithAMessage) {
  TempDir tmp;
  const fs::path model =
      make_model_file(tmp / "masks.vgm", "mask_small_cnn", {"with_mask", "without_mask"}, 3);
  ServerProcess s(
      fmt::format("--model '{}' --monitor-reference '{}'", model.string(), (tmp / "nope.json").string()),
      tmp / "run", "serve", tmp / "ws");
  EXPECT_FALSE(s.running());
  EXPECT_NE(s.exit_code(), 0);
  EXPECT_THAT(s.log(), HasSubstr("nope.json"));
}

}  // namespace
}  // namespace vigil::testing
