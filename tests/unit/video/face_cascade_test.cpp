// How often OpenCV's face cascades (Debian opencv-data) and face-api.js's detectors (model/faceapi.h, when
// scripts/install-face-api.sh installed them), run through the watcher's FrameDetector interface, find the
// face of the mask dataset's face crops, masked and unmasked, each crop pasted into a larger frame so the
// face is not the whole image. Found two ways: a box whose centre lies on the pasted crop, and a box with
// IoU >= 0.5 to it (low for every detector: the crops are photos, not face boxes; see below). Prints the
// rates per detector and class; asserts what the cascade stage needs: Haar finds unmasked faces, and
// faceapi:ssd_mobilenetv1 (the face-mask default) finds masked and unmasked ones alike. A detector that
// misses masked faces biases every compliance figure: the rates here are what docs and bench/video.sh report.
//
// Every 8th image by default (seconds); VIGIL_FACE_RATES_ALL=1 measures all of them (bench/video.sh). The
// faces are 200 px high, so the cascades search from 80 px up (min_size; smaller windows only cost time).

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>

#include "tests_util.h"
#include "unit/video/watch_test_util.h"
#include "vigil/core/error.h"
#include "vigil/model/faceapi.h"
#include "vigil/video/frame_detector.h"
#include "vigil/video/geometry.h"

