// Drives a real `vigil serve` process on a real port with a real HTTP client (cpp-httplib): the guns seed's
// routes, the /v1 JSON API, KServe v2, /metrics (checked by promtool when installed), dynamic batching, the
// full-queue 503, limits (body size, image type, pixel bombs, corrupt images), API keys, CORS, rate limits,
// hot reload (route and SIGHUP, failed loads keep the old model, memory stays flat), graceful SIGTERM, and a
// fuzz pass of malformed requests after which the server still answers correctly.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <future>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <regex>
#include <thread>

#include "serve_util.h"
#include "vigil/core/base64.h"
#include "vigil/core/cpu.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using vigil::read_file;
using vigil::testing::make_model_file;
using vigil::testing::run_shell;
using vigil::testing::ServerProcess;
using vigil::testing::TempDir;

std::string jpeg_bytes(int w, int h, int seed) {
  TempDir t;
  vigil::testing::write_image(t / "x.jpg", w, h, seed);
  return read_file(t / "x.jpg");
}

httplib::MultipartFormDataItems file_part(const std::string& bytes, const std::string& field = "file",
                                          const std::string& name = "img.jpg") {
  return {{field, bytes, name, "image/jpeg"}};
}

json body_json(const httplib::Result& r) {
  EXPECT_TRUE(r) << "no response";
  if (!r) return json();
  return json::parse(r->body, nullptr, false);
}

/// Fixture: a detector and a classifier model file, shared by every test of the suite.
class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    make_model_file(*dir_ / "guns.ckpt", "fasterrcnn_mobilenet_v3_large_320_fpn", {"gun"}, 1);
    make_model_file(*dir_ / "guns_v2.ckpt", "fasterrcnn_mobilenet_v3_large_320_fpn", {"gun"}, 2);
    make_model_file(*dir_ / "masks.ckpt", "mask_small_cnn", {"with_mask", "without_mask"}, 3);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path model(const std::string& name) { return *dir_ / name; }

  /// Starts a server on the detector (or `model_file`) with extra arguments.
  std::unique_ptr<ServerProcess> start(const std::string& extra = "",
                                       const std::string& model_file = "guns.ckpt") {
    auto s = std::make_unique<ServerProcess>(
        fmt::format("--model '{}' --name guns {}", model(model_file).string(), extra),
        tmp_ / fmt::format("s{}", n_++));
    EXPECT_TRUE(s->running()) << s->log();
    return s;
  }
  static httplib::Client client(const ServerProcess& s) {
    httplib::Client c("127.0.0.1", s.port());
    c.set_read_timeout(120, 0);
    c.set_write_timeout(60, 0);
    return c;
  }

  /// The classification probabilities a classifier server answers `image` with, after checking that
  /// /v1/models reports `precision` (empty json when the request fails, which is reported).
  static json served_probs(const ServerProcess& s, const std::string& precision, const std::string& image) {
    auto c = client(s);
    EXPECT_EQ(body_json(c.Get("/v1/models"))["models"][0]["precision"], precision);
    auto r = c.Post("/v1/predict", image, "image/jpeg");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r && r->status == 200 ? body_json(r)["classification"]["probs"] : json();
  }

  static TempDir* dir_;
  TempDir tmp_;
  int n_ = 0;
};
TempDir* ServeTest::dir_ = nullptr;

