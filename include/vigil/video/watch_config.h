#pragma once
/// What `vigil watch --config cameras.yaml` (and later `vigil serve --cameras FILE`) reads: the cameras, each
/// with its source, its detector (a vigil model or an OpenCV cascade), an optional second-stage classifier on
/// the detector's crops, its tracker and alert rules (camera_rules.h), plus where events go. For example
///
///   outputs: {jsonl: events.jsonl, snapshots: snaps, webhooks: [{url: "http://hook/x", secret: s3cret}]}
///   cameras:
///     door:
///       source: {url: rtsp://cam/stream}
///       detect: {model: ssdlite@production, fps: 5}
///       objects: {track: [person]}
///     lobby:
///       source: {url: lobby.mp4, loop: true}
///       detect: {model: "faceapi:ssd_mobilenetv1", fps: 10}
///       classify: {model: masks@production, margin: 0.15}
///       objects: {track: [without_mask]}
///
/// Every error names the dotted key ("cameras.lobby.classify.margin: expected ...").

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "vigil/video/camera_rules.h"
#include "vigil/video/source.h"
#include "vigil/video/tracker.h"

namespace vigil::video {

/// OpenCV cascade settings, used when detect.model is "opencv:<cascade>".
struct OpenCvCascadeConfig {
  double scale_factor = 1.1;  ///< detectMultiScale's pyramid step
  int min_neighbors = 4;      ///< overlapping hits needed to keep a box (higher: fewer false faces)
  int min_size = 24;          ///< smallest object side in pixels
  bool equalize = true;       ///< equalise the grey image's histogram first (helps dim frames)
  std::string label;          ///< label of its boxes ("" = from the cascade's name: face, person, ...)

  template <class V>
  void visit(V& v) {
    v("scale_factor", scale_factor, "image pyramid step of detectMultiScale (> 1)");
    v("min_neighbors", min_neighbors, "overlapping hits needed to keep a box");
    v("min_size", min_size, "smallest object side in pixels");
    v("equalize", equalize, "equalise the grey image's histogram before detecting");
    v("label", label, "label of its boxes (default: from the cascade's name)");
  }
  void validate() const;
};

/// face-api.js detector settings, used when detect.model is "faceapi:<net>" (model/faceapi.h).
struct FaceApiConfig {
  /// tiny_face_detector's square input side, a multiple of 32 (< 0: the package's 416). Smaller is faster
  /// and misses small faces; ssd_mobilenetv1 always runs at 512.
  int input_size = -1;
  std::string label = "face";  ///< label of its boxes

  template <class V>
  void visit(V& v) {
    v("input_size", input_size, "tiny_face_detector's input side, a multiple of 32 (< 0: 416)");
    v("label", label, "label of its boxes");
  }
  void validate() const;
};

/// The detect stage of a camera.
struct DetectConfig {
  /// A vigil model file (detector; classifier: one whole-frame "box" per frame; clip classifier: one
  /// whole-frame "box" per sampled frame, the verdict on the camera's last T sampled frames, so `fps` should
  /// be the frame rate the clips were trained at), a registered model
  /// (NAME, NAME@alias, NAME/k), "faceapi:<net>" (face-api.js's ssd_mobilenetv1 or tiny_face_detector, from
  /// scripts/install-face-api.sh's folder or $VIGIL_FACEAPI_DIR; or "faceapi:<path to its manifest .json>"),
  /// or "opencv:<cascade>" (a file name from opencv-data's haarcascades or lbpcascades, without .xml, or a
  /// path to a cascade .xml).
  ///
  /// For the face-mask cascade use faceapi:ssd_mobilenetv1: on the mask dataset's faces it finds masked and
  /// unmasked faces alike, where haarcascade_frontalface_default misses about half of the masked ones
  /// (tests/unit/video/face_cascade_test.cpp measures it; docs/watch.md has the table).
  std::string model;
  double fps = 5;                ///< detections per second; the newest frame is taken each time
  double score_threshold = 0.1;  ///< boxes below this are dropped (ByteTrack still wants the weak ones)
  double nms_iou = -1;           ///< per-class NMS IoU (< 0: the model's)
  int max_detections = -1;       ///< boxes per frame (< 0: the model's)
  /// Resize frames to the model's own input size before the forward pass (what the model would do inside),
  /// so cameras of different resolutions share one batch and less is converted. Boxes come back in the
  /// frame's pixels either way.
  bool resize = true;
  std::vector<std::string> labels;  ///< keep only these labels (empty: all)
  std::string precision = "fp32";   ///< a vigil model's: "fp32" or "bf16" (nn/precision.h)
  OpenCvCascadeConfig opencv;
  FaceApiConfig faceapi;