namespace vigil::video {
namespace {

namespace fs = std::filesystem;

struct Rate {
  int found = 0, matched = 0, total = 0;  // found: centre on the crop; matched: IoU >= 0.5
  double value() const { return total ? static_cast<double>(found) / total : 0; }
  double iou_value() const { return total ? static_cast<double>(matched) / total : 0; }
};

/// The crop scaled to 200 px high, pasted in the middle of a 480x360 frame; `where` gets its rectangle.
cv::Mat canvas_for(const cv::Mat& crop, cv::Rect& where) {
  const double scale = 200.0 / crop.rows;
  cv::Mat face;
  cv::resize(crop, face, {}, scale, scale, cv::INTER_AREA);
  if (face.cols > 440) cv::resize(face, face, {440, face.rows * 440 / face.cols}, 0, 0, cv::INTER_AREA);
  cv::Mat frame = vigil::testing::background({480, 360}, 0);
  where = cv::Rect((frame.cols - face.cols) / 2, (frame.rows - face.rows) / 2, face.cols, face.rows);
  face.copyTo(frame(where));
  return frame;
}

/// Found: a box whose centre lies on the pasted face crop.
bool found_in(const std::vector<Detection>& boxes, const cv::Rect& where) {
  return std::any_of(boxes.begin(), boxes.end(), [&](const Detection& d) {
    const cv::Point2f c(0.5f * (d.box.x1 + d.box.x2), 0.5f * (d.box.y1 + d.box.y2));
    return where.contains(cv::Point(static_cast<int>(c.x), static_cast<int>(c.y)));
  });
}

/// Matched: a box with IoU >= 0.5 to the pasted face crop.
bool matched_in(const std::vector<Detection>& boxes, const cv::Rect& where) {
  const Box truth{static_cast<float>(where.x), static_cast<float>(where.y), static_cast<float>(where.br().x),
                  static_cast<float>(where.br().y)};
  return std::any_of(boxes.begin(), boxes.end(),
                     [&](const Detection& d) { return iou(d.box, truth) >= 0.5; });
}

TEST(FaceCascade, FindsUnmaskedFacesAndReportsRatesPerClass) {
  VIGIL_REQUIRE_SHARED(masks, "masks");
  if (!fs::exists("/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"))
    GTEST_SKIP() << "opencv-data's cascades absent; skipping";
  const bool all = std::getenv("VIGIL_FACE_RATES_ALL") != nullptr;
  const std::vector<std::string> cascades = {
      "haarcascade_frontalface_default", "haarcascade_frontalface_alt2", "lbpcascade_frontalface_improved"};
  struct Spec {
    std::string name, model;
    int input_size = -1;  // tiny_face_detector's (< 0: 416)
  };
  std::vector<Spec> specs;
  for (const std::string& name : cascades) specs.push_back({"opencv:" + name, "opencv:" + name});
  const bool faceapi = fs::exists(
      model::faceapi_manifest_path(model::FaceApiNet::kSsdMobilenetV1, model::faceapi_weights_dir()));
  if (faceapi) {
    specs.push_back({"faceapi:tiny_face_detector", "faceapi:tiny_face_detector"});
    // The size docs/watch.md's cascade speed runs at (the whole cascade under 20 ms a frame).
    if (all) specs.push_back({"faceapi:tiny_face_detector@320", "faceapi:tiny_face_detector", 320});
    specs.push_back({"faceapi:ssd_mobilenetv1", "faceapi:ssd_mobilenetv1"});
  } else {
    std::cout << "[face rates] face-api.js weights absent (scripts/install-face-api.sh): not measured\n";
  }
  std::map<std::string, std::map<std::string, Rate>> rates;  // detector -> class -> rate
  for (const Spec& spec : specs) {
    const std::string& name = spec.name;
    DetectConfig config;
    config.model = spec.model;
    config.faceapi.input_size = spec.input_size;
    config.opencv.min_size = 80;
    config.score_threshold = 0.5;  // face-api.js's own default (the cascades have no scores)
    auto detector = make_frame_detector(config, "");
    for (const std::string cls : {"with_mask", "without_mask"}) {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(masks / cls)) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (size_t i = 0; i < files.size(); i += all ? 1 : 8) {
        const cv::Mat crop = cv::imread(files[i].string());
        if (crop.empty()) continue;
        cv::Rect where;
        const cv::Mat frame = canvas_for(crop, where);
        const auto boxes = detector->detect({frame}, {"test"});
        Rate& r = rates[name][cls];
        ++r.total;
        r.found += found_in(boxes[0], where);
        r.matched += matched_in(boxes[0], where);
      }
    }
  }
  for (const auto& [name, by_class] : rates) {
    for (const char* cls : {"with_mask", "without_mask"}) {
      const Rate& r = by_class.at(cls);
      std::cout << "[face rates] " << name << " " << cls << ": centre " << r.found << "/" << r.total << " = "
                << r.value() << ", IoU>=0.5 " << r.matched << "/" << r.total << " = " << r.iou_value()
                << "\n";
    }
  }
  const auto& base = rates.at("opencv:haarcascade_frontalface_default");
  EXPECT_GE(base.at("without_mask").value(), 0.75);
  EXPECT_GE(base.at("with_mask").total, 60);
  // Measured over all images: 0.90 masked, 0.98 unmasked (Haar: 0.66, 0.82; docs/watch.md has the table).
  // IoU with the pasted crop stays low for every detector (SSD: 0.06 and 0.03): a face box covers a third to
  // two thirds of these crops' sides (hair, neck and background around the face), so IoU >= 0.5 to the
  // crop's rectangle is printed, not asserted: it is not a face detector's measure.
  if (faceapi) {
    const auto& ssd = rates.at("faceapi:ssd_mobilenetv1");
    EXPECT_GE(ssd.at("with_mask").value(), 0.8);
    EXPECT_GE(ssd.at("without_mask").value(), 0.9);
    EXPECT_GT(ssd.at("with_mask").value(), base.at("with_mask").value());
  }
}

TEST(FaceApiSpec, UnknownNetsAndMissingWeightsAreNotFoundSayingWhatToDo) {
  DetectConfig config;
  config.model = "faceapi:ssd_mobilenet";
  try {
    make_frame_detector(config, "");
    ADD_FAILURE() << "no error for " << config.model;
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean faceapi:ssd_mobilenetv1"), std::string::npos)
        << e.what();
  }
  vigil::testing::TempDir empty;
  const char* old = std::getenv("VIGIL_FACEAPI_DIR");
  const std::string saved = old ? old : "";
  setenv("VIGIL_FACEAPI_DIR", empty.path().c_str(), 1);
  config.model = "faceapi:tiny_face_detector";
  try {
    make_frame_detector(config, "");
    ADD_FAILURE() << "no error for " << config.model << " without weights";
  } catch (const NotFound& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find((empty.path() / "tiny_face_detector_model-weights_manifest.json").string()),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("scripts/install-face-api.sh"), std::string::npos) << m;
  }
  if (old) {
    setenv("VIGIL_FACEAPI_DIR", saved.c_str(), 1);
  } else {
    unsetenv("VIGIL_FACEAPI_DIR");
  }
  config.model = "faceapi:" + (empty.path() / "blazeface-weights_manifest.json").string();
  EXPECT_THROW(make_frame_detector(config, ""), InvalidArgument);
}

}  // namespace
}  // namespace vigil::video