TEST_F(ServeTest, SeedRoutesAnswerLikeTheGunsApi) {
  auto s = start();
  ASSERT_TRUE(s->running());
  auto c = client(*s);
  auto root = c.Get("/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 200);
  EXPECT_EQ(body_json(root)["message"], "Welcome to the Guns Object Detection API!");
  EXPECT_TRUE(root->has_header("X-Request-Id"));
  // A browser gets the UI instead.
  auto browser = c.Get("/", {{"Accept", "text/html,application/xhtml+xml"}});
  ASSERT_TRUE(browser);
  EXPECT_EQ(browser->status, 302);
  EXPECT_EQ(browser->get_header_value("Location"), "/ui/");

  const std::string img = jpeg_bytes(320, 240, 1);
  auto png = c.Post("/predict/", file_part(img));
  ASSERT_TRUE(png);
  ASSERT_EQ(png->status, 200) << png->body;
  EXPECT_EQ(png->get_header_value("Content-Type"), "image/png");
  const cv::Mat drawn =
      cv::imdecode(std::vector<uchar>(png->body.begin(), png->body.end()), cv::IMREAD_COLOR);
  EXPECT_EQ(drawn.cols, 320);
  EXPECT_EQ(drawn.rows, 240);
  EXPECT_THAT(png->get_header_value("Server-Timing"), HasSubstr("inference;dur="));

  auto missing = c.Post("/predict/", file_part(img, "image"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 400);
  EXPECT_THAT(body_json(missing)["error"].get<std::string>(), HasSubstr("'file'"));
}

TEST_F(ServeTest, V1PredictReturnsDetectionsWithinBoundsAndHonoursParameters) {
  auto s = start();
  ASSERT_TRUE(s->running());
  auto c = client(*s);
  const std::string img = jpeg_bytes(400, 300, 2);
  auto r = c.Post("/v1/predict?score_threshold=0.05", {{"X-Request-Id", "my-req.1"}}, file_part(img));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("X-Request-Id"), "my-req.1");
  const json j = body_json(r);
  EXPECT_EQ(j["request_id"], "my-req.1");
  EXPECT_EQ(j["model"]["name"], "guns");
  EXPECT_EQ(j["model"]["arch"], "fasterrcnn_mobilenet_v3_large_320_fpn");
  EXPECT_EQ(j["image"]["width"], 400);
  EXPECT_EQ(j["image"]["type"], "jpeg");
  ASSERT_GT(j["detections"].size(), 3u) << "fresh weights give many low-scoring boxes";
  double previous = 1;
  for (const auto& d : j["detections"]) {
    EXPECT_EQ(d["label"], "gun");
    EXPECT_EQ(d["class_id"], 1);
    const auto& b = d["box"];
    EXPECT_GE(b[0].get<double>(), 0);
    EXPECT_LE(b[2].get<double>(), 400);
    EXPECT_LE(b[3].get<double>(), 300);
    EXPECT_LT(b[0].get<double>(), b[2].get<double>());
    EXPECT_LE(d["score"].get<double>(), previous);
    EXPECT_GE(d["score"].get<double>(), 0.05);
    previous = d["score"];
  }
  for (const char* k : {"decode", "queue", "inference", "encode", "total"})
    EXPECT_TRUE(j["timings_ms"].contains(k)) << k;

  // Raw body, thresholds and caps.
  auto raw = c.Post("/v1/predict?max_detections=3", img, "image/jpeg");
  ASSERT_TRUE(raw);
  ASSERT_EQ(raw->status, 200) << raw->body;
  EXPECT_EQ(body_json(raw)["detections"].size(), 3u);
  const double median = j["detections"][j["detections"].size() / 2]["score"];
  auto high = c.Post(fmt::format("/v1/predict?score_threshold={}", median), img, "image/jpeg");
  const json hj = body_json(high);
  EXPECT_LE(hj["detections"].size(), j["detections"].size());
  for (const auto& d : hj["detections"]) EXPECT_GE(d["score"].get<double>(), median);
  const double top = j["detections"][0]["score"];
  auto none =
      c.Post(fmt::format("/v1/predict?score_threshold={}", std::min(1.0, top + 1e-3)), img, "image/jpeg");
  EXPECT_EQ(body_json(none)["detections"].size(), 0u) << "nothing scores above the top score";

  for (const std::string bad :
       {"score_threshold=1.5", "nms_iou=abc", "max_detections=0", "max_detections=100000"}) {
    auto e = c.Post("/v1/predict?" + bad, img, "image/jpeg");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->status, 400) << bad;
    EXPECT_THAT(body_json(e)["error"].get<std::string>(), HasSubstr(vigil::split(bad, '=')[0])) << bad;
  }
  auto annotated = c.Post("/v1/predict?annotate=jpeg", img, "image/jpeg");
  ASSERT_TRUE(annotated);
  EXPECT_EQ(annotated->get_header_value("Content-Type"), "image/jpeg");
  EXPECT_EQ(annotated->body.substr(0, 2), "\xff\xd8");
}

TEST_F(ServeTest, ClassifierAnswersProbabilitiesOnEveryProtocol) {
  auto s = start("", "masks.ckpt");
  ASSERT_TRUE(s->running());
  auto c = client(*s);
  auto r = c.Post("/v1/predict", jpeg_bytes(120, 90, 3), "image/jpeg");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = body_json(r);
  const auto& cls = j["classification"];
  EXPECT_FALSE(j.contains("detections"));
  double sum = 0;
  for (const auto& [name, p] : cls["probs"].items()) sum += p.get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-4);
  EXPECT_EQ(cls["probs"][cls["label"].get<std::string>()], cls["score"]);
  const json models = body_json(c.Get("/v1/models"));
  EXPECT_EQ(models["models"][0]["classes"], json({"with_mask", "without_mask"}));
  EXPECT_EQ(models["models"][0]["input"]["width"], 100);
  EXPECT_EQ(models["models"][0]["precision"], "fp32");
  // OpenBLAS's thread count: chosen by timing when the warm-up took at most 60 ms (a busy machine can make
  // the first inference slower, and then the pool is kept untimed), and then the faster of the two timings.
  const json& blas = models["models"][0]["blas"];
  ASSERT_TRUE(blas.contains("threads") && blas.contains("timed")) << blas;
  if (blas["timed"].get<bool>()) {
    EXPECT_GT(blas["ms_one_thread"].get<double>(), 0) << blas;
    if (blas["threads"] == 1)
      EXPECT_LE(blas["ms_one_thread"].get<double>(), blas["ms_start_threads"].get<double>()) << blas;
    else
      EXPECT_GT(blas["ms_one_thread"].get<double>(), 0.97 * blas["ms_start_threads"].get<double>()) << blas;
  } else {
    EXPECT_EQ(blas["ms_one_thread"].get<double>(), 0) << blas;
    EXPECT_GE(blas["threads"].get<int>(), 1) << "the server runs LibTorch's OpenBLAS: " << blas;
  }

  const json req = {{"inputs",
                     {{{"name", "image"},
                       {"datatype", "BYTES"},
                       {"shape", {2}},
                       {"data",
                        {vigil::base64_encode(jpeg_bytes(64, 64, 4)),
                         {{"b64", vigil::base64_encode(jpeg_bytes(50, 80, 5))}}}}}}}};
  auto infer = c.Post("/v2/models/guns/infer", req.dump(), "application/json");
  ASSERT_TRUE(infer);
  ASSERT_EQ(infer->status, 200) << infer->body;
  const json out = body_json(infer);
  EXPECT_EQ(out["outputs"][0]["name"], "probabilities");
  EXPECT_EQ(out["outputs"][0]["shape"], json({2, 2}));
  EXPECT_EQ(out["outputs"][2]["data"].size(), 2u);
}

