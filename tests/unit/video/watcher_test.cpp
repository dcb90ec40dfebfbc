// The watcher end to end on real video through OpenCV's FFmpeg back-end: a real face (OpenCV's messi5.jpg
// sample) moving across a background, found by OpenCV's Haar cascade, tracked as one object, raising one
// event with a snapshot, a JSON lines record, a store row and a signed webhook POST to a real loopback HTTP
// server; cameras of different sizes sharing one forward pass of a vigil SSDlite; a cascade classifying every
// face crop; a missing camera reported by name while another keeps detecting; a model slower than its
// camera taking the newest frame instead of queueing; config errors naming camera and key.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "tests_util.h"
#include "unit/video/watch_test_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/model/clip_predict.h"
#include "vigil/model/model_file.h"
#include "vigil/nn/classification/clip_classifier.h"
#include "vigil/nn/zoo.h"
#include "vigil/store/events.h"
#include "vigil/video/watcher.h"

namespace vigil::video {
namespace {

using ::testing::HasSubstr;
using vigil::testing::TempDir;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char* kFaceCascade = "opencv:haarcascade_frontalface_default";

template <class P>
bool eventually(P pred, double seconds) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

CameraConfig camera(const std::string& name, const std::string& url, const std::string& model, double fps) {
  CameraConfig c;
  c.name = name;
  c.source.name = name;
  c.source.url = url;
  c.detect.model = model;
  c.detect.fps = fps;
  c.rules.name = name;
  return c;
}

std::vector<json> read_jsonl(const fs::path& file) {
  std::vector<json> out;
  for (const auto& line : split(read_file(file), '\n'))
    if (!trim(line).empty()) out.push_back(json::parse(line));
  return out;
}

/// Results the frame observer saw, by camera (the observer runs on detection threads).
struct Observed {
  std::mutex mu;
  std::vector<FrameResult> frames;
  void add(const FrameResult& r) {
    std::lock_guard lock(mu);
    frames.push_back(r);
  }
  std::vector<FrameResult> of(const std::string& camera) {
    std::lock_guard lock(mu);
    std::vector<FrameResult> out;
    for (const auto& f : frames)
      if (f.camera == camera) out.push_back(f);
    return out;
  }
};

bool have_cascades() {
  return fs::exists("/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml");
}

class WatcherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    vigil::testing::make_model_file(dir_->path() / "ssdlite.vgm", "ssdlite320_mobilenet_v3_large",
                                    {"thing", "other"}, 7);
    vigil::testing::make_model_file(dir_->path() / "masks.vgm", "mask_small_cnn",
                                    {"with_mask", "without_mask"}, 3);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string ssdlite() { return (dir_->path() / "ssdlite.vgm").string(); }
  static std::string masks() { return (dir_->path() / "masks.vgm").string(); }

  /// A 2 s clip (40 frames at 20 fps, 480x300) of the face moving left to right; its face boxes in `truth`.
  fs::path face_video(std::vector<cv::Rect>* truth = nullptr) {
    auto patch = vigil::testing::face_patch();
    if (!patch) return {};
    const fs::path file = tmp_ / "face.avi";
    std::vector<cv::Rect> positions;
    vigil::testing::write_moving_patch_video(file, *patch, 40, 20, {480, 300}, &positions);
    // Inside the patch the face is at about (46, 41), 70 px wide (watch_test_util.h).
    if (truth)
      for (const auto& p : positions) truth->push_back({p.x + 46, p.y + 41, 70, 70});
    return file;
  }

