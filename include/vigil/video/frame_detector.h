#pragma once
/// What the watcher runs on sampled frames: a FrameDetector takes the frames of every camera of a batch at
/// once and returns each frame's boxes. Behind the one interface: a vigil model file (a detector, in one
/// forward pass per batch; a classifier, whose verdict on the whole frame becomes one frame-sized box; or a
/// clip classifier, CNN + LSTM/GRU, whose verdict on each camera's last T sampled frames does the same) and
/// face-api.js's face detectors ("faceapi:ssd_mobilenetv1", "faceapi:tiny_face_detector": model/faceapi.h,
/// the ones that find masked faces) and OpenCV's Haar/LBP cascades ("opencv:haarcascade_frontalface_default",
/// from Debian's opencv-data). A CropClassifier is the optional second stage of a cascade: every box cropped
/// with a margin, the crops of the whole batch classified in one forward pass, the class becoming the box's
/// label (the face-mask seed: a face detector, then with_mask / without_mask per face). torch stays out of
/// this header.

#include <opencv2/core.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vigil/video/tracker.h"
#include "vigil/video/watch_config.h"

namespace vigil::video {

/// One object found in a frame.
struct ObjectDetection {
  Detection detection;  ///< what the tracker sees: box (frame pixels), score, class and label
  /// The detect stage's own label and score. With a classify stage, `detection` carries the class and
  /// score = detector score x class probability; without one they equal detection.label / .score.
  std::string detector_label;
  float detector_score = 0;
  bool classified = false;  ///< the classify stage ran on this box
  float class_score = 0;    ///< the classifier's probability of detection.label (when classified)
};

/// Counters of one detector (or classifier), for the live view and the batching test.
struct DetectorStats {
  int64_t batches = 0;         ///< detect() calls
  int64_t frames = 0;          ///< frames (or crops) in them
  int64_t forward_passes = 0;  ///< model forward passes they took (one per batch when sizes agree)
  int max_batch = 0;           ///< most frames in one call
  double busy_seconds = 0;     ///< time spent inside detect()
};

/// Finds objects in frames. Not thread-safe: the watcher's worker of one model group calls it.
class FrameDetector {
 public:
  virtual ~FrameDetector() = default;
  /// What it is, for messages and /v1/cameras ("ssdlite320_mobilenet_v3_large (model.vgm)").
  virtual std::string describe() const = 0;
  /// Every label it can produce.
  virtual std::vector<std::string> labels() const = 0;
  /// Detects in every frame (8-bit BGR) of a batch; result i belongs to frames[i], boxes in its pixels.
  /// cameras[i] names the camera frames[i] came from: a clip classifier keeps a window of each camera's
  /// recent frames; the others ignore it. Throws on a failure of the whole batch.
  virtual std::vector<std::vector<Detection>> detect(const std::vector<cv::Mat>& frames,
                                                     const std::vector<std::string>& cameras) = 0;
  virtual DetectorStats stats() const = 0;
};

/// Where a model spec points: a file, an OpenCV cascade, or a face-api.js detector.
struct ResolvedModel {
  std::string spec;      ///< as written
  std::string file;      ///< model file, cascade .xml, or face-api.js weights manifest
  std::string name;      ///< registered name, cascade name, face-api.js net name, or the file's stem
  std::string version;   ///< registry version ("" for a plain file, a cascade or face-api.js)
  bool opencv = false;   ///< an OpenCV cascade
  bool faceapi = false;  ///< a face-api.js detector (name is its net: tiny_face_detector, ssd_mobilenetv1)
};

/// Resolves "opencv:<name|path.xml>", "faceapi:<net|path/NET_model-weights_manifest.json>" (a net name looks
/// in model::faceapi_weights_dir()), a model file, or a registered model (NAME, NAME@alias, NAME/k) in
/// `workspace`'s registry (checking the registered file's hash). NotFound names the spec and what exists.
ResolvedModel resolve_model_spec(const std::string& spec, const std::string& workspace);

/// The cascade files opencv-data installs (names without .xml), for messages.
std::vector<std::string> opencv_cascade_names();

/// Loads the detect stage of `detect` (a vigil model, a cascade or a face-api.js detector). Throws NotFound /
/// InvalidArgument / DataError naming the spec or file.
std::unique_ptr<FrameDetector> make_frame_detector(const DetectConfig& detect, const std::string& workspace);

/// The classify stage of a cascade.
class CropClassifier {
 public:
  /// Loads `config.model`, which must be a vigil classifier (InvalidArgument otherwise).
  CropClassifier(const ClassifyConfig& config, const std::string& workspace);
  ~CropClassifier();
  CropClassifier(const CropClassifier&) = delete;
  CropClassifier& operator=(const CropClassifier&) = delete;

  std::string describe() const;
  std::vector<std::string> labels() const;
  /// Classifies the boxes of every frame of a batch (one forward pass for all crops, in chunks of 64),
  /// replacing their labels and scores as ObjectDetection says. objects[i] belong to frames[i].
  void classify(const std::vector<cv::Mat>& frames, std::vector<std::vector<ObjectDetection>>& objects);
  DetectorStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The crop a box is classified from: the box grown by `margin` of its size on every side, clipped to the
/// frame (at least 1x1).
cv::Rect crop_rect(const Box& box, double margin, int width, int height);

}  // namespace vigil::video
