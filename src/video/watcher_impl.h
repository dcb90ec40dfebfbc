#pragma once
// The watcher's internals shared by watcher.cpp (detection threads) and watcher_stats.cpp (live stats).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "vigil/video/rules.h"
#include "vigil/video/source.h"
#include "vigil/video/tracker.h"
#include "vigil/video/watcher.h"
#include "watcher_output.h"

namespace vigil::video::detail {

using Clock = std::chrono::steady_clock;

/// Unix time now, in seconds.
inline double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// The last `capacity` latencies, for percentiles.
class LatencyWindow {
 public:
  void push(double ms) {
    if (values_.size() < kCapacity) {
      values_.push_back(ms);
    } else {
      values_[next_] = ms;
    }
    next_ = (next_ + 1) % kCapacity;
  }
  /// The p-quantile (0..1) by nearest rank; 0 when empty.
  double quantile(double p) const;

 private:
  static constexpr size_t kCapacity = 256;
  std::vector<double> values_;
  size_t next_ = 0;
};

struct Group;

/// One camera. The detection thread of its group owns the tracker, the rules and the sampling state; `mu`
/// guards what the stats readers see.
struct CameraState {
  CameraConfig config;
  std::unique_ptr<Source> source;
  std::unique_ptr<Tracker> tracker;
  std::unique_ptr<RuleEngine> rules;
  Group* group = nullptr;
  std::atomic<bool> finished{false};

  // detection thread only
  double interval = 0.2;  ///< seconds between detections
  int64_t last_index = -1;
  Clock::time_point next_due{};
  // A recording (source.realtime: false): frames are sampled by their time in the file, not by the clock,
  // and that time (added up across loops) is the events' clock too.
  bool offline = false;
  double next_position = 0;                    ///< file time of the next frame to detect
  double last_position = -1;                   ///< file time of the last frame taken
  double offline_clock = 0;                    ///< seconds of recording taken so far
  double frame_period = 0;                     ///< the last step between two frames' file times
  std::map<std::string, cv::Mat> best_frames;  ///< open event id -> the frame of its best box
  std::map<std::string, int64_t> snapped;      ///< event id -> frame index its snapshot was written from

  mutable std::mutex mu;
  int64_t detected = 0, dropped = 0, errors = 0, events = 0;
  int tracks = 0, open_events = 0;
  double latency_ms = 0;
  LatencyWindow latencies;
  std::deque<Clock::time_point> detect_times;  ///< the last 5 s of detections
  std::string detect_error;
  cv::Mat last_frame;
  std::vector<Track> last_tracks;
  std::vector<TrackStatus> last_statuses;
};

/// Cameras sharing a detector (and classifier), with their detection thread.
struct Group {
  std::unique_ptr<FrameDetector> detector;
  std::unique_ptr<CropClassifier> classifier;
  std::string description;
  std::vector<CameraState*> cameras;
  std::thread thread;
  mutable std::mutex mu;  ///< guards the stats copies
  DetectorStats detect_stats, classify_stats;
};

}  // namespace vigil::video::detail

namespace vigil::video {

struct Watcher::Impl {
  WatchConfig config;
  WatcherOptions options;
  std::vector<std::unique_ptr<detail::Group>> groups;
  std::vector<std::unique_ptr<detail::CameraState>> cameras;
  std::unique_ptr<detail::OutputWorker> output;
  std::function<void(const FrameResult&)> observer;

  detail::Clock::time_point t0_steady{};
  double t0_wall = 0;
  std::mutex mu;
  std::condition_variable wake;
  std::atomic<bool> stopping{false};
  bool started = false, stopped = false;

  /// A steady-clock instant as Unix seconds (monotonic, so event times never go back).
  double wall_of(detail::Clock::time_point t) const;
  /// Sleeps up to `d`; true when stopping.
  bool wait_or_stop(detail::Clock::duration d);
  bool source_over(detail::CameraState& c);
  void account_sampling(detail::CameraState& c, const Frame& f, detail::Clock::time_point now);
  /// A recording's next frame due for detection, taking (and passing over) the frames between samples.
  std::optional<Frame> next_offline_frame(detail::CameraState& c);
  void run_group(detail::Group& g);
  void run_batch(detail::Group& g, std::vector<std::pair<detail::CameraState*, Frame>>& batch);
  void process_frame(detail::CameraState& c, const Frame& f, std::vector<ObjectDetection> objects,
                     int batch_size);
  void emit(detail::CameraState& c, const std::vector<EventRecord>& records);
  /// Ends the camera's open events (reason stopped) and marks it finished.
  void finish_camera(detail::CameraState& c);
  const detail::CameraState& camera(const std::string& name) const;
};

}  // namespace vigil::video