  template <class V>
  void visit(V& v) {
    v("model", model, "vigil model file, registered NAME[@alias], faceapi:<net> or opencv:<cascade>");
    v("fps", fps, "detections per second (the newest frame each time)");
    v("score_threshold", score_threshold, "drop boxes scoring below this");
    v("nms_iou", nms_iou, "per-class NMS IoU threshold (< 0: the model's)");
    v("max_detections", max_detections, "boxes kept per frame (< 0: the model's)");
    v("resize", resize, "resize frames to the model's input size before batching");
    v("labels", labels, "keep only these labels (empty: all)");
    v("precision", precision, "a vigil model's precision: fp32, or bf16 on CPUs with AVX512_BF16/AMX");
    v("opencv", opencv, "settings of an opencv:<cascade> detector");
    v("faceapi", faceapi, "settings of a faceapi:<net> detector");
  }
  void validate() const;
};

/// The optional second stage: every box of the detect stage cropped (with a margin) and classified, crops of
/// all cameras of a batch in one forward pass. The box keeps its place; its label becomes the class.
struct ClassifyConfig {
  std::string model;                ///< a vigil classifier (file or registered model); "" = no second stage
  double margin = 0.15;             ///< added on every side, as a fraction of the box's width and height
  std::vector<std::string> labels;  ///< detector labels to classify (empty: all); others pass unchanged
  int max_crops = 32;               ///< crops classified per frame at most (highest detector scores first)
  std::string precision = "fp32";   ///< "fp32" or "bf16" (nn/precision.h)

  template <class V>
  void visit(V& v) {
    v("model", model, "vigil classifier run on each detected box");
    v("margin", margin, "crop margin on every side, as a fraction of the box size");
    v("labels", labels, "detector labels to classify (empty: all)");
    v("max_crops", max_crops, "crops classified per frame at most");
    v("precision", precision, "fp32, or bf16 on CPUs with AVX512_BF16/AMX");
  }
  bool enabled() const { return !model.empty(); }
  void validate() const;
};

/// An annotated copy of what a camera saw: every frame the source delivered, at the source's rate, with the
/// boxes, track ids and zones of its detection (frames between two detections carry the earlier one's).
struct AnnotateConfig {
  std::string video;  ///< output file (.mp4: mp4v, .avi: MJPG); "" = none

  template <class V>
  void visit(V& v) {
    v("video", video, "annotated output video (.mp4 or .avi), every frame at the source's rate");
  }
};

/// Event clips (Frigate's record.events): the camera's last `pre_capture` seconds are kept (JPEG, bounded),
/// and each event gets a video from pre_capture before its start to post_capture after its last sighting,
/// boxes drawn, at the source's rate, written off the detection thread.
struct ClipsConfig {
  bool enabled = false;
  double pre_capture = 5;    ///< seconds before the event's start
  double post_capture = 5;   ///< seconds after the event's object was last seen
  std::string dir;           ///< clips go to <dir>/<camera>/<event id>.mp4 ("" = <workspace>/clips)
  double max_seconds = 300;  ///< a clip longer than this is closed there (a long event keeps its record)
  int quality = 80;          ///< JPEG quality of the frames held for pre_capture
  int buffer_mb = 64;        ///< memory for those frames at most (the oldest go first)

