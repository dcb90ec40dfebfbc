// Drives a real `vigil serve --cameras` process on a real port: OpenCV's vtest.avi (looped) watched by a
// one-class classifier, which gives every frame one frame-sized box scoring 1.0 (softmax over one class), so
// the tracker confirms one track and the rules start one event deterministically, whatever the weights.
// Checked with a real HTTP client (cpp-httplib): camera stats with frames counting up, the latest frame and
// the MJPEG stream decoding to the video's size, events searched over HTTP and by `vigil events list`, the
// server-sent stream delivering the event's start record, per-camera Prometheus metrics (promtool), 404s
// naming the camera or event, the stream limit, and SIGTERM ending the server (and the open event, as
// `stopped`, in the store) while stream clients are still connected. Waits count frames and events; the
// deadlines only bound a hung server.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <set>
#include <thread>

#include "serve_util.h"
#include "vigil/core/strings.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;
using vigil::testing::ServerProcess;
using vigil::testing::TempDir;
using Clock = std::chrono::steady_clock;

const fs::path kVtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";
constexpr int kVtestWidth = 768, kVtestHeight = 576;

json body_json(const httplib::Result& r) {
  EXPECT_TRUE(r) << "no response";
  if (!r) return json();
  return json::parse(r->body, nullptr, false);
}

cv::Mat decode(const std::string& bytes) {
  return cv::imdecode(std::vector<uchar>(bytes.begin(), bytes.end()), cv::IMREAD_COLOR);
}

/// Polls `fn` until it is true; false when the bound passes first (a hung server, not a slow one).
template <class F>
bool eventually(F&& fn, int bound_s = 180) {
  const auto deadline = Clock::now() + std::chrono::seconds(bound_s);
  while (Clock::now() < deadline) {
    if (fn()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

/// The JPEG parts of a multipart/x-mixed-replace body received so far (complete parts only).
std::vector<std::string> mjpeg_parts(const std::string& body) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    const size_t boundary = body.find("--frame\r\n", pos);
    if (boundary == std::string::npos) break;
    const size_t length_at = body.find("Content-Length: ", boundary);
    const size_t head_end = body.find("\r\n\r\n", boundary);
    if (length_at == std::string::npos || head_end == std::string::npos) break;
    const size_t length = std::stoul(body.substr(length_at + 16, head_end - length_at - 16));
    if (head_end + 4 + length > body.size()) break;
    parts.push_back(body.substr(head_end + 4, length));
    pos = head_end + 4 + length;
  }
  return parts;
}

/// One camera on vtest.avi, a frame-sized zone, stationary suppression off (the frame-sized box never
/// moves); the server lets 2 streams open at once.
class ServeCameras : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kVtest)) return;
    dir_ = new TempDir();
    const fs::path model =
        vigil::testing::make_model_file(*dir_ / "scene.vgm", "mask_small_cnn", {"scene"}, 5);
    vigil::write_file_atomic(*dir_ / "cameras.yaml", fmt::format(R"(cameras:
  lobby:
    source: {{url: '{}', loop: true}}
    detect: {{model: '{}', fps: 5}}
    zones:
      floor: {{coordinates: [[0, 0], [2000, 0], [2000, 2000], [0, 2000]], inertia: 1}}
    alerts: {{stationary: {{seconds: 0}}}}
)",
                                                                 kVtest.string(), model.string()));
    server_ = new ServerProcess(
        fmt::format("--cameras '{}' --max-streams 2", (*dir_ / "cameras.yaml").string()), *dir_ / "srv");
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!fs::exists(kVtest)) GTEST_SKIP() << "opencv-doc's vtest.avi absent; skipping";
    ASSERT_TRUE(server_ && server_->running()) << (server_ ? server_->log() : "");
  }
  static httplib::Client client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(60, 0);
    return c;
  }
  static json camera() { return body_json(client().Get("/v1/cameras/lobby")); }
  /// The events the server has, once it has at least one.
  static json events(const std::string& query = "") { return body_json(client().Get("/v1/events" + query)); }
  static void wait_for_an_event() {
    ASSERT_TRUE(eventually([] { return events().value("total", 0) >= 1; })) << server_->log();
  }

  static TempDir* dir_;
  static ServerProcess* server_;
};
TempDir* ServeCameras::dir_ = nullptr;
ServerProcess* ServeCameras::server_ = nullptr;