TEST_F(ServeTest, BatchRouteAnswersEveryPartAndReportsTheBadOne) {
  auto s = start("--max-batch-images 4");
  ASSERT_TRUE(s->running());
  auto c = client(*s);
  httplib::MultipartFormDataItems parts = {{"files", jpeg_bytes(200, 150, 6), "a.jpg", "image/jpeg"},
                                           {"files", "definitely not an image", "b.jpg", "image/jpeg"},
                                           {"files", jpeg_bytes(150, 200, 7), "c.jpg", "image/jpeg"}};
  auto r = c.Post("/v1/predict/batch", parts);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = body_json(r);
  ASSERT_EQ(j["results"].size(), 3u);
  EXPECT_EQ(j["results"][0]["filename"], "a.jpg");
  EXPECT_EQ(j["results"][0]["image"]["width"], 200);
  EXPECT_EQ(j["results"][1]["code"], "unsupported_media_type");
  EXPECT_THAT(j["results"][1]["error"].get<std::string>(), HasSubstr("b.jpg"));
  EXPECT_EQ(j["results"][2]["image"]["height"], 200);
  for (int i = 0; i < 3; ++i) parts.push_back(parts[0]);
  auto too_many = c.Post("/v1/predict/batch", parts);
  ASSERT_TRUE(too_many);
  EXPECT_EQ(too_many->status, 413);
}

TEST_F(ServeTest, LimitsRefuseBadInputWithTheRightStatus) {
  auto s = start("--max-body-mb 1 --max-pixels 1000000");
  ASSERT_TRUE(s->running());
  auto c = client(*s);
  auto big = c.Post("/v1/predict", std::string(2 * 1024 * 1024, 'x'), "image/jpeg");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(body_json(big)["code"], "too_large");

  auto text =
      c.Post("/v1/predict", file_part("hello, I am a text file named like a picture", "file", "cat.jpg"));
  ASSERT_TRUE(text);
  EXPECT_EQ(text->status, 415);

  const std::string jpg = jpeg_bytes(300, 200, 8);
  auto truncated = c.Post("/v1/predict", jpg.substr(0, jpg.size() / 2), "image/jpeg");
  ASSERT_TRUE(truncated);
  EXPECT_EQ(truncated->status, 400);
  EXPECT_THAT(body_json(truncated)["error"].get<std::string>(), HasSubstr("truncated"));

  // A decompression bomb: a small PNG whose header claims 20000 x 20000 pixels.
  std::vector<uchar> png;
  cv::imencode(".png", cv::Mat(10, 10, CV_8UC3, cv::Scalar(1, 2, 3)), png);
  for (int i = 0; i < 4; ++i) png[16 + i] = png[20 + i] = static_cast<uchar>((20000 >> (24 - 8 * i)) & 0xff);
  auto bomb = c.Post("/v1/predict", std::string(png.begin(), png.end()), "image/png");
  ASSERT_TRUE(bomb);
  EXPECT_EQ(bomb->status, 413);
  EXPECT_THAT(body_json(bomb)["error"].get<std::string>(), HasSubstr("too_large"));

  auto no_route = c.Get("/v1/nothing");
  ASSERT_TRUE(no_route);
  EXPECT_EQ(no_route->status, 404);
  EXPECT_EQ(body_json(no_route)["code"], "not_found");
  auto wrong_method = c.Get("/v1/predict");
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 405);
  EXPECT_EQ(wrong_method->get_header_value("Allow"), "POST");
}