  static TempDir* dir_;
  TempDir tmp_;
};

TempDir* WatcherTest::dir_ = nullptr;

double iou(const Box& b, const cv::Rect& r) {
  return video::iou(b, Box{static_cast<float>(r.x), static_cast<float>(r.y),
                           static_cast<float>(r.x + r.width), static_cast<float>(r.y + r.height)});
}

TEST_F(WatcherTest, OneMovingFaceIsOneTrackWithOneEventSnapshotStoreRowAndSignedWebhook) {
  if (!have_cascades()) GTEST_SKIP() << "opencv-data's cascades absent; skipping";
  std::vector<cv::Rect> truth;
  const fs::path video = face_video(&truth);
  if (video.empty()) GTEST_SKIP() << "opencv-doc's messi5.jpg absent; skipping";
  vigil::testing::WebhookReceiver receiver;
  WatchConfig config;
  config.cameras.push_back(camera("door", video.string(), kFaceCascade, 10));
  config.workspace = (tmp_ / "ws").string();
  config.outputs.jsonl = (tmp_ / "events.jsonl").string();
  config.outputs.snapshots = (tmp_ / "snaps").string();
  WebhookConfig hook;
  hook.url = receiver.url();
  hook.secret = "s3cret";
  config.outputs.webhooks.push_back(hook);
  Observed observed;
  Watcher watcher(config);
  watcher.set_frame_observer([&](const FrameResult& r) { observed.add(r); });
  watcher.start();
  ASSERT_TRUE(eventually([&] { return watcher.done(); }, 60));
  watcher.stop();

  // Detection: the cascade finds the face where it is in nearly every detected frame.
  const auto frames = observed.of("door");
  ASSERT_GE(frames.size(), 10u);
  size_t found = 0;
  std::set<int64_t> ids;
  for (const auto& f : frames) {
    ASSERT_LT(f.frame, static_cast<int64_t>(truth.size()));
    for (const auto& o : f.objects) found += iou(o.detection.box, truth[f.frame]) >= 0.5;
    for (const auto& t : f.tracks)
      if (t.state == TrackState::kConfirmed) ids.insert(t.id);
  }
  EXPECT_GE(found, frames.size() * 9 / 10)
      << "face found in " << found << " of " << frames.size() << " frames";
  EXPECT_EQ(ids.size(), 1u) << "one moving object must keep one track id";

  // One event, from start to the end of the file.
  const auto records = read_jsonl(tmp_ / "events.jsonl");
  ASSERT_GE(records.size(), 2u);
  EXPECT_EQ(records.front()["type"], "start");
  EXPECT_EQ(records.back()["type"], "end");
  std::set<std::string> event_ids;
  for (const auto& r : records) event_ids.insert(r["event"]["id"].get<std::string>());
  EXPECT_EQ(event_ids.size(), 1u);
  const json& end = records.back()["event"];
  EXPECT_EQ(end["label"], "face");
  EXPECT_EQ(end["camera"], "door");
  EXPECT_EQ(end["track_id"], *ids.begin());
  EXPECT_EQ(end["end_reason"], "stopped");  // the file ended: its camera stopped
  EXPECT_GE(end["boxes"].size(), 5u);

  // The snapshot is the frame with the box drawn.
  const std::string snapshot = end["snapshot"];
  const cv::Mat snap = cv::imread(snapshot);
  ASSERT_FALSE(snap.empty()) << snapshot;
  EXPECT_EQ(snap.cols, 480);
  EXPECT_EQ(snap.rows, 300);

  // The store has the event as ended, with the same snapshot.
  store::EventLog log{Workspace(tmp_ / "ws")};
  const auto page = log.search({});
  ASSERT_EQ(page.total, 1);
  EXPECT_EQ(page.events[0].id, end["id"]);
  EXPECT_EQ(page.events[0].end_reason, "stopped");
  EXPECT_EQ(page.events[0].snapshot, snapshot);
  EXPECT_GT(page.events[0].end_ms, page.events[0].start_ms);

  // The webhook got every record, each signed over its exact body.
  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), records.size());
  for (const auto& req : requests) {
    EXPECT_EQ(req.signature, "sha256=" + hmac_sha256_hex("s3cret", req.body));
    EXPECT_EQ(json::parse(req.body)["type"], req.event);
    EXPECT_EQ(req.path, "/hook");
  }
  EXPECT_EQ(json::parse(requests.front().body)["type"], "start");
  EXPECT_EQ(json::parse(requests.back().body)["type"], "end");
}

TEST_F(WatcherTest, CamerasOfDifferentSizesShareOneForwardPass) {
  const fs::path a = tmp_ / "a.avi", b = tmp_ / "b.avi";
  vigil::testing::write_shapes_video(a, 30, 10, {640, 480}, 1);
  vigil::testing::write_shapes_video(b, 30, 10, {320, 240}, 2);
  WatchConfig config;
  config.cameras.push_back(camera("a", a.string(), ssdlite(), 5));
  config.cameras.push_back(camera("b", b.string(), ssdlite(), 5));
  for (auto& c : config.cameras) c.source.loop = true;
  config.outputs.store = false;
  Observed observed;
  Watcher watcher(config);
  watcher.set_frame_observer([&](const FrameResult& r) { observed.add(r); });
  watcher.start();
  ASSERT_TRUE(eventually(
      [&] {
        const auto s = watcher.camera_stats();
        return s[0].detected >= 8 && s[1].detected >= 8;
      },
      90));
  watcher.stop();

  const auto groups = watcher.model_stats();
  ASSERT_EQ(groups.size(), 1u) << "two cameras with one model are one group";
  const DetectorStats& d = groups[0].detect;
  EXPECT_EQ(d.max_batch, 2);
  EXPECT_EQ(d.forward_passes, d.batches) << "frames of 640x480 and 320x240 must share each forward pass";
  // At most the first turns run alone (one camera's first frame may come a moment later).
  EXPECT_GE(d.frames, 2 * d.batches - 2) << d.frames << " frames in " << d.batches << " batches";
  size_t paired = 0;
  const auto frames_a = observed.of("a");
  for (const auto& f : frames_a) paired += f.batch_size == 2;
  EXPECT_GE(paired + 2, frames_a.size());
  EXPECT_EQ(frames_a.front().width, 640);  // boxes and sizes stay in each camera's own pixels
  EXPECT_EQ(observed.of("b").front().width, 320);
}

