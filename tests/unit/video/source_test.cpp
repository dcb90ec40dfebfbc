// Capture sources on real video: a file written with OpenCV's VideoWriter, a folder of frames, and a live
// MJPEG stream over HTTP from a real socket server in this test that stalls and comes back, so the
// watchdog and the reconnect back-off are exercised end to end through OpenCV's FFmpeg back-end.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/video/source.h"

namespace {

using ::testing::HasSubstr;
using vigil::testing::TempDir;
using vigil::video::Source;
using vigil::video::SourceOptions;
using vigil::video::SourceState;
using Clock = std::chrono::steady_clock;

cv::Mat numbered_frame(int i, int w = 160, int h = 120) {
  cv::Mat m(h, w, CV_8UC3, cv::Scalar((i * 37) % 255, (i * 91) % 255, 128));
  cv::putText(m, std::to_string(i), {10, 60}, cv::FONT_HERSHEY_SIMPLEX, 1.5, {255, 255, 255}, 3);
  return m;
}

std::filesystem::path write_video(const TempDir& dir, int frames, double fps) {
  const auto file = dir / "clip.avi";
  cv::VideoWriter w(file.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps, {160, 120});
  EXPECT_TRUE(w.isOpened());
  for (int i = 0; i < frames; ++i) w.write(numbered_frame(i));
  return file;
}

/// Waits until `pred` holds or `seconds` pass; true when it held.
template <class P>
bool eventually(P pred, double seconds) {
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

SourceOptions options_for(const std::string& url) {
  SourceOptions o;
  o.name = "cam";
  o.url = url;
  o.stall_seconds = 1;
  o.reconnect_initial = 0.1;
  o.reconnect_max = 0.4;
  return o;
}

TEST(Source, FileDeliversEveryFrameAtItsOwnPaceThenEnds) {
  TempDir dir;
  const auto file = write_video(dir, 20, 50);
  Source s(options_for(file.string()));
  const auto start = Clock::now();
  s.start();
  int64_t last = -1, seen = 0;
  while (auto f = s.latest(last, std::chrono::milliseconds(2000))) {
    EXPECT_GT(f->index, last);
    EXPECT_EQ(f->bgr.cols, 160);
    last = f->index;
    ++seen;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_TRUE(eventually([&] { return s.stats().state == SourceState::kEnded; }, 5));
  EXPECT_EQ(s.stats().frames, 20);
  EXPECT_EQ(last, 19);
  EXPECT_GE(seen, 15);      // a consumer that keeps up sees nearly every frame
  EXPECT_GT(elapsed, 0.3);  // paced at 50 fps (0.4 s), not decoded as fast as possible
}

TEST(Source, LoopedFileKeepsRunningPastItsEnd) {
  TempDir dir;
  const auto file = write_video(dir, 10, 100);
  auto o = options_for(file.string());
  o.loop = true;
  Source s(o);
  s.start();
  ASSERT_TRUE(eventually([&] { return s.stats().frames > 25; }, 10));
  EXPECT_EQ(s.stats().state, SourceState::kRunning);
  EXPECT_EQ(s.stats().reconnects, 0);  // looping a file is not a reconnect
}

/// Takes frames until the source has none for 1.5 s, spending `per_frame` on each (a slow consumer).
std::vector<vigil::video::Frame> take_all(Source& s, std::chrono::milliseconds per_frame) {
  std::vector<vigil::video::Frame> got;
  int64_t last = -1;
  while (auto f = s.latest(last, std::chrono::milliseconds(1500))) {
    last = f->index;
    got.push_back(std::move(*f));
    std::this_thread::sleep_for(per_frame);
  }
  return got;
}

std::vector<int64_t> indices(const std::vector<vigil::video::Frame>& frames) {
  std::vector<int64_t> out;
  for (const auto& f : frames) out.push_back(f.index);
  return out;
}

TEST(Source, KeepsOnlyTheNewestFrameForASlowConsumer) {
  TempDir dir;
  const auto file = write_video(dir, 60, 200);
  Source s(options_for(file.string()));
  s.start();
  const auto got = indices(take_all(s, std::chrono::milliseconds(40)));  // slower than the 5 ms frame period
  ASSERT_TRUE(eventually([&] { return s.stats().state == SourceState::kEnded; }, 5));
  EXPECT_LT(got.size(), 30u);  // no backlog: most frames were replaced before being taken
  EXPECT_GT(s.stats().dropped, 30);
  EXPECT_EQ(got.back(), 59);  // but the newest one always arrives
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
}

TEST(Source, ARecordingWaitsForItsSlowConsumerAndOffersEveryFrame) {
  TempDir dir;
  const auto file = write_video(dir, 30, 200);
  auto o = options_for(file.string());
  o.realtime = false;
  Source s(o);
  s.start();
  const auto got = take_all(s, std::chrono::milliseconds(10));  // slower than the 5 ms frame period
  ASSERT_TRUE(eventually([&] { return s.stats().state == SourceState::kEnded; }, 5));
  ASSERT_EQ(got.size(), 30u) << "realtime: false replaces no frame";
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].index, static_cast<int64_t>(i));
    EXPECT_NEAR(got[i].position_seconds, static_cast<double>(i) / 200, 1e-3)
        << "the frame's time in the file";
  }
  EXPECT_EQ(s.stats().dropped, 0);
}

