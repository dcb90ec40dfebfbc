#pragma once
// The watcher's output thread (watcher.h): event snapshots, annotated videos, event clips, the detections
// log and the sinks, off the detection threads. Internal to src/video/.
//
// Cameras with an annotated video or clips send every frame their source reads (RawTask, from the capture
// thread's tap) as well as each detection (FrameTask). One queue keeps them in the order they happened: a
// raw frame always comes before its detection, so the output thread holds raw frames until the detection of
// the same frame (or a later one) arrives and draws each with its own boxes, or with the previous
// detection's between two samples.

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
#include <variant>
#include <vector>

#include "clip_writer.h"
#include "vigil/video/event_sinks.h"
#include "vigil/video/rules.h"
#include "vigil/video/source.h"
#include "vigil/video/watcher.h"

namespace vigil::video::detail {

/// An event record on its way to the sinks; `best_frame` is set when the snapshot must be (re)written.
struct EventTask {
  WatchEventRecord record;
  cv::Mat best_frame;
  const CameraConfig* camera = nullptr;  ///< its clips settings
};

/// A detected frame for the annotated video, the clips and the detections log.
struct FrameTask {
  FrameResult result;
  cv::Mat frame;
  std::vector<TrackStatus> statuses;
  const CameraConfig* camera = nullptr;
};

/// A frame as the source read it (cameras that compose(): annotated video or clips).
struct RawTask {
  Frame frame;
  const CameraConfig* camera = nullptr;
};

/// A camera whose source is over (its end records were pushed before this): its last frames are drawn, its
/// clips finished and its annotated video closed now, not when the watcher stops.
struct FinishTask {
  const CameraConfig* camera = nullptr;
};

/// What the output thread knows of one composing camera.
struct CameraOutput {
  std::deque<Frame> pending;  ///< raw frames waiting for their detection
  std::vector<Track> tracks;  ///< of the latest detection
  std::vector<TrackStatus> statuses;
  int64_t composed = -1;  ///< index of the last frame drawn
  double fps = 0;
  std::unique_ptr<cv::VideoWriter> video;
  cv::Size video_size;
  std::deque<std::pair<int64_t, Jpeg>> ring;  ///< the last pre_capture seconds, drawn and encoded
  size_t ring_bytes = 0;
  struct OpenClip {
    int64_t track_id = 0;
    int64_t last_seen = -1;  ///< the frame its object was last matched in
    int64_t until = -1;      ///< last frame index it takes (-1 while its event is open)
    int64_t frames = 0;      ///< frames handed to the clip thread
    /// Frames past last_seen + post_capture: kept back until the object is seen again (then they are part
    /// of the event) or the event ends (then those past its end + post_capture are left out).
    std::deque<std::pair<int64_t, Jpeg>> held;
  };
  std::map<std::string, OpenClip> clips;  ///< by event id
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
  /// A raw frame. With `wait` (a recording) it waits for room instead of being dropped; false when dropped
  /// (counted for the camera) or closed.
  bool push_raw(RawTask task, bool wait);
  void push_finish(FinishTask task);
  /// Writes everything queued, closes the videos, the clips and the sinks (webhooks get `drain_seconds`).
  /// Idempotent.
  void close(double drain_seconds);

  std::vector<std::pair<std::string, SinkStats>> sink_stats() const;
  /// Frames not annotated or logged because the queue was full, by camera.
  std::map<std::string, int64_t> dropped_frames() const;
  /// Clips written, failed and frames dropped from them, by camera.
  std::map<std::string, ClipStats> clip_stats() const;

 private:
  using Task = std::variant<EventTask, FrameTask, RawTask, FinishTask>;
  void run();
  void handle(EventTask& task);
  void handle(FrameTask& task);
  void handle(RawTask& task);
  void handle(FinishTask& task);
  /// Draws what waits for a detection with the last one's boxes, finishes the clips, closes the video.
  void finish_camera(const std::string& name);
  void write_snapshot(const EventTask& task);
  /// Draws a frame with `out`'s current tracks and hands it to the video, the pre-capture buffer and the
  /// open clips.
  void compose(const CameraConfig& camera, CameraOutput& out, const Frame& frame);
  void write_video(const CameraConfig& camera, CameraOutput& out, const cv::Mat& canvas);
  void add_to_clips(const CameraConfig& camera, CameraOutput& out, int64_t index, const cv::Mat& canvas);
  /// Hands `clip`'s held frames up to `index` to the clip thread (max_seconds permitting).
  void release_held(const CameraConfig& camera, const std::string& id, CameraOutput::OpenClip& clip,
                    int64_t index);
  void flush_pending();

  OutputsConfig outputs_;
  size_t frame_capacity_;
  std::vector<std::unique_ptr<EventSink>> sinks_;
  std::unique_ptr<std::ofstream> detections_;
  std::map<std::string, CameraOutput> cameras_;  ///< by camera; the output thread's only
  std::map<std::string, const CameraConfig*> configs_;
  ClipWriter clips_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  size_t queued_frames_ = 0;  ///< FrameTasks and RawTasks in tasks_
  std::map<std::string, int64_t> dropped_;
  bool closing_ = false;
  bool closed_ = false;
  std::thread thread_;
};

}  // namespace vigil::video::detail