TEST_F(WatcherTest, CascadeClassifiesEveryFaceCropAndKeepsOneTrack) {
  if (!have_cascades()) GTEST_SKIP() << "opencv-data's cascades absent; skipping";
  const fs::path video = face_video();
  if (video.empty()) GTEST_SKIP() << "opencv-doc's messi5.jpg absent; skipping";
  WatchConfig config;
  auto c = camera("lobby", video.string(), kFaceCascade, 10);
  c.classify.model = masks();
  c.tracker.class_aware = false;
  // Fresh classifier weights are unsure (p ~ 0.5), and a box's score is detector score x class probability:
  // let such boxes start tracks.
  c.tracker.high_threshold = 0.3;
  c.tracker.new_track_threshold = 0.3;
  // Processed as a recording: every second frame of the 20 fps file at detect.fps 10, on any machine.
  c.source.realtime = false;
  config.cameras.push_back(c);
  config.outputs.store = false;
  Observed observed;
  Watcher watcher(config);
  watcher.set_frame_observer([&](const FrameResult& r) { observed.add(r); });
  watcher.start();
  ASSERT_TRUE(eventually([&] { return watcher.done(); }, 60));
  watcher.stop();

  size_t faces = 0;
  std::set<int64_t> ids;
  const auto frames = observed.of("lobby");
  for (const auto& f : frames) {
    for (const auto& o : f.objects) {
      ++faces;
      EXPECT_TRUE(o.classified);
      EXPECT_EQ(o.detector_label, "face");
      EXPECT_THAT(o.detection.label, ::testing::AnyOf("with_mask", "without_mask"));
      EXPECT_NEAR(o.detection.score, o.detector_score * o.class_score, 1e-6);
    }
    for (const auto& t : f.tracks)
      if (t.state == TrackState::kConfirmed) ids.insert(t.id);
  }
  ASSERT_EQ(frames.size(), 20u) << "40 frames at 20 fps sampled at 10 per second";
  for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(frames[i].frame, static_cast<int64_t>(2 * i));
  EXPECT_EQ(watcher.camera_stats("lobby").dropped, 0) << "a recording never replaces a frame";
  EXPECT_GE(faces, frames.size() * 9 / 10);
  EXPECT_EQ(ids.size(), 1u);
  const auto groups = watcher.model_stats();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].classify.frames, static_cast<int64_t>(faces)) << "every face crop classified once";
  EXPECT_EQ(groups[0].classify.batches, groups[0].detect.batches)
      << "one classifier pass per detection batch";
}

TEST_F(WatcherTest, MissingCameraIsReportedByNameWhileTheOtherKeepsDetecting) {
  const fs::path live = tmp_ / "live.avi";
  vigil::testing::write_shapes_video(live, 20, 10, {320, 240});
  WatchConfig config;
  config.cameras.push_back(camera("ghost", (tmp_ / "gone" / "nothing.mp4").string(), ssdlite(), 5));
  config.cameras.push_back(camera("live", live.string(), ssdlite(), 5));
  config.cameras[1].source.loop = true;
  config.outputs.store = false;
  Watcher watcher(config);
  watcher.start();
  ASSERT_TRUE(eventually([&] { return watcher.camera_stats("live").detected >= 6; }, 90));
  const CameraStats ghost = watcher.camera_stats("ghost");
  const CameraStats alive = watcher.camera_stats("live");
  watcher.stop();
  EXPECT_EQ(ghost.state, "failed");
  EXPECT_TRUE(ghost.finished);
  EXPECT_THAT(ghost.last_error, HasSubstr("camera 'ghost'"));
  EXPECT_THAT(ghost.last_error, HasSubstr("nothing.mp4"));
  EXPECT_EQ(ghost.detected, 0);
  EXPECT_EQ(alive.state, "running");
  EXPECT_FALSE(alive.finished);
  EXPECT_THROW(watcher.camera_stats("nobody"), NotFound);
}