TEST(Source, DisplayUrlHidesThePasswordAndNothingElse) {
  using vigil::video::display_url;
  EXPECT_EQ(display_url("rtsp://admin:s3cret@10.0.0.5:554/stream1"), "rtsp://admin:***@10.0.0.5:554/stream1");
  EXPECT_EQ(display_url("http://u:p@cam/mjpg?x=a@b"), "http://u:***@cam/mjpg?x=a@b");
  EXPECT_EQ(display_url("rtsp://admin@10.0.0.5/stream"), "rtsp://admin@10.0.0.5/stream");
  EXPECT_EQ(display_url("rtsp://10.0.0.5:554/live"), "rtsp://10.0.0.5:554/live");
  EXPECT_EQ(display_url("http://cam/a@b:c"), "http://cam/a@b:c") << "an @ in the path is not a user";
  EXPECT_EQ(display_url("/videos/a:b@c.mp4"), "/videos/a:b@c.mp4");
  auto o = options_for("rtsp://admin:s3cret@127.0.0.1:1/none");
  o.realtime = false;
  try {
    Source s(o);
    FAIL() << "expected InvalidArgument";
  } catch (const vigil::InvalidArgument& e) {
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("s3cret")));
  }
}

TEST(Source, FolderOfFramesInNaturalOrder) {
  TempDir dir;
  std::filesystem::create_directories(dir / "frames");
  for (int i : {1, 2, 9, 10, 11})
    cv::imwrite((dir / "frames" / ("f" + std::to_string(i) + ".png")).string(), numbered_frame(i));
  vigil::testing::write_text(dir / "frames" / "notes.txt", "not a frame");
  auto o = options_for((dir / "frames").string());
  o.fps = 100;
  Source s(o);
  s.start();
  std::vector<double> colour;
  int64_t last = -1;
  while (auto f = s.latest(last, std::chrono::milliseconds(1000))) {
    last = f->index;
    colour.push_back(f->bgr.at<cv::Vec3b>(5, 5)[0]);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(eventually([&] { return s.stats().state == SourceState::kEnded; }, 5));
  EXPECT_EQ(s.stats().frames, 5);
  ASSERT_FALSE(colour.empty());
  EXPECT_EQ(colour.back(), (11 * 37) % 255);  // f11 is last, not f9 (text order would end on f9)
}

TEST(Source, AnUnreadableFrameInAFolderIsSkippedNamingTheFileAndWhy) {
  TempDir dir;
  std::filesystem::create_directories(dir / "frames");
  for (int i : {1, 3})
    cv::imwrite((dir / "frames" / ("f" + std::to_string(i) + ".png")).string(), numbered_frame(i));
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", numbered_frame(2), jpeg);
  jpeg.resize(jpeg.size() / 2);  // cut inside the scan
  vigil::testing::write_text(dir / "frames" / "f2.jpg", std::string(jpeg.begin(), jpeg.end()));
  auto o = options_for((dir / "frames").string());
  o.realtime = false;  // a recording: every frame is offered
  Source s(o);
  s.start();
  std::vector<int> colour;
  int64_t last = -1;
  while (auto f = s.latest(last, std::chrono::milliseconds(1000))) {
    last = f->index;
    colour.push_back(f->bgr.at<cv::Vec3b>(5, 5)[0]);
  }
  ASSERT_TRUE(eventually([&] { return s.stats().state == SourceState::kEnded; }, 5));
  EXPECT_EQ(colour, (std::vector<int>{37, (3 * 37) % 255}));  // f1 and f3; f2 skipped
  EXPECT_THAT(s.stats().last_error, HasSubstr("f2.jpg"));
  EXPECT_THAT(s.stats().last_error, HasSubstr("truncated"));
}

TEST(Source, NotAVideoFailsWithTheCameraNamedAndStops) {
  TempDir dir;
  vigil::testing::write_text(dir / "fake.mp4", "this is not a video");
  Source s(options_for((dir / "fake.mp4").string()));
  s.start();
  ASSERT_TRUE(eventually([&] { return s.stats().state == SourceState::kFailed; }, 10));
  EXPECT_THAT(s.stats().last_error, HasSubstr("camera 'cam'"));
  EXPECT_THAT(s.stats().last_error, HasSubstr("fake.mp4"));
  EXPECT_FALSE(s.latest(-1).has_value());
}

TEST(Source, MissingFileFailsAtOnce) {
  Source s(options_for("/nonexistent/clip.mp4"));
  s.start();
  ASSERT_TRUE(eventually([&] { return s.stats().state == SourceState::kFailed; }, 5));
  EXPECT_THAT(s.stats().last_error, HasSubstr("no such file"));
}

TEST(Source, BadOptionsNameTheCameraAndField) {
  auto o = options_for("x.mp4");
  o.stall_seconds = 0;
  try {
    Source s(o);
    FAIL() << "expected InvalidArgument";
  } catch (const vigil::InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("camera 'cam'"));
    EXPECT_THAT(e.what(), HasSubstr("stall_seconds"));
  }
  o = options_for("");
  EXPECT_THROW(Source{o}, vigil::InvalidArgument);
  o = options_for("rtsp://127.0.0.1:8554/live");
  o.realtime = false;
  try {
    Source s(o);
    FAIL() << "expected InvalidArgument";
  } catch (const vigil::InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("camera 'cam'"));
    EXPECT_THAT(e.what(), HasSubstr("realtime: false"));
  }
}

