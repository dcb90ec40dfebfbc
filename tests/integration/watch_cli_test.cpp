// Drives the real `vigil watch` binary: a real face moving through a video file found by OpenCV's cascade,
// with events on stdout, in JSON lines, in the workspace store, as snapshots and as signed POSTs to a real
// loopback HTTP receiver, plus the annotated video; SIGTERM in the middle of a looping file ending the open
// event as `stopped`; a vigil SSDlite watching two cameras of OpenCV's vtest.avi in shared batches while a
// third camera's file is missing; and bad camera configs exiting non-zero with the camera named.

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <set>
#include <thread>

#include "tests_util.h"
#include "unit/video/watch_test_util.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/store/events.h"
#include "vigil/video/event_sinks.h"

namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;
using vigil::testing::run_vigil;
using vigil::testing::TempDir;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kFaceCascade = "opencv:haarcascade_frontalface_default";

std::string q(const fs::path& p) {
  return "'" + p.string() + "'";
}

std::vector<json> read_jsonl(const fs::path& file) {
  std::vector<json> out;
  if (!fs::exists(file)) return out;
  for (const auto& line : vigil::split(vigil::read_file(file), '\n'))
    if (!vigil::trim(line).empty()) out.push_back(json::parse(line));
  return out;
}

bool have_face_inputs() {
  return fs::exists("/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml") &&
         vigil::testing::face_patch().has_value();
}

class WatchCli : public ::testing::Test {
 protected:
  TempDir tmp;
  fs::path ws = tmp / "ws";

  vigil::testing::CommandResult vigil(const std::string& args) { return run_vigil(args, ws); }

  fs::path face_video(int frames = 40) {
    const fs::path file = tmp / "face.avi";
    vigil::testing::write_moving_patch_video(file, *vigil::testing::face_patch(), frames, 20, {480, 300});
    return file;
  }
};

TEST_F(WatchCli, FaceCascadeOnAFileWritesEventsEverywhere) {
  if (!have_face_inputs()) GTEST_SKIP() << "opencv-data cascades or opencv-doc samples absent; skipping";
  const fs::path video = face_video();
  vigil::testing::WebhookReceiver receiver;
  auto r =
      vigil(fmt::format("watch {} --model {} --fps 10 --no-realtime --jsonl {} --detections {} --annotate {} "
                        "--webhook {} "
                        "--webhook-secret s3 "
                        "--stats-json {}",
                        q(video), kFaceCascade, q(tmp / "ev.jsonl"), q(tmp / "det.jsonl"), q(tmp / "out.avi"),
                        receiver.url(), q(tmp / "stats.json")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("every source ended"));
  EXPECT_THAT(r.out, HasSubstr("start  face face #"));
  EXPECT_THAT(r.out, HasSubstr("end    face face #"));

  const auto records = read_jsonl(tmp / "ev.jsonl");
  ASSERT_GE(records.size(), 2u);
  EXPECT_EQ(records.front()["type"], "start");
  const json& end = records.back()["event"];
  EXPECT_EQ(records.back()["type"], "end");
  EXPECT_EQ(end["camera"], "face");
  const std::string snapshot = end["snapshot"];
  EXPECT_TRUE(vigil::starts_with(snapshot, fs::absolute(ws / "snapshots").string())) << snapshot;
  EXPECT_FALSE(cv::imread(snapshot).empty());

  // The store holds the same events as the JSON lines, each ended.
  std::set<std::string> ids;
  for (const auto& rec : records) ids.insert(rec["event"]["id"].get<std::string>());
  vigil::store::EventLog log{vigil::Workspace(ws)};
  const auto page = log.search({});
  ASSERT_EQ(page.total, static_cast<int64_t>(ids.size())) << vigil::read_file(tmp / "ev.jsonl");
  for (const auto& e : page.events) {
    EXPECT_TRUE(ids.count(e.id)) << e.id;
    EXPECT_EQ(e.label, "face");
    EXPECT_FALSE(e.end_reason.empty());
  }
  EXPECT_EQ(log.get(end["id"]).end_reason, "stopped");

  const auto stats = json::parse(vigil::read_file(tmp / "stats.json"));
  const int64_t detected = stats["cameras"][0]["detected"];
  EXPECT_EQ(detected, 20)
      << "--no-realtime: every second frame of the 40 at 20 fps, whatever the machine's load";
  EXPECT_EQ(stats["cameras"][0]["dropped"], 0);
  EXPECT_EQ(read_jsonl(tmp / "det.jsonl").size(), static_cast<size_t>(detected));
  cv::VideoCapture annotated((tmp / "out.avi").string());
  ASSERT_TRUE(annotated.isOpened());
  EXPECT_EQ(static_cast<int64_t>(annotated.get(cv::CAP_PROP_FRAME_COUNT)), 40)
      << "the annotated video has every frame of the file, the 20 detected and the 20 between them";
  EXPECT_EQ(annotated.get(cv::CAP_PROP_FPS), 20) << "at the file's rate";

  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), records.size());
  for (const auto& req : requests)
    EXPECT_EQ(req.signature, "sha256=" + vigil::video::hmac_sha256_hex("s3", req.body));
}

