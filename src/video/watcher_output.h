#pragma once
// The watcher's output thread (watcher.h): event snapshots, annotated videos, the detections log and the
// sinks, off the detection threads. Internal to src/video/.

#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "vigil/video/event_sinks.h"
#include "vigil/video/rules.h"
#include "vigil/video/watcher.h"

namespace vigil::video::detail {

/// An event record on its way to the sinks; `best_frame` is set when the snapshot must be (re)written.
struct EventTask {
  WatchEventRecord record;
  cv::Mat best_frame;
};

/// A detected frame for the annotated video and the detections log.
struct FrameTask {
  FrameResult result;
  cv::Mat frame;
  std::vector<TrackStatus> statuses;
  const CameraConfig* camera = nullptr;
};

class OutputWorker {
 public:
  /// Opens the JSON lines files; `frame_capacity` bounds the frames waiting (events are never dropped).
  OutputWorker(const OutputsConfig& outputs, size_t frame_capacity);
  ~OutputWorker();

  void add_sink(std::unique_ptr<EventSink> sink);
  void start();
  void push_event(EventTask task);
  /// False (and counted for the camera) when the frame queue is full.
  bool push_frame(FrameTask task);
  /// Writes everything queued, closes the videos and the sinks (webhooks get `drain_seconds`). Idempotent.
  void close(double drain_seconds);

  std::vector<std::pair<std::string, SinkStats>> sink_stats() const;
  /// Frames not annotated or logged because the queue was full, by camera.
  std::map<std::string, int64_t> dropped_frames() const;

 private:
  void run();
  void handle(EventTask& task);
  void handle(FrameTask& task);
  void write_snapshot(const EventTask& task);

  OutputsConfig outputs_;
  size_t frame_capacity_;
  std::vector<std::unique_ptr<EventSink>> sinks_;
  std::unique_ptr<std::ofstream> detections_;
  std::map<std::string, std::pair<std::unique_ptr<cv::VideoWriter>, cv::Size>> videos_;  ///< by camera

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<EventTask> events_;
  std::deque<FrameTask> frames_;
  std::map<std::string, int64_t> dropped_;
  bool closing_ = false;
  bool closed_ = false;
  std::thread thread_;
};

}  // namespace vigil::video::detail