/// A minimal MJPEG-over-HTTP camera on 127.0.0.1: each accepted connection gets a multipart stream of JPEG
/// frames. The first connection sends `first_burst` frames and then goes silent (connection kept open, as a
/// stalled camera does); later connections stream until the server stops.
class MjpegServer {
 public:
  explicit MjpegServer(int first_burst) : first_burst_(first_burst) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 4);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~MjpegServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/stream.mjpg"; }
  int connections() const { return connections_; }

 private:
  void serve() {
    while (!stop_) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      const int n = connections_++;
      std::thread([this, c, n] { stream(c, n == 0 ? first_burst_ : 1 << 30); }).detach();
    }
  }
  void stream(int c, int frames) {
    char buf[4096];
    (void)!recv(c, buf, sizeof buf, 0);  // the request; its content does not matter here
    const std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=frame\r\nConnection: "
        "close\r\n\r\n";
    bool ok = send(c, head.data(), head.size(), MSG_NOSIGNAL) > 0;
    for (int i = 0; ok && i < frames && !stop_; ++i) {
      std::vector<uchar> jpg;
      cv::imencode(".jpg", numbered_frame(i), jpg);
      const std::string part =
          "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + std::to_string(jpg.size()) + "\r\n\r\n";
      ok = send(c, part.data(), part.size(), MSG_NOSIGNAL) > 0 &&
           send(c, jpg.data(), jpg.size(), MSG_NOSIGNAL) > 0 && send(c, "\r\n", 2, MSG_NOSIGNAL) > 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    while (ok && !stop_) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // stalled, still open
    close(c);
  }

  int fd_ = -1, port_ = 0, first_burst_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

TEST(Source, StalledStreamIsDetectedWithinTheWatchdogTimeAndReconnects) {
  MjpegServer server(/*first_burst=*/15);
  Source s(options_for(server.url()));
  s.start();
  ASSERT_TRUE(eventually([&] { return s.stats().frames >= 5; }, 10)) << s.stats().last_error;
  EXPECT_EQ(s.stats().state, SourceState::kRunning);
  // The first connection goes silent after 15 frames; the watchdog (1 s) must notice and reconnect.
  const auto stalled_from = Clock::now();
  ASSERT_TRUE(eventually([&] { return s.stats().stalls >= 1; }, 8)) << s.stats().last_error;
  const double detect_s = std::chrono::duration<double>(Clock::now() - stalled_from).count();
  EXPECT_LT(detect_s, 1 + 0.3 * 15 + 2.5);  // the burst's remaining frames, then stall_seconds, plus slack
  EXPECT_THAT(s.stats().last_error, HasSubstr("no frame within"));
  ASSERT_TRUE(eventually([&] { return s.stats().reconnects >= 1 && s.stats().frames >= 30; }, 10))
      << s.stats().last_error;
  EXPECT_GE(server.connections(), 2);
  EXPECT_EQ(s.stats().state, SourceState::kRunning);
}

TEST(Source, UnreachableStreamBacksOffWithoutStoppingAnotherCamera) {
  TempDir dir;
  const auto file = write_video(dir, 10, 100);
  auto dead = options_for("http://127.0.0.1:9/none.mjpg");  // discard port: nothing listens
  dead.name = "dead";
  dead.max_reconnects = 3;
  auto live = options_for(file.string());
  live.name = "live";
  live.loop = true;
  Source a(dead), b(live);
  a.start();
  b.start();
  ASSERT_TRUE(eventually([&] { return a.stats().state == SourceState::kFailed; }, 15));
  EXPECT_THAT(a.stats().last_error, HasSubstr("camera 'dead'"));
  EXPECT_GT(b.stats().frames, 10);
  EXPECT_EQ(b.stats().state, SourceState::kRunning);
}

}  // namespace
