#pragma once
/// Face detectors of face-api.js (the npm package @vladmandic/face-api@1.7.15, MIT), run in LibTorch from the
/// package's own TF.js weight files: the tiny face detector (a TinyYolov2 of depthwise-separable
/// convolutions, 416 px input, five fixed anchors, ~190 KB) and SSD MobileNetV1 (trained on WIDER FACE, 512
/// px input, ~5.4 MB). Both are re-implemented op for op from the package's source (src/tinyYolov2,
/// src/ssdMobilenetv1): the same zero padding to a square at the bottom/right, TF's legacy bilinear resize,
/// TF "same" padding, the same box decoding and the same greedy NMS, so boxes agree with the JS package to a
/// fraction of a pixel (tests/parity/faceapi_test.cpp runs the package in node and compares).
///
/// Unlike OpenCV's Haar cascades they find masked faces (measured in tests/unit/video/face_cascade_test.cpp).
/// The weights are not in the repository: scripts/install-face-api.sh fetches the pinned package with npm,
/// checks the two models' SHA-256 and installs them to kDefaultFaceApiDir. torch stays out of this header.

#include <opencv2/core.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::model {

/// Where scripts/install-face-api.sh puts the weights; VIGIL_FACEAPI_DIR replaces it.
inline constexpr std::string_view kDefaultFaceApiDir = "/usr/local/share/vigil/face-api";

/// The two detectors, named as the package names its weight files (NAME_model-weights_manifest.json).
enum class FaceApiNet { kTinyFaceDetector, kSsdMobilenetV1 };

/// "tiny_face_detector" or "ssd_mobilenetv1".
std::string faceapi_net_name(FaceApiNet net);
/// The inverse; InvalidArgument listing both names otherwise.
FaceApiNet parse_faceapi_net(const std::string& name);
/// Every name parse_faceapi_net accepts.
std::vector<std::string> faceapi_net_names();

/// $VIGIL_FACEAPI_DIR when set, else kDefaultFaceApiDir.
std::filesystem::path faceapi_weights_dir();
/// DIR/NAME_model-weights_manifest.json (the .bin it lists lies beside it).
std::filesystem::path faceapi_manifest_path(FaceApiNet net, const std::filesystem::path& dir);

/// How a FaceApiDetector runs. Negative values keep the package's defaults.
struct FaceApiOptions {
  double score_threshold = 0.5;  ///< boxes scoring at most this are dropped (the package's default: 0.5)
  double nms_iou = -1;           ///< greedy NMS IoU (< 0: the package's, 0.4 tiny and 0.5 SSD)
  int max_detections = -1;       ///< boxes per image (< 0: the package's 100 for SSD; tiny has no cap)
  /// The tiny detector's square input side, a multiple of 32 (< 0: the package's 416; smaller is faster and
  /// misses small faces). SSD MobileNetV1 always runs at 512.
  int input_size = -1;
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

/// One face, in the pixels of the image it was found in.
struct FaceBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float score = 0;
};

/// One face-api.js detector with its weights loaded. Not thread-safe (one forward pass at a time).
class FaceApiDetector {
 public:
  /// Loads `manifest` (a TF.js weights manifest of `net`) and the .bin files it lists. Throws NotFound (a
  /// file missing), DataError (a file that is not what the manifest says, or a weight the net needs absent
  /// or misshapen), naming the file.
  FaceApiDetector(FaceApiNet net, const std::filesystem::path& manifest, const FaceApiOptions& options = {});
  ~FaceApiDetector();
  FaceApiDetector(const FaceApiDetector&) = delete;
  FaceApiDetector& operator=(const FaceApiDetector&) = delete;

  FaceApiNet net() const;
  /// The square side every image is padded and resized to (416 or the option; 512 for SSD).
  int input_size() const;
  /// Detects faces in every image (8-bit, 3 channels; BGR as OpenCV decodes, or RGB with `rgb`) in one
  /// forward pass; result i belongs to images[i], best score first.
  std::vector<std::vector<FaceBox>> detect(const std::vector<cv::Mat>& images, bool rgb = false);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::model
