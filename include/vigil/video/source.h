#pragma once
/// A camera: one capture thread per source that keeps only the newest frame (never a growing backlog),
/// reconnects with exponential back-off when the source fails or stalls, and reports its state. Sources are
/// video files (optionally looped, read at their own frame rate), RTSP / HTTP(S) / MJPEG URLs and V4L2
/// devices through OpenCV's FFmpeg and V4L2 back-ends, and folders of frames. One source going away never
/// affects another: each has its own thread and its own error state.

#include <opencv2/core.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace vigil::video {

/// What a camera reads and how hard it tries.
struct SourceOptions {
  std::string name;  ///< the camera's name (messages and metrics carry it)
  /// A video file, a folder of frames, rtsp:// rtsps:// http:// https:// (MJPEG or any FFmpeg input), a V4L2
  /// device (/dev/videoN) or a device index ("0").
  std::string url;
  bool loop = false;  ///< files and frame folders: start again at the end instead of ending
  /// Files and frame folders are paced like a live camera: at this rate, or at the file's own when 0 (frame
  /// folders: 10). Streams deliver at their own pace.
  double fps = 0;
  /// Files and frame folders: false processes a recording instead of watching it: no pacing, and the reader
  /// waits for the consumer to take each frame, so none is replaced (every frame is offered, decoding runs as
  /// fast as detection allows). Streams and devices are live by nature and refuse false.
  bool realtime = true;
  double stall_seconds = 10;       ///< watchdog: no frame for this long means the source is stalled
  double reconnect_initial = 0.5;  ///< seconds before the first reconnect; doubles each failure
  double reconnect_max = 30;       ///< back-off ceiling in seconds
  int max_reconnects = -1;         ///< give up after this many failed attempts in a row (-1: never)

  /// Throws InvalidArgument naming the camera and the field.
  void validate() const;
};

/// The url as shown to people (messages, /v1/cameras, the UI): a password in it ("rtsp://user:pass@host/...")
/// becomes "***", so camera credentials never leave the config file.
std::string display_url(const std::string& url);

/// Where a source is in its life.
enum class SourceState { kStarting, kRunning, kReconnecting, kEnded, kFailed, kStopped };
const char* source_state_name(SourceState s);

/// One captured frame. `index` counts frames delivered by the source since start (across reconnects), so
/// a consumer can tell a new frame from one it has seen.
struct Frame {
  cv::Mat bgr;
  int64_t index = -1;
  double position_seconds = 0;  ///< files: the frame's time in the file; streams: seconds since start
  std::chrono::steady_clock::time_point captured;
  /// The rate the source delivers at: a file's own (or source.fps), what a stream declares, else 10.
  double source_fps = 0;
};

/// A snapshot of a source's counters.
struct SourceStats {
  SourceState state = SourceState::kStarting;
  int64_t frames = 0;      ///< frames read
  int64_t dropped = 0;     ///< frames replaced by a newer one before anyone took them
  int64_t reconnects = 0;  ///< successful re-opens after a failure or stall
  int64_t stalls = 0;      ///< times reading stopped (no frame for stall_seconds, or the stream closed)
  double fps = 0;          ///< frames read per second, smoothed
  int width = 0, height = 0;
  std::string last_error;  ///< why the last open or read failed ("" when none)
};

/// A running camera. Thread-safe: the capture thread writes, any thread reads.
class Source {
 public:
  explicit Source(SourceOptions options);
  ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  /// Starts the capture thread. Opening happens there: a source that cannot be opened reports
  /// kReconnecting with last_error, never throws here.
  void start();
  /// Stops and joins the capture thread (also done by the destructor).
  void stop();
  /// Before start(): `tap` sees every frame read, in order, on the capture thread, before latest() can hand
  /// it out (the annotated video and event clips want all frames, not only the sampled ones). It must be
  /// quick; with realtime: false it may block, which holds the reader back like a slow consumer does.
  void set_frame_tap(std::function<void(const Frame&)> tap);

  /// The newest frame with index > after, waiting up to `wait` for one; nullopt when none came.
  std::optional<Frame> latest(int64_t after, std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  SourceStats stats() const;
  const SourceOptions& options() const { return options_; }

 private:
  struct Impl;
  SourceOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::video