TEST_F(ServeCameras, CamerasRunWithFramesCountingUpAndUnknownOnesAre404) {
  ASSERT_TRUE(eventually([] { return camera().value("detected", 0) >= 1; })) << server_->log();
  const json all = body_json(client().Get("/v1/cameras"));
  ASSERT_EQ(all["cameras"].size(), 1u) << all.dump();
  const json& lobby = all["cameras"][0];
  EXPECT_EQ(lobby["name"], "lobby");
  EXPECT_EQ(lobby["state"], "running");
  EXPECT_EQ(lobby["width"], kVtestWidth);
  EXPECT_EQ(lobby["height"], kVtestHeight);
  ASSERT_EQ(all["models"].size(), 1u);
  EXPECT_EQ(all["models"][0]["cameras"], json::array({"lobby"}));
  const int64_t first = lobby["frames"];
  EXPECT_TRUE(eventually([&] { return camera().value("frames", int64_t{0}) > first; }))
      << "frames read must keep counting";

  auto unknown = client().Get("/v1/cameras/nowhere");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_THAT(unknown->body, HasSubstr("nowhere"));
  EXPECT_THAT(unknown->body, HasSubstr("lobby")) << "the error lists the cameras there are";
  auto unknown_jpeg = client().Get("/v1/cameras/nowhere/latest.jpg");
  ASSERT_TRUE(unknown_jpeg);
  EXPECT_EQ(unknown_jpeg->status, 404);
  EXPECT_THAT(unknown_jpeg->body, HasSubstr("nowhere"));
  auto post = client().Post("/v1/cameras", "", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET");
}

TEST_F(ServeCameras, LatestFrameDecodesToTheVideosSize) {
  ASSERT_TRUE(eventually([] { return camera().value("detected", 0) >= 1; })) << server_->log();
  for (const char* query : {"", "?annotated=0", "?annotated=1&quality=30"}) {
    SCOPED_TRACE(query);
    auto r = client().Get(std::string("/v1/cameras/lobby/latest.jpg") + query);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "image/jpeg");
    const cv::Mat img = decode(r->body);
    EXPECT_EQ(img.cols, kVtestWidth);
    EXPECT_EQ(img.rows, kVtestHeight);
  }
  for (const char* query : {"?quality=0", "?quality=101", "?annotated=maybe"}) {
    auto r = client().Get(std::string("/v1/cameras/lobby/latest.jpg") + query);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << query;
    EXPECT_THAT(body_json(r)["error"].get<std::string>(),
                HasSubstr(std::string(query).substr(1, std::string(query).find('=') - 1)));
  }
}

TEST_F(ServeCameras, MjpegStreamYieldsDecodableFrames) {
  std::string body, content_type;
  auto c = client();
  auto r = c.Get(
      "/v1/cameras/lobby/stream.mjpeg?fps=10", httplib::Headers{},
      [&](const httplib::Response& res) {
        content_type = res.get_header_value("Content-Type");
        return res.status == 200;
      },
      [&](const char* data, size_t n) {
        body.append(data, n);
        return mjpeg_parts(body).size() < 3;  // enough: hang up
      });
  EXPECT_EQ(content_type, "multipart/x-mixed-replace; boundary=frame");
  const auto parts = mjpeg_parts(body);
  ASSERT_GE(parts.size(), 3u) << body.substr(0, 200);
  for (const auto& jpeg : parts) {
    const cv::Mat img = decode(jpeg);
    EXPECT_EQ(img.cols, kVtestWidth);
    EXPECT_EQ(img.rows, kVtestHeight);
  }
  auto bad = client().Get("/v1/cameras/lobby/stream.mjpeg?fps=31");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("fps"));
}