TEST_F(WatcherTest, ModelSlowerThanItsCameraTakesTheNewestFrameAndCountsDrops) {
  if (!have_cascades()) GTEST_SKIP() << "opencv-data's cascades absent; skipping";
  // A cascade on a fine pyramid (scale step 1.01) over 960x720 frames is far slower than 25 fps.
  const fs::path file = tmp_ / "fast.avi";
  const int kFrames = 75;
  vigil::testing::write_shapes_video(file, kFrames, 25, {960, 720});
  WatchConfig config;
  auto c = camera("busy", file.string(), kFaceCascade, 25);
  c.detect.opencv.scale_factor = 1.01;
  c.detect.opencv.min_size = 20;
  config.cameras.push_back(c);
  config.outputs.store = false;
  Observed observed;
  Watcher watcher(config);
  watcher.set_frame_observer([&](const FrameResult& r) { observed.add(r); });
  watcher.start();
  ASSERT_TRUE(eventually([&] { return watcher.done(); }, 60));
  watcher.stop();
  const auto frames = observed.of("busy");
  const CameraStats s = watcher.camera_stats("busy");
  ASSERT_FALSE(frames.empty());
  EXPECT_LT(s.detected, kFrames / 2) << "the test needs a model slower than its camera";
  EXPECT_GT(s.dropped, 0);
  int64_t gaps = 0;
  for (size_t i = 1; i < frames.size(); ++i) {
    EXPECT_GT(frames[i].frame, frames[i - 1].frame);
    gaps += frames[i].frame - frames[i - 1].frame - 1;
  }
  EXPECT_GT(gaps, 0);
  // No backlog: when the file ends, the last frame detected is its very last one, not an old queued one.
  EXPECT_EQ(frames.back().frame, kFrames - 1);
}

TEST_F(WatcherTest, LatestFrameIsAnnotatedAndUnknownModelsNameTheCamera) {
  const fs::path live = tmp_ / "live.avi";
  vigil::testing::write_shapes_video(live, 20, 10, {320, 240});
  WatchConfig config;
  config.cameras.push_back(camera("yard", live.string(), "opencv:haarcascade_frontalfce_default", 5));
  config.outputs.store = false;
  try {
    Watcher w(config);
    FAIL() << "expected NotFound";
  } catch (const NotFound& e) {
    EXPECT_THAT(e.what(), HasSubstr("cameras.yard.detect.model"));
    if (have_cascades()) {
      EXPECT_THAT(e.what(), HasSubstr("did you mean opencv:haarcascade_frontalface_default"));
    }
  }
  config.cameras[0].detect.model = (tmp_ / "no-model.vgm").string();
  EXPECT_THROW(Watcher{config}, NotFound);
  config.cameras[0].detect.model = ssdlite();
  config.cameras[0].rules.objects.track = {"thingy"};
  try {
    Watcher w(config);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("cameras.yard.objects.track"));
    EXPECT_THAT(e.what(), HasSubstr("thing, other"));
  }
  config.cameras[0].rules.objects.track = {"thing"};
  config.cameras[0].rules.zones.push_back({"gate", {{10, 10}, {200, 10}, {200, 200}}, 1, 0, {}});
  Watcher watcher(config);
  EXPECT_FALSE(watcher.latest_frame("yard", true).has_value());
  watcher.start();
  ASSERT_TRUE(eventually([&] { return watcher.camera_stats("yard").detected >= 2; }, 60));
  const auto raw = watcher.latest_frame("yard", false);
  const auto drawn = watcher.latest_frame("yard", true);
  watcher.stop();
  ASSERT_TRUE(raw && drawn);
  EXPECT_EQ(drawn->size(), raw->size());
  EXPECT_GT(cv::norm(*raw, *drawn, cv::NORM_L1), 0) << "the zone outline is drawn";
}

/// Reads `file` and keeps the frames with these indices (source order), 8-bit BGR as the watcher decodes
/// them.
std::map<int64_t, cv::Mat> frames_at(const fs::path& file, const std::set<int64_t>& indices) {
  cv::VideoCapture cap(file.string());
  std::map<int64_t, cv::Mat> out;
  cv::Mat f;
  for (int64_t i = 0; cap.read(f); ++i)
    if (indices.count(i)) out[i] = f.clone();
  return out;
}

