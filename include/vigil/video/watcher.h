#pragma once
/// The watcher: N cameras, their detectors, trackers and alert rules, running until stopped.
///
/// Threads: one capture thread per camera (source.h) keeps only its newest frame. One detection thread per
/// model group (cameras whose detect and classify settings name the same models) samples each camera's newest
/// frame at its detect.fps, runs the frames of every camera that is due in ONE forward pass (crops of all of
/// them in one classifier pass), then runs each camera's tracker and rule engine. One output thread writes
/// snapshots, annotated video (every frame read, from the capture thread's tap) and the detections log,
/// keeps each clip camera's pre-capture buffer, and hands event records to the sinks, whose slow ones
/// (webhooks) queue on their own threads, and clips to a clip thread. A model slower than the cameras never
/// builds a backlog: each turn takes the newest frame and counts the detection slots it missed as dropped. A
/// camera that fails or ends drops out of its group alone; the others keep running.
///
/// Times: frames are stamped with the wall clock of their capture (Unix seconds), so event times are real
/// times and never go back (files are read at their own pace, like a live camera).

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vigil/video/event_sinks.h"
#include "vigil/video/frame_detector.h"
#include "vigil/video/watch_config.h"

namespace vigil::video {

/// What a camera is doing and how fast, readable at any time (GET /v1/cameras).
struct CameraStats {
  std::string name;
  std::string url;
  std::string state;             ///< the source's: starting, running, reconnecting, ended, failed, stopped
  bool finished = false;         ///< its source is over and its open events were ended
  std::string detector;          ///< what detects (and classifies) its frames
  double detect_fps_target = 0;  ///< detect.fps as configured
  double fps_in = 0;             ///< frames read per second (smoothed)
  double fps_detect = 0;         ///< frames detected per second over the last few seconds
  double latency_ms = 0;         ///< capture -> tracks of the last detected frame
  double latency_p50_ms = 0, latency_p95_ms = 0;  ///< over the last 256 detected frames
  int64_t frames = 0;                             ///< frames read
  int64_t detected = 0;                           ///< frames detected
  /// Detection slots missed because the model was busy when they came (the frames of those slots were
  /// replaced by newer ones). Stays 0 while the model keeps up with detect.fps.
  int64_t dropped = 0;
  int64_t reconnects = 0, stalls = 0;
  int width = 0, height = 0;
  int tracks = 0;  ///< confirmed tracks in the last detected frame
  int open_events = 0;
  int64_t events = 0;  ///< events started
  int64_t errors = 0;  ///< batches that failed on this camera's frames
  /// Frames the output thread (annotated video, clips, detections log) could not take: its queue was full.
  int64_t output_dropped = 0;
  int64_t clips = 0;                ///< event clips written
  int64_t clips_failed = 0;         ///< event clips that could not be written
  int64_t clip_frames_dropped = 0;  ///< frames left out of clips because the clip queue was full
  std::string last_error;           ///< the source's or the detector's, "" when none
};

/// {name, url, state, finished, detector, detect_fps_target, fps_in, fps_detect, latency_ms, latency_p50_ms,
///  latency_p95_ms, frames, detected, dropped, reconnects, stalls, width, height, tracks, open_events,
///  events, errors, output_dropped, clips, clips_failed, clip_frames_dropped, last_error}
nlohmann::ordered_json to_json(const CameraStats& s);

/// One model group: the cameras sharing a detector (and classifier) and what their batches looked like.
struct ModelGroupStats {
  std::string detector;
  std::string classifier;  ///< "" without a classify stage
  std::vector<std::string> cameras;
  DetectorStats detect;
  DetectorStats classify;
};

/// {detector, classifier, cameras, batches, frames, forward_passes, max_batch, detect_seconds, crops,
///  classify_seconds}
nlohmann::ordered_json to_json(const ModelGroupStats& s);

/// One detected frame of one camera, as the frame observer and the detections log see it.
struct FrameResult {
  std::string camera;
  int64_t frame = 0;      ///< the source's frame index
  double time = 0;        ///< capture time, Unix seconds
  double latency_ms = 0;  ///< capture -> tracks
  int width = 0, height = 0;
  int batch_size = 0;  ///< frames in the forward pass it ran in
  std::vector<ObjectDetection> objects;
  std::vector<Track> tracks;  ///< the tracker's output for this frame
};

/// {camera, frame, time, latency_ms, batch, objects: [{box, label, score[, detector_label, detector_score,
///  class_score]}], tracks: [{id, label, state, box, score, matched}]}
nlohmann::ordered_json to_json(const FrameResult& r);

struct WatcherOptions {
  double drain_seconds = 5;  ///< at stop(): how long webhooks may still deliver what is queued
  int output_queue = 64;     ///< frames waiting for the output thread (annotation, detections log) at most
};

class Watcher {
 public:
  /// Validates the config, loads every model (cameras with the same models share them) and opens the
  /// outputs. Throws InvalidArgument / NotFound / DataError naming the camera and the key.
  explicit Watcher(WatchConfig config, WatcherOptions options = {});
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  /// Adds a sink before start() (after the configured ones: store, JSON lines, webhooks).
  void add_sink(std::unique_ptr<EventSink> sink);
  /// Called on a detection thread after each detected frame; keep it short.
  void set_frame_observer(std::function<void(const FrameResult&)> observer);

  /// Starts the cameras and the detection and output threads.
  void start();
  /// Stops the cameras and detection, ends every open event with reason `stopped`, writes what is queued and
  /// gives webhooks up to drain_seconds. Idempotent; also done by the destructor.
  void stop();
  /// True when every camera is finished (files without loop have ended, sources have failed for good).
  bool done() const;

  std::vector<CameraStats> camera_stats() const;
  /// NotFound naming the camera and the cameras there are.
  CameraStats camera_stats(const std::string& camera) const;
  std::vector<ModelGroupStats> model_stats() const;
  /// Every sink's name and counters.
  std::vector<std::pair<std::string, SinkStats>> sink_stats() const;
  /// The newest detected frame of a camera, with its zones, boxes and track ids drawn when `annotated`;
  /// nullopt before its first detection. NotFound for an unknown camera.
  std::optional<cv::Mat> latest_frame(const std::string& camera, bool annotated) const;
  const WatchConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::video
