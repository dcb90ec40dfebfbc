// `vigil watch` on a real RTSP stream whose publisher dies and comes back: ffmpeg publishes OpenCV's
// vtest.avi (mpeg4 over RTP, interleaved in RTSP/TCP) to a small RTSP relay (rtsp_relay.py, beside this
// file), which vigil reads from through OpenCV's FFmpeg back-end. ffmpeg is killed mid-run; the relay keeps
// vigil's connection open but silent (a hung camera), so only vigil's watchdog (source.stall_seconds) can
// notice; vigil reconnects with back-off (refused with 404 while nothing is published) and, once ffmpeg
// publishes again on the same port, detects new frames. Counted, never timed: frames after the restart,
// stalls and reconnects in vigil's final statistics.
//
// Why a relay: ffmpeg's RTSP muxer can only publish to a server, and `-rtsp_flags listen` makes ffmpeg a
// server for one publisher, never for readers; Debian ships no RTSP server a test could start.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "tests_util.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using vigil::testing::TempDir;
using Clock = std::chrono::steady_clock;

const fs::path kVtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";
const fs::path kRelay = fs::path(__FILE__).parent_path() / "rtsp_relay.py";

/// A child process running `cmd` through sh; killed (SIGKILL) and reaped when it goes out of scope.
class Child {
 public:
  explicit Child(const std::string& cmd) {
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Child() { signal(SIGKILL); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  /// Sends `sig` and waits for the process; its exit code (128 + signal when killed), -1 when already gone.
  int signal(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
};

bool have(const char* program) {
  return std::system(fmt::format("command -v {} > /dev/null 2>&1", program).c_str()) == 0;
}

/// Polls `fn` until it is true; false when the generous bound passes first (a hang, not slowness).
bool eventually(const std::function<bool()>& fn, int bound_s = 90) {
  const auto deadline = Clock::now() + std::chrono::seconds(bound_s);
  while (Clock::now() < deadline) {
    if (fn()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

/// Frame indices of the detections log so far (complete lines only).
std::vector<int64_t> detected_frames(const fs::path& file) {
  std::vector<int64_t> out;
  if (!fs::exists(file)) return out;
  for (const auto& line : vigil::split(vigil::read_file(file), '\n')) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("frame")) out.push_back(j["frame"].get<int64_t>());
  }
  return out;
}

TEST(WatchRtsp, KilledPublisherIsAStallThenAReconnectAndFramesComeBack) {
  if (!fs::exists(kVtest)) GTEST_SKIP() << "opencv-doc's vtest.avi absent; skipping";
  if (!have("ffmpeg") || !have("python3")) GTEST_SKIP() << "ffmpeg or python3 absent; skipping";
  if (!fs::exists("/usr/share/opencv4/haarcascades/haarcascade_fullbody.xml"))
    GTEST_SKIP() << "opencv-data's cascades absent; skipping";
  TempDir tmp;
  const fs::path port_file = tmp / "port", det = tmp / "det.jsonl", stats = tmp / "stats.json";
  Child relay(fmt::format("python3 '{}' '{}' > '{}' 2>&1", kRelay.string(), port_file.string(),
                          (tmp / "relay.log").string()));
  ASSERT_TRUE(eventually([&] { return fs::exists(port_file); }, 30)) << "the relay did not start";
  const std::string url = fmt::format("rtsp://127.0.0.1:{}/live", vigil::trim(vigil::read_file(port_file)));
  // Keyframes every 10 frames, so a reader joining mid-stream decodes within a second.
  const std::string publish = fmt::format(
      "ffmpeg -nostdin -loglevel error -re -stream_loop -1 -i '{}' -an -c:v mpeg4 -g 10 -q:v 5 "
      "-f rtsp -rtsp_transport tcp {} >> '{}' 2>&1",
      kVtest.string(), url, (tmp / "ffmpeg.log").string());
  auto publisher = std::make_unique<Child>(publish);

  vigil::write_file_atomic(tmp / "cameras.yaml", fmt::format(R"(cameras:
  street:
    source: {{url: '{}', stall_seconds: 2, reconnect_initial: 0.5, reconnect_max: 2}}
    detect: {{model: 'opencv:haarcascade_fullbody', fps: 4}}
)",
                                                             url));
  const fs::path err = tmp / "vigil.err";
  Child vigil(
      fmt::format("'{}' --workspace '{}' watch --config '{}' --no-store --no-snapshots --detections '{}' "
                  "--stats-json '{}' > /dev/null 2> '{}'",
                  VIGIL_BINARY, (tmp / "ws").string(), (tmp / "cameras.yaml").string(), det.string(),
                  stats.string(), err.string()));
  ASSERT_TRUE(eventually([&] { return detected_frames(det).size() >= 4; }))
      << "no frames from " << url << "\n"
      << vigil::read_file(err) << vigil::read_file(tmp / "ffmpeg.log");

  // The publisher dies; vigil's connection stays open and silent. Nothing is published for a while (vigil's
  // reconnects are refused), then ffmpeg publishes again on the same URL.
  publisher->signal(SIGKILL);
  const auto before = detected_frames(det);
  ASSERT_FALSE(before.empty());
  std::this_thread::sleep_for(
      std::chrono::seconds(4));  // an outage, not a deadline: nothing is asserted on it
  publisher = std::make_unique<Child>(publish);
  const int64_t last_before = before.back();
  ASSERT_TRUE(eventually([&] {
    const auto now = detected_frames(det);
    return !now.empty() && now.back() >= last_before + 8;
  })) << "no frames after ffmpeg came back\n"
      << vigil::read_file(err) << vigil::read_file(tmp / "relay.log");

  EXPECT_EQ(vigil.signal(SIGTERM), 0) << vigil::read_file(err);
  const json s = json::parse(vigil::read_file(stats))["cameras"][0];
  EXPECT_GE(s["stalls"].get<int64_t>(), 1) << s.dump();
  EXPECT_GE(s["reconnects"].get<int64_t>(), 1) << s.dump();
  EXPECT_GT(s["detected"].get<int64_t>(), static_cast<int64_t>(before.size())) << s.dump();
  EXPECT_GT(s["frames"].get<int64_t>(), last_before + 8) << "frame indices go on across the reconnect";
}

}  // namespace