TEST_F(WatcherTest, ClipClassifierJudgesEachCamerasOwnLastFramesAsTheWholeWindowWould) {
  // A clip model (the mask seed's small CNN per frame + LSTM, windows of T = 4 frames) with seeded weights:
  // its verdicts mean nothing, but the watcher, which encodes every sampled frame once and keeps a window of
  // features per camera, must give each frame exactly the verdict ClipPredictor gives the window of that
  // camera's last 4 sampled frames — with two cameras' frames in every batch.
  constexpr int kT = 4;
  const fs::path model_file = tmp_ / "clip.vgm";
  {
    torch::manual_seed(11);
    model::ModelInfo info = model::default_model_info("clip_mask_small_cnn_lstm", {"normal", "accident"});
    info.preprocess.width = info.preprocess.height = 100;  // the small CNN's input
    info.clip_length = kT;
    nn::ModelArgs args;
    args.num_classes = 2;
    args.clip_length = kT;
    auto module = nn::make_model(info.arch, args);
    // Batch-norm statistics of real inputs: a fresh network's defaults make every frame look alike to it.
    module->train();
    {
      torch::NoGradGuard no_grad;
      auto& net = dynamic_cast<nn::ClipClassifierImpl&>(*module);
      for (int i = 0; i < 10; ++i) net.forward(torch::randn({2, kT, 3, 100, 100}));
    }
    module->eval();
    model::save_model(model_file, info, *module);
  }
  const fs::path a = tmp_ / "a.avi", b = tmp_ / "b.avi";
  vigil::testing::write_shapes_video(a, 24, 10, {320, 240}, 1);
  vigil::testing::write_shapes_video(b, 24, 10, {240, 180}, 4);
  WatchConfig config;
  for (const auto& [name, file] : {std::pair{"a", a}, std::pair{"b", b}}) {
    auto c = camera(name, file.string(), model_file.string(), 5);  // every other frame of the 10 fps files
    c.source.realtime = false;                                     // every sample, on any machine
    config.cameras.push_back(c);
  }
  config.outputs.store = false;

  // A clip model is a whole-frame judge, not a crop classifier: the classify stage refuses it by name.
  {
    WatchConfig wrong = config;
    wrong.cameras[0].detect.model = ssdlite();
    wrong.cameras[0].classify.model = model_file.string();
    try {
      Watcher w(wrong);
      FAIL() << "expected InvalidArgument";
    } catch (const InvalidArgument& e) {
      EXPECT_THAT(e.what(), HasSubstr("cameras.a.classify.model"));
      EXPECT_THAT(e.what(), HasSubstr("put it in detect.model"));
    }
  }

  Observed observed;
  Watcher watcher(config);
  watcher.set_frame_observer([&](const FrameResult& r) { observed.add(r); });
  watcher.start();
  ASSERT_TRUE(eventually([&] { return watcher.done(); }, 120));
  watcher.stop();
  const auto groups = watcher.model_stats();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_THAT(groups[0].detector, HasSubstr("clip classifier over 4 frames"));
  EXPECT_EQ(groups[0].detect.max_batch, 2) << "both cameras' frames share the CNN's pass";

  model::ClipPredictor reference(model::load_model(model_file), model::PredictOptions{});
  std::map<std::string, std::vector<float>> accident_scores;  // by camera, frame order: P(accident)
  for (const auto& [name, file] : {std::pair{"a", a}, std::pair{"b", b}}) {
    const auto results = observed.of(name);
    ASSERT_EQ(results.size(), 12u) << "camera " << name << ": every other frame of 24";
    std::set<int64_t> indices;
    for (const auto& r : results) indices.insert(r.frame);
    const auto frames = frames_at(file, indices);
    for (size_t k = 0; k < results.size(); ++k) {
      const FrameResult& r = results[k];
      ASSERT_EQ(r.frame, static_cast<int64_t>(2 * k)) << "camera " << name;
      if (k + 1 < static_cast<size_t>(kT)) {
        EXPECT_TRUE(r.objects.empty())
            << "camera " << name << " frame " << r.frame << ": window still filling";
        continue;
      }
      std::vector<torch::Tensor> window;
      for (size_t j = k + 1 - kT; j <= k; ++j)
        window.push_back(reference.preprocess(frames.at(results[j].frame)));
      const auto want = reference.predict(torch::stack(window).unsqueeze(0)).at(0);
      ASSERT_EQ(r.objects.size(), 1u) << "camera " << name << " frame " << r.frame;
      const Detection& got = r.objects[0].detection;
      EXPECT_EQ(got.label, want.label) << "camera " << name << " frame " << r.frame;
      EXPECT_NEAR(got.score, want.score, 1e-4) << "camera " << name << " frame " << r.frame;
      EXPECT_EQ(got.box.x2, r.width);
      EXPECT_EQ(got.box.y2, r.height);
      accident_scores[name].push_back(want.probs.at(1));
    }
  }
  // The test can tell the cameras apart: their windows' verdicts differ by much more than the tolerance.
  float largest = 0;
  for (size_t k = 0; k < accident_scores["a"].size(); ++k)
    largest = std::max(largest, std::abs(accident_scores["a"][k] - accident_scores["b"][k]));
  EXPECT_GT(largest, 1e-3) << "the two videos should look different to the model: "
                           << ::testing::PrintToString(accident_scores["a"]) << " "
                           << ::testing::PrintToString(accident_scores["b"]);
}

// ---- config
// ------------------------------------------------------------------------------------------------