  template <class V>
  void visit(V& v) {
    v("enabled", enabled, "write a video clip of each event");
    v("pre_capture", pre_capture, "seconds before the event's start in its clip");
    v("post_capture", post_capture, "seconds after the object was last seen in its clip");
    v("dir", dir, "folder of the clips (default <workspace>/clips)");
    v("max_seconds", max_seconds, "longest clip in seconds (a longer event's clip is cut there)");
    v("quality", quality, "JPEG quality of the frames held for pre_capture (1..100)");
    v("buffer_mb", buffer_mb, "memory for the pre_capture frames in MB at most");
  }
  void validate() const;
};

/// One camera.
struct CameraConfig {
  std::string name;
  SourceOptions source;  ///< name filled from the camera's key
  DetectConfig detect;
  ClassifyConfig classify;
  TrackerOptions tracker;
  CameraRules rules;
  AnnotateConfig annotate;
  ClipsConfig clips;

  /// Frames go to the output thread one by one (the annotated video, clips).
  bool composes() const { return !annotate.video.empty() || clips.enabled; }
  /// Validates every part; messages start with "cameras.<name>.".
  void validate() const;
};

/// One webhook: a JSON POST per event record, signed, retried with back-off from a bounded queue.
struct WebhookConfig {
  std::string url;         ///< http:// or https://
  std::string secret;      ///< HMAC-SHA256 key for X-Vigil-Signature ("" = unsigned)
  std::string secret_env;  ///< read the secret from this environment variable instead
  std::vector<std::string> kinds = {"start", "update", "end"};  ///< event record kinds sent
  double timeout = 5;                                           ///< seconds per attempt (connect and read)
  int max_attempts = 6;                                         ///< attempts per record before it is given up
  double retry_initial = 0.5;  ///< seconds before the first retry; doubles each time
  double retry_max = 30;       ///< back-off ceiling in seconds
  int queue_capacity = 1000;   ///< records waiting at most; past it the oldest is dropped (and counted)

  template <class V>
  void visit(V& v) {
    v("url", url, "http(s) URL the records are POSTed to");
    v("secret", secret, "HMAC-SHA256 key: X-Vigil-Signature: sha256=<hex> over the body");
    v("secret_env", secret_env, "environment variable holding the secret");
    v("kinds", kinds, "record kinds sent: start, update, end");
    v("timeout", timeout, "seconds per attempt");
    v("max_attempts", max_attempts, "attempts per record before giving it up");
    v("retry_initial", retry_initial, "seconds before the first retry (doubles each time)");
    v("retry_max", retry_max, "back-off ceiling in seconds");
    v("queue_capacity", queue_capacity, "records waiting at most (the oldest is dropped past it)");
  }
  /// The secret to sign with (secret_env's value when set). Throws InvalidArgument when the variable is
  /// unset.
  std::string resolved_secret() const;
  void validate() const;
};

/// Where events (and optionally every frame's detections) go.
struct OutputsConfig {
  bool store = true;       ///< the workspace store's events table
  std::string jsonl;       ///< JSON lines file of event records ("" = none)
  std::string snapshots;   ///< folder for the best frame of each event, box drawn ("" = none)
  std::string detections;  ///< JSON lines file with every detected frame's objects and tracks ("" = none)
  std::vector<WebhookConfig> webhooks;

  template <class V>
  void visit(V& v) {
    v("store", store, "write events to the workspace store");
    v("jsonl", jsonl, "JSON lines file of event records");
    v("snapshots", snapshots, "folder for each event's best frame (JPEG, box drawn)");
    v("detections", detections, "JSON lines file of every detected frame's objects and tracks");
  }
  void validate() const;
};

/// A whole watch configuration.
struct WatchConfig {
  std::vector<CameraConfig> cameras;
  OutputsConfig outputs;
  std::string workspace;  ///< resolves registered model names and holds the store ("" = none)

  void validate() const;
};

/// The keys one camera section accepts.
const std::vector<std::string>& camera_keys();

/// Reads a document with `cameras:` (required) and `outputs:` (optional); relative file paths inside stay as
/// written. Throws InvalidArgument naming the dotted key (and the line, for values of the wrong type).
WatchConfig parse_watch_config(const YAML::Node& root);

/// parse_watch_config() of a YAML file; syntax errors name the file and line.
WatchConfig load_watch_config(const std::filesystem::path& file);

}  // namespace vigil::video