TEST_F(ServeTest, ApiKeysCorsAndRateLimit) {
  auto s = start("--api-key k1 --api-key k2 --cors-origin http://ui.example --rate-limit 3/minute");
  ASSERT_TRUE(s->running());
  auto c = client(*s);
  const std::string img = jpeg_bytes(100, 100, 9);
  auto none = c.Post("/v1/predict", img, "image/jpeg");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("WWW-Authenticate"), "Bearer");
  auto wrong = c.Post("/v1/predict", {{"X-API-Key", "nope"}}, img, "image/jpeg");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 403);
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  for (int i = 0; i < 3; ++i) {
    auto ok = c.Post("/v1/predict", {{"Authorization", "Bearer k1"}}, img, "image/jpeg");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << i << ok->body;
  }
  auto limited = c.Post("/v1/predict", {{"Authorization", "Bearer k1"}}, img, "image/jpeg");
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429);
  EXPECT_GE(std::stoi(limited->get_header_value("Retry-After")), 1);
  // Another key is another client with its own bucket.
  auto other = c.Post("/v1/predict", {{"X-API-Key", "k2"}}, img, "image/jpeg");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200);

  auto preflight =
      c.Options("/v1/predict", {{"Origin", "http://ui.example"}, {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 204);
  EXPECT_EQ(preflight->get_header_value("Access-Control-Allow-Origin"), "http://ui.example");
  auto foreign = c.Get("/health", {{"Origin", "http://evil.example"}});
  EXPECT_FALSE(foreign->has_header("Access-Control-Allow-Origin"));
}

TEST_F(ServeTest, KServeV2ProtocolWithBase64AndBinaryData) {
  auto s = start();
  ASSERT_TRUE(s->running());
  auto c = client(*s);
  EXPECT_EQ(body_json(c.Get("/v2/health/live"))["live"], true);
  EXPECT_EQ(body_json(c.Get("/v2/health/ready"))["ready"], true);
  EXPECT_EQ(body_json(c.Get("/ready"))["ready"], true);
  const json meta = body_json(c.Get("/v2/models/guns"));
  EXPECT_EQ(meta["inputs"][0]["datatype"], "BYTES");
  const std::string version = meta["versions"][0];
  EXPECT_EQ(c.Get("/v2/models/guns/versions/" + version + "/ready")->status, 200);
  EXPECT_EQ(c.Get("/v2/models/other")->status, 404);
  EXPECT_EQ(c.Get("/v2/models/guns/versions/0/ready")->status, 404);

  const std::string a = jpeg_bytes(320, 240, 10), b = jpeg_bytes(320, 240, 11);
  const json req = {{"id", "r1"},
                    {"inputs",
                     {{{"name", "image"},
                       {"datatype", "BYTES"},
                       {"shape", {2}},
                       {"data", {vigil::base64_encode(a), vigil::base64_encode(b)}}}}},
                    {"parameters", {{"score_threshold", 0.1}, {"max_detections", 5}}}};
  auto r = c.Post("/v2/models/guns/infer", req.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json out = body_json(r);
  EXPECT_EQ(out["id"], "r1");
  EXPECT_EQ(out["model_version"], version);
  std::map<std::string, json> by_name;
  for (const auto& o : out["outputs"]) by_name[o["name"]] = o;
  const int64_t k = by_name["detection_boxes"]["shape"][1];
  EXPECT_LE(k, 5);
  EXPECT_EQ(by_name["detection_boxes"]["shape"], json({2, k, 4}));
  EXPECT_EQ(by_name["detection_boxes"]["data"].size(), static_cast<size_t>(2 * k * 4));
  EXPECT_EQ(by_name["num_detections"]["data"].size(), 2u);
  for (const auto& v : by_name["detection_scores"]["data"])
    EXPECT_TRUE(v.get<double>() == 0 || v.get<double>() >= 0.1);

  // Triton's binary data extension: JSON header, then each element as a 4-byte length and its bytes.
  json header = {{"inputs",
                  {{{"name", "image"},
                    {"datatype", "BYTES"},
                    {"shape", {1}},
                    {"parameters", {{"binary_data_size", a.size() + 4}}}}}}};
  const std::string head = header.dump();
  std::string body = head;
  const uint32_t n = static_cast<uint32_t>(a.size());
  for (int i = 0; i < 4; ++i) body += static_cast<char>((n >> (8 * i)) & 0xff);
  body += a;
  auto bin =
      c.Post("/v2/models/guns/infer", {{"Inference-Header-Content-Length", std::to_string(head.size())}},
             body, "application/octet-stream");
  ASSERT_TRUE(bin);
  ASSERT_EQ(bin->status, 200) << bin->body;
  const json bj = body_json(bin);
  EXPECT_EQ(bj["outputs"][3]["name"], "num_detections");
  EXPECT_EQ(bj["outputs"][3]["shape"], json({1}));
  // The same image as base64 gives the same answer.
  json same = {
      {"inputs",
       {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {1}}, {"data", {vigil::base64_encode(a)}}}}}};
  EXPECT_EQ(body_json(c.Post("/v2/models/guns/infer", same.dump(), "application/json"))["outputs"],
            bj["outputs"]);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{not json", "not valid JSON"},
      {R"({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [1]}]})", "BYTES"},
      {R"({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": ["AAAA"]}]})", "holds 1"},
      {R"({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["!!notbase64"]}]})",
       "base64"},
      {R"({"inputs": []})", "exactly one input"}};
  for (const auto& [text, expect] : bad) {
    auto e = c.Post("/v2/models/guns/infer", text, "application/json");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->status, 400) << text;
    EXPECT_THAT(body_json(e)["error"].get<std::string>(), HasSubstr(expect)) << text;
  }
}

TEST_F(ServeTest, DynamicBatchingGroupsConcurrentRequestsAndAFullQueueAnswers503) {
  auto s = start("--max-batch 4 --max-queue-delay-ms 300 --queue-capacity 4 --http-threads 8");
  ASSERT_TRUE(s->running());
  const std::string img = jpeg_bytes(320, 240, 12);
  std::vector<std::future<json>> futures;
  for (int i = 0; i < 4; ++i) {
    futures.push_back(std::async(std::launch::async, [&] {
      auto c = client(*s);
      return body_json(c.Post("/v1/predict", img, "image/jpeg"));
    }));
  }
  int largest = 0;
  for (auto& f : futures) {
    const json j = f.get();
    ASSERT_TRUE(j.contains("batch_size")) << j.dump();
    largest = std::max(largest, j["batch_size"].get<int>());
  }
  EXPECT_GT(largest, 1) << "four concurrent requests within a 300 ms window share a forward pass";

  // Five images cannot fit a queue of four: refused at once, nothing half-done.
  auto c = client(*s);
  httplib::MultipartFormDataItems parts;
  for (int i = 0; i < 5; ++i) parts.push_back({"files", img, fmt::format("{}.jpg", i), "image/jpeg"});
  auto full = c.Post("/v1/predict/batch", parts);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 503) << full->body;
  EXPECT_EQ(body_json(full)["code"], "overloaded");
  EXPECT_EQ(full->get_header_value("Retry-After"), "1");
  // ... and the server goes on serving.
  EXPECT_EQ(c.Post("/v1/predict", img, "image/jpeg")->status, 200);

  const std::string metrics = c.Get("/metrics")->body;
  const std::smatch m = [&] {
    std::smatch x;
    std::regex_search(
        metrics, x,
        std::regex(R"(vigil_inference_executions_total (\d+)\n(?:.|\n)*vigil_inference_count_total (\d+))"));
    return x;
  }();
  ASSERT_EQ(m.size(), 3u) << metrics;
  EXPECT_LT(std::stoi(m[1]), std::stoi(m[2])) << "average batch above 1";
  EXPECT_THAT(metrics, HasSubstr("vigil_rejected_total{reason=\"queue_full\"} 1"));
}

