#include "vigil/video/source.h"

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "vigil/core/error.h"
#include "vigil/core/strings.h"
#include "vigil/image/decode.h"

namespace vigil::video {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

bool is_url(const std::string& url) {
  for (const char* scheme : {"rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://"})
    if (starts_with(url, scheme)) return true;
  return false;
}

bool is_device_index(const std::string& url) {
  return !url.empty() && url.size() <= 3 &&
         std::all_of(url.begin(), url.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

/// Reads frames from one kind of source. open() and read() report failures as text, never throw.
class FrameReader {
 public:
  virtual ~FrameReader() = default;
  virtual bool open(std::string& error) = 0;
  /// False at the end of a file or on a failed read; `error` is empty at a clean end.
  virtual bool read(cv::Mat& bgr, double& position, std::string& error) = 0;
  /// Frames per second the source declares (0 when unknown).
  virtual double native_fps() const = 0;
  /// A file or folder: paced by the reader, ends, may loop. Streams and devices are neither.
  virtual bool finite() const = 0;
};

/// Files, streams and devices through cv::VideoCapture (FFmpeg for files and URLs, V4L2 for devices).
class CaptureReader : public FrameReader {
 public:
  CaptureReader(std::string url, double stall_seconds)
      : url_(std::move(url)), stall_seconds_(stall_seconds) {}

  bool open(std::string& error) override {
    const int timeout_ms = static_cast<int>(stall_seconds_ * 1000);
    // FFmpeg's own timeouts turn a dead or silent stream into a failed open/read instead of a hung thread.
    const std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                     cv::CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms};
    bool ok = false;
    try {
      if (is_device_index(url_)) {
        ok = cap_.open(std::stoi(url_), cv::CAP_ANY);
      } else if (starts_with(url_, "/dev/video")) {
        ok = cap_.open(url_, cv::CAP_V4L2);
      } else {
        ok = cap_.open(url_, cv::CAP_FFMPEG, params);
      }
    } catch (const cv::Exception& e) {
      error = e.what();
      return false;
    }
    if (!ok || !cap_.isOpened()) {
      error = finite() ? "cannot open it as a video (not a video file, or a codec FFmpeg lacks)"
                       : "cannot connect (unreachable, refused, or not a video stream)";
      return false;
    }
    started_ = Clock::now();
    return true;
  }

  bool read(cv::Mat& bgr, double& position, std::string& error) override {
    bool ok = false;
    try {
      ok = cap_.read(bgr);
    } catch (const cv::Exception& e) {
      error = e.what();
      return false;
    }
    if (!ok || bgr.empty()) {
      if (!finite()) error = fmt::format("no frame within {} s (stream stalled or closed)", stall_seconds_);
      return false;
    }
    if (bgr.channels() == 1) cv::cvtColor(bgr, bgr, cv::COLOR_GRAY2BGR);
    position = finite() ? cap_.get(cv::CAP_PROP_POS_MSEC) / 1000.0
                        : std::chrono::duration<double>(Clock::now() - started_).count();
    return true;
  }

  double native_fps() const override {
    const double f = cap_.get(cv::CAP_PROP_FPS);
    return std::isfinite(f) && f > 0 && f < 1000 ? f : 0;
  }
  bool finite() const override {
    return !is_url(url_) && !is_device_index(url_) && !starts_with(url_, "/dev/");
  }

 private:
  std::string url_;
  double stall_seconds_;
  cv::VideoCapture cap_;
  Clock::time_point started_;
};

/// A folder of frames, in file-name order (numbers compared as numbers, so frame_10 follows frame_9).
class FolderReader : public FrameReader {
 public:
  explicit FolderReader(fs::path dir) : dir_(std::move(dir)) {}

  bool open(std::string& error) override {
    files_.clear();
    next_ = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      const std::string ext = to_lower(e.path().extension().string());
      if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp"))
        files_.push_back(e.path());
    }
    if (ec) {
      error = fmt::format("cannot list the folder: {}", ec.message());
      return false;
    }
    if (files_.empty()) {
      error = "the folder holds no .jpg, .jpeg, .png or .bmp frames";
      return false;
    }
    std::sort(files_.begin(), files_.end(), natural_less);
    return true;
  }

  bool read(cv::Mat& bgr, double& position, std::string& error) override {
    while (next_ < files_.size()) {
      const fs::path& file = files_[next_++];
      image::Decoded frame = image::decode_file(file.string());  // libjpeg-turbo straight to BGR
      if (frame.ok()) {
        bgr = std::move(frame.bgr);
        position = static_cast<double>(next_ - 1) / fps_hint_;
        return true;
      }
      error = fmt::format("{}: not a readable image ({}: {}), skipped", file.filename().string(),
                          frame.error.kind_name(), frame.error.detail);
    }
    return false;
  }

  double native_fps() const override { return 0; }
  bool finite() const override { return true; }
  void set_fps_hint(double fps) { fps_hint_ = fps; }

 private:
  static bool natural_less(const fs::path& a, const fs::path& b) {
    const std::string x = a.filename().string(), y = b.filename().string();
    size_t i = 0, j = 0;
    while (i < x.size() && j < y.size()) {
      if (std::isdigit(static_cast<unsigned char>(x[i])) && std::isdigit(static_cast<unsigned char>(y[j]))) {
        size_t i2 = i, j2 = j;
        while (i2 < x.size() && std::isdigit(static_cast<unsigned char>(x[i2]))) ++i2;
        while (j2 < y.size() && std::isdigit(static_cast<unsigned char>(y[j2]))) ++j2;
        const std::string nx = x.substr(i, i2 - i), ny = y.substr(j, j2 - j);
        if (nx.size() != ny.size()) return nx.size() < ny.size();
        if (nx != ny) return nx < ny;
        i = i2;
        j = j2;
      } else {
        if (x[i] != y[j]) return x[i] < y[j];
        ++i;
        ++j;
      }
    }
    return x.size() - i < y.size() - j;
  }

  fs::path dir_;
  std::vector<fs::path> files_;
  size_t next_ = 0;
  double fps_hint_ = 10;
};

}  // namespace