TEST_F(WatchCli, SigtermEndsOpenEventsAsStopped) {
  if (!have_face_inputs()) GTEST_SKIP() << "opencv-data cascades or opencv-doc samples absent; skipping";
  const fs::path video = face_video();
  const fs::path events = tmp / "ev.jsonl", err = tmp / "err.txt";
  const std::string cmd = fmt::format(
      "exec '{}' --workspace {} watch {} --loop --model {} --fps 10 --jsonl {} --no-store > /dev/null 2> {}",
      VIGIL_BINARY, q(ws), q(video), kFaceCascade, q(events), q(err));
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(90);
  while (Clock::now() < deadline && read_jsonl(events).empty())
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_FALSE(read_jsonl(events).empty()) << vigil::read_file(err);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << vigil::read_file(err);
  EXPECT_EQ(WEXITSTATUS(status), 0) << vigil::read_file(err);
  EXPECT_THAT(vigil::read_file(err), HasSubstr("stopped by a signal"));
  const auto records = read_jsonl(events);
  ASSERT_GE(records.size(), 2u);
  EXPECT_EQ(records.back()["type"], "end");
  EXPECT_EQ(records.back()["event"]["end_reason"], "stopped");
}

TEST_F(WatchCli, VigilDetectorBatchesTwoCamerasWhileAMissingOneIsReported) {
  const fs::path vtest = vigil::testing::kOpenCvSamples / "vtest.avi";
  if (!fs::exists(vtest)) GTEST_SKIP() << "opencv-doc's vtest.avi absent; skipping";
  const fs::path model = vigil::testing::make_model_file(tmp / "ssd.vgm", "ssdlite320_mobilenet_v3_large",
                                                         {"person", "car"}, 11);
  vigil::write_file_atomic(tmp / "cameras.yaml",
                           fmt::format(R"(cameras:
  left:
    source: {{url: {0}, loop: true}}
    detect: {{model: {1}, fps: 4}}
  right:
    source: {{url: {0}, loop: true}}
    detect: {{model: {1}, fps: 4}}
  broken:
    source: {2}
    detect: {{model: {1}, fps: 4}}
)",
                                       vtest.string(), model.string(), (tmp / "nowhere.mp4").string()));
  auto r = vigil(fmt::format("watch --config {} --frames 6 --no-store --stats-json {}",
                             q(tmp / "cameras.yaml"), q(tmp / "stats.json")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("camera 'broken'"));
  EXPECT_THAT(r.err, HasSubstr("nowhere.mp4"));
  const auto stats = json::parse(vigil::read_file(tmp / "stats.json"));
  ASSERT_EQ(stats["models"].size(), 1u);
  EXPECT_EQ(stats["models"][0]["max_batch"], 2);
  EXPECT_EQ(stats["models"][0]["forward_passes"], stats["models"][0]["batches"]);
  for (const auto& c : stats["cameras"]) {
    if (c["name"] == "broken") {
      EXPECT_EQ(c["state"], "failed");
      EXPECT_EQ(c["detected"], 0);
    } else {
      EXPECT_GE(c["detected"].get<int>(), 6) << c.dump();
      EXPECT_EQ(c["width"], 768);
    }
  }
}

TEST_F(WatchCli, BadInputExitsNonZeroNamingTheCamera) {
  vigil::write_file_atomic(tmp / "zones.yaml", R"(cameras:
  door:
    source: door.mp4
    detect: {model: opencv:haarcascade_frontalface_default}
    zones: {step: {coordinates: [[0, 0], [10, 10]]}}
)");
  auto r = vigil("watch --config " + q(tmp / "zones.yaml"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cameras.door.zones.step.coordinates"));

  vigil::write_file_atomic(tmp / "model.yaml", R"(cameras:
  door:
    source: door.mp4
    detect: {model: opencv:no_such_cascade}
)");
  r = vigil("watch --config " + q(tmp / "model.yaml"));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cameras.door.detect.model"));

  r = vigil("watch " + q(tmp / "nothing.mp4") + " --model " + kFaceCascade);
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("camera 'nothing'"));

  r = vigil("watch " + q(tmp / "nothing.mp4"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--model"));
}

}  // namespace