TEST_F(ServeTest, MetricsAndStatsCountWhatHappened) {
  auto s = start();
  ASSERT_TRUE(s->running());
  auto c = client(*s);
  const std::string img = jpeg_bytes(320, 240, 13);
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(c.Post("/v1/predict?score_threshold=0.05", img, "image/jpeg")->status, 200);
  ASSERT_EQ(c.Post("/v1/predict", std::string("junk"), "image/jpeg")->status, 415);
  const json stats = body_json(c.Get("/v1/stats"));
  EXPECT_EQ(stats["predictions"], 3);
  EXPECT_EQ(stats["errors"], 1);
  EXPECT_GT(stats["by_class"]["gun"]["count"].get<int>(), 3);
  EXPECT_GT(stats["latency_ms"]["p50"].get<double>(), 0);
  // Summed over the buckets: the requests may straddle a minute (or midnight), as they once did here.
  auto total = [](const json& buckets, const char* key) {
    int n = 0;
    for (const auto& b : buckets) n += b[key].get<int>();
    return n;
  };
  EXPECT_EQ(total(stats["by_day"], "count"), 3);
  EXPECT_EQ(total(stats["recent"], "requests"), 4);

  const std::string text = c.Get("/metrics")->body;
  EXPECT_THAT(text,
              HasSubstr("vigil_http_requests_total{route=\"/v1/predict\",method=\"POST\",status=\"200\"} 3"));
  EXPECT_THAT(text,
              HasSubstr("vigil_http_requests_total{route=\"/v1/predict\",method=\"POST\",status=\"415\"} 1"));
  EXPECT_THAT(text, HasSubstr("vigil_stage_duration_seconds_count{stage=\"inference\"} 3"));
  EXPECT_THAT(text, HasSubstr("process_resident_memory_bytes "));
  EXPECT_THAT(text, HasSubstr("vigil_model_loads_total{result=\"success\"} 1"));
  // promtool (Debian's prometheus package) is the judge of the exposition format.
  if (run_shell("command -v promtool").first != 0) {
    std::cout << "promtool missing: format check skipped\n";
  } else {
    TempDir t;
    vigil::testing::write_text(t / "m.txt", text);
    const auto [rc, out] = run_shell(fmt::format("promtool check metrics < '{}'", (t / "m.txt").string()));
    EXPECT_EQ(rc, 0) << out;
  }
}