std::string display_url(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t host = scheme + 3;
  const size_t path = url.find_first_of("/?#", host);
  const size_t at = url.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (at == std::string::npos || at < host) return url;
  const size_t colon = url.find(':', host);
  if (colon == std::string::npos || colon > at) return url;  // a user name alone is not a secret
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

void SourceOptions::validate() const {
  VIGIL_CHECK(!name.empty(), "expected a camera name, got an empty one");
  VIGIL_CHECK(!url.empty(),
              "camera '{}': expected a url (file, folder, rtsp://, http(s)://, /dev/videoN), got none", name);
  VIGIL_CHECK(fps >= 0 && fps <= 1000, "camera '{}': expected fps in [0, 1000], got {}", name, fps);
  VIGIL_CHECK(stall_seconds > 0, "camera '{}': expected stall_seconds > 0, got {}", name, stall_seconds);
  VIGIL_CHECK(realtime || (!is_url(url) && !is_device_index(url) && !starts_with(url, "/dev/")),
              "camera '{}': realtime: false applies to video files and frame folders, got the live source {}",
              name, display_url(url));
  VIGIL_CHECK(reconnect_initial > 0 && reconnect_max >= reconnect_initial,
              "camera '{}': expected 0 < reconnect_initial <= reconnect_max, got {} and {}", name,
              reconnect_initial, reconnect_max);
  VIGIL_CHECK(max_reconnects >= -1, "camera '{}': expected max_reconnects >= -1, got {}", name,
              max_reconnects);
}

const char* source_state_name(SourceState s) {
  switch (s) {
    case SourceState::kStarting:
      return "starting";
    case SourceState::kRunning:
      return "running";
    case SourceState::kReconnecting:
      return "reconnecting";
    case SourceState::kEnded:
      return "ended";
    case SourceState::kFailed:
      return "failed";
    case SourceState::kStopped:
      break;
  }
  return "stopped";
}

struct Source::Impl {
  SourceOptions o;
  mutable std::mutex mu;
  std::condition_variable cv;
  Frame slot;
  bool taken = true;  ///< the slot's frame was handed out (a newer one replacing it is not a drop)
  SourceStats stats;
  bool stop = false;
  std::thread thread;
  Clock::time_point last_frame_at{};
  int64_t next_index = 0;  ///< capture thread only
  std::function<void(const Frame&)> tap;

  explicit Impl(SourceOptions options) : o(std::move(options)) {}

  std::unique_ptr<FrameReader> make_reader() const {
    std::error_code ec;
    if (fs::is_directory(o.url, ec)) {
      auto r = std::make_unique<FolderReader>(o.url);
      r->set_fps_hint(o.fps > 0 ? o.fps : 10);
      return r;
    }
    return std::make_unique<CaptureReader>(o.url, o.stall_seconds);
  }

  /// Sleeps up to `seconds` unless stopped; true when stopped.
  bool sleep_or_stop(double seconds) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return stop; });
  }
  bool stopping() {
    std::lock_guard<std::mutex> lock(mu);
    return stop;
  }
  /// Waits until the published frame is taken (realtime: false); true when stopped.
  bool wait_taken_or_stop() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return taken || stop; });
    return stop;
  }
  void set_state(SourceState s, const std::string& error = {}) {
    std::lock_guard<std::mutex> lock(mu);
    stats.state = s;
    if (!error.empty()) stats.last_error = error;
  }

  void publish(cv::Mat bgr, double position, double fps) {
    const auto now = Clock::now();
    Frame frame{std::move(bgr), next_index++, position, now, fps};
    if (tap) tap(frame);  // outside the lock: a recording's tap may wait for its consumer
    std::lock_guard<std::mutex> lock(mu);
    if (!taken) ++stats.dropped;
    if (stats.frames > 0) {
      const double dt = std::chrono::duration<double>(now - last_frame_at).count();
      if (dt > 0) stats.fps = stats.fps == 0 ? 1 / dt : 0.9 * stats.fps + 0.1 / dt;
    }
    last_frame_at = now;
    ++stats.frames;
    stats.width = frame.bgr.cols;
    stats.height = frame.bgr.rows;
    slot = std::move(frame);
    taken = false;
    cv.notify_all();
  }

  /// Reads until the reader ends or fails. Returns true at a clean end of a finite source.
  bool pump(FrameReader& reader) {
    const double fps = o.fps > 0 ? o.fps : (reader.native_fps() > 0 ? reader.native_fps() : 10);
    const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1 / fps));
    auto next_tick = Clock::now();
    while (!stopping()) {
      cv::Mat bgr;  // a fresh buffer each frame: the published one may still be in use by a consumer
      double position = 0;
      std::string error;
      if (!reader.read(bgr, position, error)) {
        if (!error.empty()) set_state(SourceState::kReconnecting, error);
        return reader.finite() && error.empty();
      }
      if (!error.empty()) set_state(SourceState::kRunning, error);  // a skipped frame of a folder
      publish(std::move(bgr), position, fps);
      if (!o.realtime) {
        // A recording: the next frame is read once this one is taken, so the consumer sees every frame.
        if (wait_taken_or_stop()) return false;
        continue;
      }
      if (reader.finite()) {  // pace files like a live camera instead of decoding as fast as possible
        next_tick += period;
        const auto now = Clock::now();
        if (next_tick < now) next_tick = now;
        if (sleep_or_stop(std::chrono::duration<double>(next_tick - now).count())) return false;
      }
    }
    return false;
  }

  void run();
};