std::string config_error(const std::string& yaml) {
  try {
    parse_watch_config(YAML::Load(yaml));
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "no error";
}

/// 120 frames at 20 fps (480x300): background for frames 0..29, the face moving across for 30..69, then
/// background again. Frame i has a white bar at x = 5 + 3i along its bottom rows, so a frame read back from
/// a clip tells which source frame it was.
fs::path write_face_episode(const fs::path& file) {
  const auto patch = vigil::testing::face_patch();
  if (!patch) return {};
  const cv::Size size(480, 300);
  cv::VideoWriter w(file.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 20, size);
  const cv::Mat bg = vigil::testing::background(size, 0);
  for (int i = 0; i < 120; ++i) {
    cv::Mat frame = bg.clone();
    if (i >= 30 && i < 70) patch->copyTo(frame(cv::Rect(10 + 5 * (i - 30), 60, patch->cols, patch->rows)));
    cv::rectangle(frame, cv::Rect(5 + 3 * i - 1, 285, 3, 15), cv::Scalar(255, 255, 255), cv::FILLED);
    w.write(frame);
  }
  return file;
}

/// The source frame a frame of write_face_episode() was: where its bottom bar is.
int bar_index(const cv::Mat& frame) {
  cv::Mat grey;
  cv::cvtColor(frame(cv::Rect(0, 288, frame.cols, 10)), grey, cv::COLOR_BGR2GRAY);
  cv::Mat column_sums;
  cv::reduce(grey, column_sums, 0, cv::REDUCE_SUM, CV_32S);
  cv::Point best;
  cv::minMaxLoc(column_sums, nullptr, nullptr, nullptr, &best);
  return static_cast<int>(std::lround((best.x - 5) / 3.0));
}

std::vector<cv::Mat> read_frames(const fs::path& file) {
  cv::VideoCapture cap(file.string());
  std::vector<cv::Mat> frames;
  cv::Mat f;
  while (cap.read(f)) frames.push_back(f.clone());
  return frames;
}

TEST_F(WatcherTest, EventClipCoversPreCaptureEventAndPostCaptureAndTheAnnotatedVideoEveryFrame) {
  if (!have_cascades()) GTEST_SKIP() << "opencv-data's cascades absent; skipping";
  const fs::path video = write_face_episode(tmp_ / "episode.avi");
  if (video.empty()) GTEST_SKIP() << "opencv-doc's messi5.jpg absent; skipping";
  WatchConfig config;
  auto c = camera("door", video.string(), kFaceCascade, 10);
  c.source.realtime = false;  // every frame, the same on any machine
  c.tracker.max_lost = 4;     // the track (and its event) ends 4 detections after the face leaves
  c.clips.enabled = true;
  c.clips.pre_capture = 1;  // 20 frames of the 20 fps file
  c.clips.post_capture = 1;
  c.clips.dir = (tmp_ / "clips").string();
  c.annotate.video = (tmp_ / "annotated.avi").string();
  config.cameras.push_back(c);
  config.workspace = (tmp_ / "ws").string();
  config.outputs.jsonl = (tmp_ / "events.jsonl").string();
  Watcher watcher(config);
  watcher.start();
  ASSERT_TRUE(eventually([&] { return watcher.done(); }, 120));
  watcher.stop();

  const auto records = read_jsonl(tmp_ / "events.jsonl");
  ASSERT_GE(records.size(), 2u);
  const json& end = records.back()["event"];
  ASSERT_EQ(records.back()["type"], "end");
  EXPECT_EQ(end["end_reason"], "track_ended") << "the face left 50 frames before the file's end";
  const std::string clip = end["clip"];
  EXPECT_EQ(clip, (fs::absolute(tmp_ / "clips") / "door" / (end["id"].get<std::string>() + ".mp4")).string());
  EXPECT_EQ(records.front()["event"]["clip"], clip) << "every record names the clip";
  const int64_t start = end["start_frame"], last = end["boxes"].back()["frame"];
  ASSERT_GE(start, 30);
  ASSERT_LT(last, 70);

  // The clip: 20 frames before the start (the pre-capture buffer), the event, 20 frames after the face was
  // last seen; nothing dropped, every frame in source order.
  const auto frames = read_frames(clip);
  ASSERT_FALSE(frames.empty()) << clip << " does not read back";
  EXPECT_EQ(static_cast<int64_t>(frames.size()), (last + 20) - (start - 20) + 1)
      << "start " << start << ", last seen " << last;
  EXPECT_EQ(bar_index(frames.front()), start - 20) << "the clip opens pre_capture before the event";
  EXPECT_EQ(bar_index(frames.back()), last + 20) << "and closes post_capture after the last sighting";
  for (size_t i = 1; i < frames.size(); ++i)
    ASSERT_EQ(bar_index(frames[i]), bar_index(frames[i - 1]) + 1) << "clip frame " << i;
  EXPECT_EQ(frames.front().size(), cv::Size(480, 300));
  const CameraStats stats = watcher.camera_stats("door");
  EXPECT_EQ(stats.clips, 1);
  EXPECT_EQ(stats.clips_failed, 0);
  EXPECT_EQ(stats.clip_frames_dropped, 0);
  EXPECT_EQ(stats.output_dropped, 0);

  // The store keeps the clip's path with the event.
  store::EventLog log{Workspace(tmp_ / "ws")};
  const auto row = log.get(end["id"]);
  EXPECT_EQ(json::parse(row.data_json)["event"]["clip"], clip);

  // The annotated video has every frame of the file (not only the 60 detected), at the file's rate.
  cv::VideoCapture annotated((tmp_ / "annotated.avi").string());
  ASSERT_TRUE(annotated.isOpened());
  EXPECT_EQ(annotated.get(cv::CAP_PROP_FRAME_COUNT), 120);
  EXPECT_EQ(annotated.get(cv::CAP_PROP_FPS), 20);
  EXPECT_EQ(stats.detected, 60);
  const auto drawn = read_frames(tmp_ / "annotated.avi");
  ASSERT_EQ(drawn.size(), 120u);
  for (int i : {0, 45, 119}) EXPECT_EQ(bar_index(drawn[i]), i);
}

TEST(WatchConfig, ParsesCamerasOutputsAndCascades) {
  const auto c = parse_watch_config(YAML::Load(R"(
outputs:
  jsonl: ev.jsonl
  webhooks: [{url: "http://127.0.0.1:9/x", secret: k, kinds: [start, end]}, "https://example.com/hook"]
cameras:
  door:
    source: door.mp4
    detect: {model: ssd.vgm, fps: 4, labels: [person]}
    objects: {track: [person]}
  lobby:
    source: {url: rtsp://cam/1, stall_seconds: 3}
    detect: {model: "opencv:haarcascade_frontalface_default", opencv: {min_neighbors: 6}}
    classify: {model: masks@production, margin: 0.25}
    zones: {entry: {coordinates: [[0, 0], [100, 0], [100, 100]]}}
    annotate: {video: lobby.mp4}
    clips: {pre_capture: 3, dir: clips}
)"));
  ASSERT_EQ(c.cameras.size(), 2u);
  EXPECT_FALSE(c.cameras[0].clips.enabled);
  EXPECT_TRUE(c.cameras[1].clips.enabled) << "a clips section turns clips on";
  EXPECT_EQ(c.cameras[1].clips.pre_capture, 3);
  EXPECT_EQ(c.cameras[1].clips.post_capture, 5);
  EXPECT_EQ(c.cameras[1].clips.dir, "clips");
  EXPECT_EQ(c.cameras[0].source.url, "door.mp4");
  EXPECT_EQ(c.cameras[0].detect.fps, 4);
  EXPECT_TRUE(c.cameras[0].tracker.class_aware);
  EXPECT_EQ(c.cameras[1].source.stall_seconds, 3);
  EXPECT_EQ(c.cameras[1].detect.opencv.min_neighbors, 6);
  EXPECT_EQ(c.cameras[1].classify.margin, 0.25);
  EXPECT_FALSE(c.cameras[1].tracker.class_aware) << "a cascade's tracks follow the box whatever its class";
  EXPECT_EQ(c.cameras[1].rules.zones.size(), 1u);
  ASSERT_EQ(c.outputs.webhooks.size(), 2u);
  EXPECT_EQ(c.outputs.webhooks[0].kinds, (std::vector<std::string>{"start", "end"}));
  EXPECT_EQ(c.outputs.webhooks[1].url, "https://example.com/hook");
}

TEST(WatchConfig, ErrorsNameTheCameraAndKey) {
  EXPECT_THAT(config_error("cameras: {door: {source: a.mp4, detect: {model: m.vgm, fps: -1}}}"),
              HasSubstr("cameras.door.detect.fps"));
  EXPECT_THAT(config_error("cameras: {door: {source: a.mp4, detct: {model: m.vgm}}}"),
              HasSubstr("did you mean 'cameras.door.detect'"));
  EXPECT_THAT(config_error("cameras: {door: {source: a.mp4}}"), HasSubstr("cameras.door.detect.model"));
  EXPECT_THAT(config_error("cameras: {door: {detect: {model: m.vgm}}}"), HasSubstr("camera 'door'"));
  EXPECT_THAT(config_error("cameras: {door: {source: a.mp4, detect: {model: m.vgm}, zones: {z: {coordinates: "
                           "[[0, 0], [50, 50]]}}}}"),
              HasSubstr("cameras.door.zones.z.coordinates"));
  EXPECT_THAT(
      config_error("cameras: {door: {source: a.mp4, detect: {model: m.vgm}, clips: {pre_capture: -1}}}"),
      HasSubstr("cameras.door.clips.pre_capture"));
  EXPECT_THAT(
      config_error("cameras: {door: {source: a.mp4, detect: {model: m.vgm}, clips: {pre_captur: 2}}}"),
      HasSubstr("did you mean 'cameras.door.clips.pre_capture'"));
  EXPECT_THAT(config_error("cameras: {door: {source: a.mp4, detect: {model: m.vgm}, classify: {margin: 9}}}"),
              HasSubstr("cameras.door.classify.margin"));
  EXPECT_THAT(config_error("cameras: {door: {source: a.mp4, detect: {model: m.vgm}}}\noutputs: {webhooks: "
                           "[{url: ftp://x}]}"),
              HasSubstr("outputs.webhooks[0].url"));
  EXPECT_THAT(config_error("cameras: {door: {source: {url: a.mp4, fps: -3}, detect: {model: m.vgm}}}"),
              HasSubstr("cameras.door.source"));
  EXPECT_THAT(config_error("cameras: {door: {source: a.mp4, detect: {model: m.vgm}}}\noutput: {}"),
              HasSubstr("did you mean 'outputs'"));
}

// ---- sinks
// -------------------------------------------------------------------------------------------------

TEST(Webhook, SignatureIsRfc4231HmacSha256) {
  // RFC 4231 test case 2.
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

WatchEventRecord sample_record(EventKind kind) {
  WatchEventRecord r;
  r.record.kind = kind;
  r.record.event.id = "door-1000-1";
  r.record.event.camera = "door";
  r.record.event.label = "person";
  r.record.event.track_id = 1;
  r.record.event.start = {3, 1.0};
  r.record.event.last = {5, 1.4};
  r.record.event.best = {{4, 1.2}, {10, 20, 50, 90}, 0.9f};
  if (kind == EventKind::kEnd) {
    r.record.event.end_time = 1.5;
    r.record.event.end_reason = EndReason::kTrackEnded;
  }
  return r;
}

TEST(Webhook, ReceiverThatFailsTwiceGetsTheRecordOnTheThirdAttempt) {
  vigil::testing::WebhookReceiver receiver(2);
  WebhookConfig hook;
  hook.url = receiver.url("/alerts?team=ops");
  hook.secret = "k";
  hook.retry_initial = 0.05;
  auto sink = make_webhook_sink(hook);
  const auto t0 = Clock::now();
  sink->write(sample_record(EventKind::kStart));
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 0.05) << "write() only queues";
  ASSERT_TRUE(eventually([&] { return sink->stats().written == 1; }, 20));
  sink->close(5);
  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.body, requests[0].body) << "every attempt sends the same record";
    EXPECT_EQ(r.signature, "sha256=" + hmac_sha256_hex("k", r.body));
    EXPECT_EQ(r.delivery, "door-1000-1:start:0");
  }
  const SinkStats s = sink->stats();
  EXPECT_EQ(s.retries, 2);
  EXPECT_EQ(s.failed, 0);
  EXPECT_EQ(json::parse(requests[0].body)["event"]["best"]["box"], json::parse("[10.0, 20.0, 50.0, 90.0]"));
}

TEST(Webhook, UnreachableReceiverIsGivenUpWithoutBlockingAndQueueStaysBounded) {
  WebhookConfig hook;
  hook.url = "http://127.0.0.1:9/nothing";  // discard port: connection refused
  hook.retry_initial = 0.05;
  hook.retry_max = 0.1;
  hook.max_attempts = 2;
  hook.queue_capacity = 3;
  auto sink = make_webhook_sink(hook);
  for (int i = 0; i < 20; ++i) sink->write(sample_record(EventKind::kUpdate));
  sink->close(5);
  const SinkStats s = sink->stats();
  EXPECT_EQ(s.written, 0);
  EXPECT_GE(s.dropped, 20 - 3 - 1);  // at most the queue and the one in flight survive
  EXPECT_EQ(s.failed + s.dropped, 20);
  EXPECT_THAT(s.last_error, HasSubstr("127.0.0.1:9"));
}

TEST(EventJson, EndRecordCarriesEndReasonAndBoxes) {
  auto r = sample_record(EventKind::kEnd);
  r.record.event.boxes = {{{3, 1.0}, {1, 2, 3, 4}, 0.5f}};
  r.snapshot = "/snaps/door/door-1000-1.jpg";
  const auto j = event_json(r, true);
  EXPECT_EQ(j["type"], "end");
  EXPECT_EQ(j["event"]["end_reason"], "track_ended");
  EXPECT_EQ(j["event"]["end_time"], 1.5);
  EXPECT_EQ(j["event"]["snapshot"], "/snaps/door/door-1000-1.jpg");
  EXPECT_EQ(j["event"]["boxes"].size(), 1u);
  EXPECT_FALSE(event_json(sample_record(EventKind::kStart), false)["event"].contains("boxes"));
  EXPECT_TRUE(event_json(sample_record(EventKind::kStart), false)["event"]["end_time"].is_null());
}

}  // namespace
}  // namespace vigil::video