TEST_F(ServeTest, HotReloadSwapsVersionsKeepsTheOldOneOnFailureAndDoesNotGrowMemory) {
  auto s = start();
  ASSERT_TRUE(s->running());
  auto c = client(*s);
  const std::string img = jpeg_bytes(320, 240, 14);
  const std::string v1 = body_json(c.Get("/v1/models"))["models"][0]["version"];
  // Requests keep flowing while the model is swapped under them.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread load([&] {
    auto lc = client(*s);
    while (!stop) (lc.Post("/v1/predict", img, "image/jpeg")->status == 200 ? ok : failed)++;
  });
  const json body = {{"parameters", {{"path", model("guns_v2.ckpt").string()}}}};
  auto r = c.Post("/v2/repository/models/guns/load", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string v2 = body_json(c.Get("/v1/models"))["models"][0]["version"];
  EXPECT_NE(v1, v2);
  EXPECT_EQ(body_json(c.Post("/v1/predict", img, "image/jpeg"))["model"]["version"], v2);

  auto bad = c.Post("/v2/repository/models/guns/load",
                    json({{"parameters", {{"path", "/nope.ckpt"}}}}).dump(), "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 404) << "a missing model file is NotFound, mapped once by http_status_for";
  EXPECT_THAT(body_json(bad)["error"].get<std::string>(), HasSubstr("previous version keeps serving"));
  EXPECT_EQ(body_json(c.Get("/v1/models"))["models"][0]["version"], v2);
  EXPECT_EQ(c.Post("/v2/repository/models/other/load", "", "application/json")->status, 404);

  // SIGHUP reloads from the current source (guns_v2 now): same bytes, same version, one more load.
  s->signal(SIGHUP);
  for (int i = 0; i < 100 && c.Get("/metrics")->body.find("vigil_model_loads_total{result=\"success\"} 3") ==
                                 std::string::npos;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_THAT(c.Get("/metrics")->body, HasSubstr("vigil_model_loads_total{result=\"success\"} 3"));

  // Repeated reloads: the old models are freed (resident memory measured before and after ten more).
  const double before = s->rss_mib();
  for (int i = 0; i < 10; ++i) {
    const std::string path = model(i % 2 ? "guns.ckpt" : "guns_v2.ckpt").string();
    ASSERT_EQ(c.Post("/v2/repository/models/guns/load", json({{"parameters", {{"path", path}}}}).dump(),
                     "application/json")
                  ->status,
              200);
  }
  const double after = s->rss_mib();
  stop = true;
  load.join();
  std::cout << "resident memory before/after 10 reloads: " << before << " / " << after
            << " MiB; requests during "
            << "reloads: " << ok << " ok, " << failed << " failed\n";
  EXPECT_LT(after, before + 60) << "each model is ~20 MiB: ten leaked ones would show";
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(failed.load(), 0);
}

TEST_F(ServeTest, SigtermFinishesAcceptedRequestsAndExitsZero) {
  // One image per forward pass: sixteen 640x480 images keep the server busy well past the signal.
  auto s = start("--max-batch 1");
  ASSERT_TRUE(s->running());
  const std::string img = jpeg_bytes(640, 480, 15);
  httplib::MultipartFormDataItems parts;
  for (int i = 0; i < 16; ++i) parts.push_back({"files", img, fmt::format("{}.jpg", i), "image/jpeg"});
  auto pending = std::async(std::launch::async, [&] {
    auto c = client(*s);
    auto r = c.Post("/v1/predict/batch", parts);
    return r ? std::make_pair(r->status, body_json(r)["results"].size()) : std::make_pair(-1, size_t{0});
  });
  // Signal once the batch is accepted and being inferred, seen as its first forward pass in /metrics (the
  // model's warm-up does not go through the batcher), rather than after a fixed sleep.
  auto c = client(*s);
  const std::regex executions_re(R"(vigil_inference_executions_total (\d+))");
  auto executions = [&] {
    auto r = c.Get("/metrics");
    std::smatch m;
    return r && std::regex_search(r->body, m, executions_re) ? std::stoi(m[1]) : 0;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (executions() < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_GE(executions(), 1) << "no forward pass within 120 s\n" << s->log();
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "answered before the signal";
  s->signal(SIGTERM);
  const auto [status, answered] = pending.get();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(answered, 16u);
  EXPECT_EQ(s->wait_exit(60), 0) << s->log();
  EXPECT_THAT(s->log(), HasSubstr("stopped"));
}

TEST_F(ServeTest, CommandLineErrorsAreClear) {
  ServerProcess missing(fmt::format("--model '{}'", (tmp_ / "none.ckpt").string()), tmp_ / "m");
  EXPECT_FALSE(missing.running());
  EXPECT_EQ(missing.exit_code(), 4) << missing.log();
  EXPECT_THAT(missing.log(), HasSubstr("none.ckpt"));
  ServerProcess bad_limit(fmt::format("--model '{}' --rate-limit often", model("guns.ckpt").string()),
                          tmp_ / "r");
  EXPECT_EQ(bad_limit.exit_code(), 2) << bad_limit.log();
  EXPECT_THAT(bad_limit.log(), HasSubstr("10/minute"));
  ServerProcess bad_blas(fmt::format("--model '{}' --blas-threads -1", model("guns.ckpt").string()),
                         tmp_ / "b");
  EXPECT_EQ(bad_blas.exit_code(), 2) << bad_blas.log();
  EXPECT_THAT(bad_blas.log(), HasSubstr("blas_threads in 0..256"));
  auto s = start();
  ASSERT_TRUE(s->running());
  const auto [rc, out] =
      run_shell(fmt::format("timeout 120 '{}' --workspace '{}' serve --model '{}' --port {} 2>&1",
                            VIGIL_BINARY, (tmp_ / "w").string(), model("guns.ckpt").string(), s->port()));
  EXPECT_EQ(rc, 5) << out;
  EXPECT_THAT(out, HasSubstr("cannot listen"));
}

/// Sets environment variables for the servers a test starts (they inherit them) and removes them after.
class ScopedEnv {
 public:
  using Vars = std::vector<std::pair<std::string, std::string>>;
  explicit ScopedEnv(Vars vars) : vars_(std::move(vars)) {
    for (const auto& [k, v] : vars_) setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : vars_) unsetenv(k.c_str());
  }

 private:
  Vars vars_;
};

// --precision bf16 (nn/precision.h): the same answers within 0.02 where the CPU has the instructions, and a
// refusal at start-up that names them where it has not (simulated through VIGIL_CPU_FLAGS).
TEST_F(ServeTest, Bf16AnswersWithinToleranceAndIsRefusedWithoutTheInstructions) {
  const std::string image = jpeg_bytes(120, 90, 3);
  if (vigil::cpu_info().has_bf16()) {
    json want, got;
    for (const std::string precision : {"fp32", "bf16"}) {
      auto s = start("--precision " + precision, "masks.ckpt");
      ASSERT_TRUE(s->running());
      (precision == "fp32" ? want : got) = served_probs(*s, precision, image);
    }
    ASSERT_EQ(want.size(), 2u);
    for (const auto& [name, p] : want.items())
      EXPECT_NEAR(got[name].get<double>(), p.get<double>(), 0.02) << name;
  }
  const ScopedEnv cpu(ScopedEnv::Vars{{"VIGIL_CPU_FLAGS", "fpu sse4_2 avx avx2 avx512f"}});
  ServerProcess refused(fmt::format("--model '{}' --precision bf16", model("masks.ckpt").string()),
                        tmp_ / "p");
  EXPECT_FALSE(refused.running());
  EXPECT_EQ(refused.exit_code(), 2) << refused.log();
  EXPECT_THAT(refused.log(), AllOf(HasSubstr("avx512_bf16"), HasSubstr("precision fp32")));
}

// --precision int8 (nn/quantize.h): a ResNet classifier, calibrated at load on a folder of images, answers
// within 0.05 of float32 and says int8 in /v1/models; a model without a ResNet backbone and a missing
// calibration set are refused at start-up by name (exit 2).
TEST_F(ServeTest, Int8CalibratesAtLoadAnswersNearFloat32AndRefusesWhatItCannotQuantise) {
  if (!vigil::cpu_info().has_int8_dot()) GTEST_SKIP() << "this CPU has no VNNI instructions";
  make_model_file(tmp_ / "r18.ckpt", "resnet18", {"with_mask", "without_mask"}, 4);
  fs::create_directories(tmp_ / "calibration");
  for (int i = 0; i < 4; ++i)
    vigil::write_file_atomic(tmp_ / "calibration" / fmt::format("{}.jpg", i), jpeg_bytes(160, 120, 40 + i));
  const std::string image = jpeg_bytes(120, 90, 3);
  json want, got;
  for (const std::string precision : {"fp32", "int8"}) {
    ServerProcess s(fmt::format("--model '{}' --precision {} --calibration '{}'",
                                (tmp_ / "r18.ckpt").string(), precision, (tmp_ / "calibration").string()),
                    tmp_ / ("s_" + precision));
    ASSERT_TRUE(s.running()) << s.log();
    (precision == "fp32" ? want : got) = served_probs(s, precision, image);
  }
  ASSERT_EQ(want.size(), 2u);
  for (const auto& [name, p] : want.items())
    EXPECT_NEAR(got[name].get<double>(), p.get<double>(), 0.05) << name;

  ServerProcess no_calibration(fmt::format("--model '{}' --precision int8", (tmp_ / "r18.ckpt").string()),
                               tmp_ / "p1");
  EXPECT_FALSE(no_calibration.running());
  EXPECT_EQ(no_calibration.exit_code(), 2) << no_calibration.log();
  EXPECT_THAT(no_calibration.log(), HasSubstr("calibration"));
  ServerProcess not_resnet(fmt::format("--model '{}' --precision int8 --calibration '{}'",
                                       model("masks.ckpt").string(), (tmp_ / "calibration").string()),
                           tmp_ / "p2");
  EXPECT_FALSE(not_resnet.running());
  EXPECT_EQ(not_resnet.exit_code(), 2) << not_resnet.log();
  EXPECT_THAT(not_resnet.log(), AllOf(HasSubstr("ResNet backbone"), HasSubstr("mask_small_cnn")));
}

TEST_F(ServeTest, EnvironmentConfiguresEveryFlagAndTheCommandLineWins) {
  {
    // VIGIL_MAX_BODY_MB and VIGIL_API_KEY act; --name beats VIGIL_NAME; --set beats VIGIL_MAX_PIXELS.
    ScopedEnv env(ScopedEnv::Vars{{"VIGIL_MAX_BODY_MB", "1"},
                                  {"VIGIL_API_KEY", "k1, k2"},
                                  {"VIGIL_NAME", "from_env"},
                                  {"VIGIL_MAX_PIXELS", "100"},
                                  {"VIGIL_SCORE_TRESHOLD", "0.1"}});
    auto s = start("--set max_pixels=40000000");
    ASSERT_TRUE(s->running());
    auto c = client(*s);
    auto big = c.Post("/v1/predict", {{"X-API-Key", "k2"}}, std::string(2 * 1024 * 1024, 'x'), "image/jpeg");
    ASSERT_TRUE(big);
    EXPECT_EQ(big->status, 413) << big->body;
    const std::string img = jpeg_bytes(320, 240, 21);
    auto anonymous = c.Post("/v1/predict", img, "image/jpeg");
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401);
    auto ok = c.Post("/v1/predict", {{"X-API-Key", "k2"}}, img, "image/jpeg");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;  // 76800 pixels: --set's limit, not the variable's 100
    auto models = body_json(c.Get("/v1/models", {{"X-API-Key", "k1"}}));
    EXPECT_THAT(models.dump(), HasSubstr("\"guns\""));
    EXPECT_THAT(models.dump(), ::testing::Not(HasSubstr("from_env")));
    // A misspelt variable is said, not silently ignored.
    EXPECT_THAT(s->log(), HasSubstr("VIGIL_SCORE_TRESHOLD is set but vigil reads no such variable"));
  }
  {
    // A bad variable is refused by its name, like a bad flag.
    ScopedEnv env(ScopedEnv::Vars{{"VIGIL_RATE_LIMIT", "often"}});
    ServerProcess bad(fmt::format("--model '{}'", model("guns.ckpt").string()), tmp_ / "bad_env");
    EXPECT_EQ(bad.exit_code(), 2) << bad.log();
    EXPECT_THAT(bad.log(), HasSubstr("VIGIL_RATE_LIMIT=often"));
  }
}

/// Sends raw bytes on a fresh connection and returns whatever comes back (the server may also just close).
std::string raw_exchange(int port, const std::string& bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    (void)!send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return reply;
}

TEST_F(ServeTest, FuzzedRequestsNeverCrashOrWedgeTheServer) {
  auto s = start("--max-body-mb 2 --read-timeout-s 2");
  ASSERT_TRUE(s->running());
  std::mt19937 rng(20261201);
  auto random_bytes = [&](size_t n) {
    std::string b(n, '\0');
    for (auto& ch : b) ch = static_cast<char>(rng() & 0xff);
    return b;
  };
  const std::string jpg = jpeg_bytes(160, 120, 16);
  std::vector<uchar> png_buf;
  cv::imencode(".png", cv::Mat(90, 70, CV_8UC3, cv::Scalar(9, 99, 199)), png_buf);
  const std::string png(png_buf.begin(), png_buf.end());
  auto mutate = [&](std::string b) {
    const int edits = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < edits && !b.empty(); ++i) b[rng() % b.size()] = static_cast<char>(rng() & 0xff);
    if (rng() % 3 == 0) b.resize(rng() % b.size());
    return b;
  };
  auto c = client(*s);
  int answered = 0, statuses_5xx = 0;
  for (int i = 0; i < 150; ++i) {
    const std::string img = mutate(i % 2 ? jpg : png);
    httplib::Result r = [&]() -> httplib::Result {
      switch (i % 5) {
        case 0:
          return c.Post("/v1/predict", img, "image/jpeg");
        case 1:
          return c.Post("/predict/", file_part(img));
        case 2:
          return c.Post("/v1/predict/batch",
                        httplib::MultipartFormDataItems{{"f", img, "a.png", "image/png"},
                                                        {"g", random_bytes(rng() % 512), "", ""}});
        case 3: {
          const json req = {{"inputs",
                             {{{"name", "image"},
                               {"datatype", "BYTES"},
                               {"shape", {1}},
                               {"data", {vigil::base64_encode(img)}}}}}};
          return c.Post("/v2/models/guns/infer", mutate(req.dump()), "application/json");
        }
        default:
          return c.Post("/v1/predict?score_threshold=" + std::to_string(rng() % 3),
                        random_bytes(rng() % 4096), "application/octet-stream");
      }
    }();
    if (r) {
      ++answered;
      if (r->status >= 500) ++statuses_5xx;
      EXPECT_TRUE(r->status < 500) << "case " << i << ": " << r->status << " " << r->body;
    }
  }
  // Malformed HTTP and multipart framing straight on the socket.
  const std::string boundary = "XyZ";
  const std::vector<std::string> raw = {
      "GARBAGE\r\n\r\n",
      "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\nabc",
      "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
      "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=" + boundary +
          "\r\nContent-Length: 40\r\n\r\n--XyZ\r\nContent-Disposition: form-data\r\n\r\n",
      "POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
      "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\n" + std::string(9000, 'h') + ": v\r\n\r\n",
      random_bytes(3000)};
  for (const auto& bytes : raw) raw_exchange(s->port(), bytes);
  for (int i = 0; i < 20; ++i)
    raw_exchange(s->port(),
                 mutate("POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        "multipart/form-data; boundary=b\r\nContent-Length: 60\r\n\r\n"
                        "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nxx\r\n--b--\r\n"));
  std::cout << "fuzz: " << answered << "/150 answered, " << statuses_5xx << " 5xx\n";
  EXPECT_GT(answered, 140);
  // Still alive and still right.
  auto after = client(*s).Post("/v1/predict", jpg, "image/jpeg");
  ASSERT_TRUE(after) << s->log();
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(body_json(after)["image"]["width"], 160);
  EXPECT_EQ(client(*s).Get("/health")->status, 200);
}

/// Sends one request on a connection that stays open, as curl's does (no half-close telling the server that
/// the body ended), and returns the answer: head and body, read up to its Content-Length.
std::string exchange_keeping_open(int port, const std::string& bytes, int timeout_s) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    (void)!send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    const std::regex length_re(R"(\r\nContent-Length: *(\d+))", std::regex::icase);
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
      reply.append(buf, static_cast<size_t>(n));
      const auto end = reply.find("\r\n\r\n");
      std::smatch m;
      const std::string head = reply.substr(0, end);
      if (end != std::string::npos && std::regex_search(head, m, length_re) &&
          reply.size() >= end + 4 + std::stoul(m[1]))
        break;
    }
  }
  close(fd);
  return reply;
}