void Source::Impl::run() {
  double backoff = o.reconnect_initial;
  int failures = 0;
  bool opened_before = false;
  std::error_code ec;
  const bool local = !is_url(o.url) && !is_device_index(o.url) && !starts_with(o.url, "/dev/");
  if (local && !fs::exists(o.url, ec)) {
    set_state(SourceState::kFailed,
              fmt::format("camera '{}': {}: no such file or folder", o.name, display_url(o.url)));
    return;
  }
  while (!stopping()) {
    auto reader = make_reader();
    std::string error;
    if (!reader->open(error)) {
      set_state(SourceState::kReconnecting,
                fmt::format("camera '{}': {}: {}", o.name, display_url(o.url), error));
      // A local file that does not open will not open later either; a stream or device may come back.
      if (reader->finite() || (o.max_reconnects >= 0 && ++failures > o.max_reconnects)) {
        set_state(SourceState::kFailed);
        return;
      }
      if (sleep_or_stop(backoff)) break;
      backoff = std::min(backoff * 2, o.reconnect_max);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      if (opened_before && !reader->finite()) ++stats.reconnects;
      stats.state = SourceState::kRunning;
    }
    opened_before = true;
    failures = 0;
    backoff = o.reconnect_initial;
    const bool clean_end = pump(*reader);
    if (stopping()) break;
    if (clean_end && !o.loop) {
      set_state(SourceState::kEnded);
      return;
    }
    if (!clean_end) {
      std::lock_guard<std::mutex> lock(mu);
      ++stats.stalls;
    }
  }
  set_state(SourceState::kStopped);
}

Source::Source(SourceOptions options) : options_(std::move(options)) {
  options_.validate();
  impl_ = std::make_unique<Impl>(options_);
}

Source::~Source() {
  stop();
}

void Source::start() {
  VIGIL_CHECK(!impl_->thread.joinable(),
              "camera '{}': expected a source that is not running, got a second start()", options_.name);
  impl_->thread = std::thread([this] { impl_->run(); });
}

void Source::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void Source::set_frame_tap(std::function<void(const Frame&)> tap) {
  VIGIL_CHECK(!impl_->thread.joinable(), "camera '{}': expected set_frame_tap() before start(), got it after",
              options_.name);
  impl_->tap = std::move(tap);
}

std::optional<Frame> Source::latest(int64_t after, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait_for(lock, wait, [&] { return impl_->slot.index > after || impl_->stop; });
  if (impl_->slot.index <= after) return std::nullopt;
  impl_->taken = true;
  impl_->cv.notify_all();  // a recording's reader (realtime: false) waits for this to read on
  return impl_->slot;
}

SourceStats Source::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

}  // namespace vigil::video