TEST_F(ServeCameras, EventsAreSearchableOverHttpAndFromTheCommandLine) {
  wait_for_an_event();
  const json page = events("?camera=lobby");
  ASSERT_GE(page["total"].get<int>(), 1) << page.dump();
  std::set<std::string> api_ids;
  for (const auto& e : page["events"]) {
    api_ids.insert(e["id"].get<std::string>());
    EXPECT_EQ(e["camera"], "lobby");
    EXPECT_EQ(e["label"], "scene");
    EXPECT_EQ(e["zones"], json::array({"floor"}));
    EXPECT_EQ(e["start"].get<std::string>().back(), 'Z') << e["start"];
    EXPECT_EQ(e["data"]["event"]["id"], e["id"]) << "data is the watcher's record";
    EXPECT_TRUE(e.contains("end") && e.contains("end_reason") && e.contains("track_id") &&
                e.contains("top_score") && e.contains("model"))
        << e.dump();
  }
  // The command line reads the same store (later, so it has at least these events).
  const auto cli = vigil::testing::run_vigil("events list --camera lobby --json", *dir_ / "srv" / "ws");
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  std::set<std::string> cli_ids;
  const json cli_page = json::parse(cli.out);
  for (const auto& e : cli_page["events"]) cli_ids.insert(e["id"].get<std::string>());
  for (const auto& id : api_ids) EXPECT_TRUE(cli_ids.count(id)) << id << " missing from " << cli.out;
  const auto table = vigil::testing::run_vigil("events list", *dir_ / "srv" / "ws");
  EXPECT_THAT(table.out, HasSubstr(*api_ids.begin()));

  EXPECT_EQ(events("?camera=unknown")["total"], 0);
  EXPECT_EQ(events("?zone=nowhere")["total"], 0);
  EXPECT_GE(events("?zone=floor&label=scene")["total"].get<int>(), 1);
  EXPECT_EQ(events("?since=4102444800000")["total"], 0) << "nothing starts in 2100";
  EXPECT_GE(events("?since=2020-01-01T00:00:00Z&limit=1")["events"].size(), 1u);
  for (const char* bad : {"?since=yesterday", "?until=2026-13-01", "?ended=maybe", "?limit=0"}) {
    auto r = client().Get(std::string("/v1/events") + bad);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad;
    const std::string param = std::string(bad).substr(1, std::string(bad).find('=') - 1);
    EXPECT_THAT(body_json(r)["error"].get<std::string>(), HasSubstr(param + ":"));
  }

  const std::string id = *api_ids.begin();
  const json one = body_json(client().Get("/v1/events/" + id));
  EXPECT_EQ(one["id"], id);
  ASSERT_TRUE(one["has_snapshot"].get<bool>()) << one.dump();
  auto snap = client().Get(one["snapshot_url"].get<std::string>());
  ASSERT_TRUE(snap);
  ASSERT_EQ(snap->status, 200);
  EXPECT_EQ(decode(snap->body).cols, kVtestWidth);
  const auto shown = vigil::testing::run_vigil(
      fmt::format("events show '{}' --snapshot '{}'", id, (*dir_ / "snap.jpg").string()),
      *dir_ / "srv" / "ws");
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("lobby"));
  EXPECT_EQ(cv::imread((*dir_ / "snap.jpg").string()).rows, kVtestHeight);

  auto missing = client().Get("/v1/events/no-such-event");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_THAT(missing->body, HasSubstr("no-such-event"));
  auto missing_snap = client().Get("/v1/events/no-such-event/snapshot.jpg");
  ASSERT_TRUE(missing_snap);
  EXPECT_EQ(missing_snap->status, 404);
  const auto cli_missing = vigil::testing::run_vigil("events show no-such-event", *dir_ / "srv" / "ws");
  EXPECT_NE(cli_missing.exit_code, 0);
  EXPECT_THAT(cli_missing.err, HasSubstr("no-such-event"));
  const auto cli_bad = vigil::testing::run_vigil("events list --since yesterday", *dir_ / "srv" / "ws");
  EXPECT_EQ(cli_bad.exit_code, 2) << cli_bad.err;
  EXPECT_THAT(cli_bad.err, HasSubstr("--since"));
}

TEST_F(ServeCameras, EventStreamDeliversTheStartRecord) {
  wait_for_an_event();
  // Last-Event-ID 0 replays the records still in the server's history: the start record came before this
  // client connected.
  std::string body;
  auto c = client();
  auto r = c.Get(
      "/v1/events/stream", httplib::Headers{{"Last-Event-ID", "0"}},
      [&](const httplib::Response& res) {
        EXPECT_EQ(res.get_header_value("Content-Type"), "text/event-stream");
        return res.status == 200;
      },
      [&](const char* data, size_t n) {
        body.append(data, n);
        const size_t at = body.find("event: start\n");
        return at == std::string::npos || body.find("\n\n", at) == std::string::npos;
      });
  const size_t at = body.find("event: start\ndata: ");
  ASSERT_NE(at, std::string::npos) << body;
  const size_t data_at = at + std::string("event: start\ndata: ").size();
  const json start = json::parse(body.substr(data_at, body.find('\n', data_at) - data_at));
  EXPECT_EQ(start["camera"], "lobby");
  EXPECT_EQ(start["label"], "scene");
  EXPECT_TRUE(start["end"].is_null());
  EXPECT_EQ(body_json(client().Get("/v1/events/" + start["id"].get<std::string>()))["id"], start["id"]);
  EXPECT_THAT(body, HasSubstr("id: 1\n"));
}