TEST_F(ServeTest, LoadWithoutABodyReloadsTheModel) {
  // Triton's documented call, `curl -X POST http://HOST/v2/repository/models/NAME/load`, sends neither
  // Content-Length nor a body: RFC 9112 section 6.3 says the body is then empty. (httplib alone would wait
  // for the connection to close, and answer 400 after the read timeout.)
  auto s = start("--read-timeout-s 10");
  ASSERT_TRUE(s->running());
  auto c = client(*s);
  EXPECT_THAT(c.Get("/metrics")->body, HasSubstr("vigil_model_loads_total{result=\"success\"} 1"));
  const std::string reply = exchange_keeping_open(
      s->port(),
      "POST /v2/repository/models/guns/load HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/7.88.1\r\n"
      "Accept: */*\r\n\r\n",
      120);
  ASSERT_EQ(reply.substr(0, 12), "HTTP/1.1 200") << reply << "\n" << s->log();
  const json body = json::parse(reply.substr(reply.find("\r\n\r\n") + 4), nullptr, false);
  EXPECT_EQ(body["state"], "READY") << reply;
  EXPECT_EQ(body["name"], "guns") << reply;
  EXPECT_THAT(c.Get("/metrics")->body, HasSubstr("vigil_model_loads_total{result=\"success\"} 2"))
      << "the model was loaded again";
}

}  // namespace