TEST_F(ServeCameras, MetricsHaveEveryCameraFamily) {
  ASSERT_TRUE(eventually([] { return camera().value("detected", 0) >= 1; })) << server_->log();
  auto r = client().Get("/metrics");
  ASSERT_TRUE(r);
  const std::string& text = r->body;
  for (const char* family :
       {"vigil_camera_fps_in", "vigil_camera_fps_detect", "vigil_camera_frames_total",
        "vigil_camera_detected_total", "vigil_camera_dropped_total", "vigil_camera_reconnects_total",
        "vigil_camera_stalls_total", "vigil_camera_events_total"})
    EXPECT_THAT(text, HasSubstr(std::string(family) + "{camera=\"lobby\"} ")) << family;
  EXPECT_THAT(text, HasSubstr("vigil_camera_up{camera=\"lobby\"} 1"));
  EXPECT_THAT(text, HasSubstr("vigil_camera_latency_seconds{camera=\"lobby\",quantile=\"0.95\"} "));
  if (vigil::testing::run_shell("command -v promtool").first != 0) {
    std::cout << "promtool missing: format check skipped\n";
  } else {
    TempDir t;
    vigil::testing::write_text(t / "m.txt", text);
    const auto [rc, out] =
        vigil::testing::run_shell(fmt::format("promtool check metrics < '{}'", (t / "m.txt").string()));
    EXPECT_EQ(rc, 0) << out;
  }
}

/// Runs last: it stops the server.
TEST_F(ServeCameras, StreamsAreBoundedAndSigtermEndsTheServerWithStreamsOpen) {
  wait_for_an_event();
  // Two clients hold the server's two stream slots until the server closes their connections. A slot of an
  // earlier test's client that hung up is given back at that stream's next write (a record or heartbeat), so
  // a 503 here is retried.
  std::atomic<bool> mjpeg_open{false}, sse_open{false}, give_up{false};
  auto hold = [&](const std::string& path, std::atomic<bool>& open) {
    return std::thread([&, path] {
      while (!give_up && !open) {
        int status = 0;
        auto c = client();
        c.Get(
            path, httplib::Headers{},
            [&](const httplib::Response& res) {
              status = res.status;
              return res.status == 200;
            },
            [&](const char*, size_t) {
              open = true;
              return true;
            });
        if (status != 503) return;  // served until the server stopped, or the server is gone
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
  };
  std::thread mjpeg = hold("/v1/cameras/lobby/stream.mjpeg", mjpeg_open);
  std::thread sse = hold("/v1/events/stream", sse_open);
  const bool both_open = eventually([&] { return mjpeg_open && sse_open; });
  give_up = true;
  EXPECT_TRUE(both_open);
  if (both_open) {
    auto third = client().Get("/v1/cameras/lobby/stream.mjpeg");
    ASSERT_TRUE(third);
    EXPECT_EQ(third->status, 503);
    EXPECT_THAT(third->body, HasSubstr("max_streams"));
    EXPECT_EQ(client().Get("/v1/cameras")->status, 200) << "streams never take the ordinary threads";
  }
  server_->signal(SIGTERM);
  EXPECT_EQ(server_->wait_exit(60), 0) << server_->log();
  mjpeg.join();
  sse.join();
  EXPECT_THAT(server_->log(), HasSubstr("vigil serve: stopped"));
  // Stopping ended the open event in the store.
  const auto ended = vigil::testing::run_vigil("events list --ended --json", *dir_ / "srv" / "ws");
  ASSERT_EQ(ended.exit_code, 0) << ended.err;
  const json page = json::parse(ended.out);
  ASSERT_GE(page["total"].get<int>(), 1) << ended.out;
  EXPECT_EQ(page["events"][0]["end_reason"], "stopped");
  const auto open = vigil::testing::run_vigil("events list --open --json", *dir_ / "srv" / "ws");
  EXPECT_EQ(json::parse(open.out)["total"], 0) << open.out;
}

}  // namespace

namespace {

TEST(ServeCamerasConfig, WithoutCamerasTheLiveRoutesAnswerEmptyOr404) {
  TempDir tmp;
  ServerProcess ui("", tmp / "ui", "ui");
  ASSERT_TRUE(ui.running()) << ui.log();
  httplib::Client c("127.0.0.1", ui.port());
  c.set_read_timeout(60, 0);
  EXPECT_EQ(body_json(c.Get("/v1/cameras")), json::parse(R"({"cameras": [], "models": []})"));
  auto camera = c.Get("/v1/cameras/door/latest.jpg");
  ASSERT_TRUE(camera);
  EXPECT_EQ(camera->status, 404);
  EXPECT_THAT(camera->body, HasSubstr("'door'"));
  EXPECT_EQ(body_json(c.Get("/v1/events"))["total"], 0);
  // The event stream opens (and would only heartbeat).
  std::string body;
  c.Get(
      "/v1/events/stream", httplib::Headers{}, [](const httplib::Response&) { return true; },
      [&](const char* data, size_t n) {
        body.append(data, n);
        return body.find("\n\n") == std::string::npos;
      });
  EXPECT_THAT(body, HasSubstr(": vigil event stream\n"));
}

TEST(ServeCamerasConfig, BadCameraFilesExitNonZeroNamingTheCameraAndKey) {
  TempDir tmp;
  vigil::write_file_atomic(tmp / "zones.yaml", R"(cameras:
  door:
    source: door.mp4
    detect: {model: opencv:haarcascade_frontalface_default}
    zones: {step: {coordinates: [[0, 0], [10, 10]]}}
)");
  ServerProcess bad(fmt::format("--cameras '{}'", (tmp / "zones.yaml").string()), tmp / "bad");
  EXPECT_FALSE(bad.running());
  EXPECT_EQ(bad.exit_code(), 2) << bad.log();
  EXPECT_THAT(bad.log(), HasSubstr("cameras.door.zones.step.coordinates"));

  ServerProcess missing(fmt::format("--cameras '{}'", (tmp / "none.yaml").string()), tmp / "missing");
  EXPECT_FALSE(missing.running());
  EXPECT_NE(missing.exit_code(), 0);
  EXPECT_THAT(missing.log(), HasSubstr("none.yaml"));

  ServerProcess neither("", tmp / "neither");
  EXPECT_FALSE(neither.running());
  EXPECT_EQ(neither.exit_code(), 2) << neither.log();
  EXPECT_THAT(neither.log(), HasSubstr("--cameras"));
}

/// A recording with event clips: the classifier's frame-sized box starts an event in the first frames, the
/// file ends (the event ends as `stopped`), and the clip (pre_capture 1 s, so every one of the 40 frames) is
/// served at /v1/events/ID/clip.mp4, whole and by byte ranges.
TEST(ServeCameraClips, EventClipIsServedWholeAndByRangeOnceWritten) {
  TempDir dir;
  const fs::path video = dir / "short.avi";
  {
    cv::VideoWriter w(video.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10, {320, 240});
    for (int i = 0; i < 40; ++i) {
      cv::Mat frame(240, 320, CV_8UC3, cv::Scalar(60, 90, 120));
      cv::rectangle(frame, cv::Rect(10 + 6 * i, 80, 40, 60), cv::Scalar(30, 200, 30), cv::FILLED);
      w.write(frame);
    }
  }
  const fs::path model = vigil::testing::make_model_file(dir / "scene.vgm", "mask_small_cnn", {"scene"}, 5);
  vigil::write_file_atomic(dir / "cameras.yaml", fmt::format(R"(cameras:
  yard:
    source: {{url: '{}', realtime: false}}
    detect: {{model: '{}', fps: 10}}
    alerts: {{stationary: {{seconds: 0}}}}
    clips: {{pre_capture: 1, post_capture: 1}}
)",
                                                             video.string(), model.string()));
  ServerProcess server(fmt::format("--cameras '{}'", (dir / "cameras.yaml").string()), dir / "srv");
  ASSERT_TRUE(server.running()) << server.log();
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(60, 0);
  json event;
  ASSERT_TRUE(eventually([&] {
    const json page = body_json(c.Get("/v1/events"));
    if (page.value("total", 0) < 1) return false;
    event = page["events"][0];
    return event.value("has_clip", false);
  })) << server.log();
  const std::string id = event["id"];
  EXPECT_EQ(event["end_reason"], "stopped");
  EXPECT_EQ(event["clip_url"], "/v1/events/" + id + "/clip.mp4");

  auto whole = c.Get("/v1/events/" + id + "/clip.mp4");
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200) << whole->body;
  EXPECT_EQ(whole->get_header_value("Content-Type"), "video/mp4");
  EXPECT_EQ(whole->body, vigil::read_file(event["clip"].get<std::string>()));
  vigil::write_file_atomic(dir / "got.mp4", whole->body);
  cv::VideoCapture cap((dir / "got.mp4").string());
  ASSERT_TRUE(cap.isOpened());
  int frames = 0;
  for (cv::Mat f; cap.read(f);) ++frames;
  EXPECT_EQ(frames, 40) << "the event starts in the first frames: pre_capture reaches back to frame 0, and "
                           "the file's end ends it";

  auto part = c.Get("/v1/events/" + id + "/clip.mp4", {{"Range", "bytes=4-103"}});
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, whole->body.substr(4, 100));

  auto missing = c.Get("/v1/events/no-such-event/clip.mp4");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_THAT(missing->body, HasSubstr("no-such-event"));
}

}  // namespace
