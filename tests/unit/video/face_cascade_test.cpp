// How often OpenCV's face cascades (Debian opencv-data), run through the watcher's FrameDetector interface,
// find the face of the mask dataset's face crops, masked and unmasked, each crop pasted into a larger frame
// so the face is not the whole image. Prints the rates per cascade and class; asserts only what the default
// cascade must do for the cascade stage to be usable at all (unmasked faces found). A cascade that misses
// masked faces biases every compliance figure: the rates here are what docs and bench/video.sh report.
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
#include "vigil/video/frame_detector.h"

namespace vigil::video {
namespace {

namespace fs = std::filesystem;

struct Rate {
  int found = 0, total = 0;
  double value() const { return total ? static_cast<double>(found) / total : 0; }
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

TEST(FaceCascade, FindsUnmaskedFacesAndReportsRatesPerClass) {
  VIGIL_REQUIRE_SHARED(masks, "masks");
  if (!fs::exists("/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"))
    GTEST_SKIP() << "opencv-data's cascades absent; skipping";
  const bool all = std::getenv("VIGIL_FACE_RATES_ALL") != nullptr;
  const std::vector<std::string> cascades = {
      "haarcascade_frontalface_default", "haarcascade_frontalface_alt2", "lbpcascade_frontalface_improved"};
  std::map<std::string, std::map<std::string, Rate>> rates;  // cascade -> class -> rate
  for (const std::string& name : cascades) {
    DetectConfig config;
    config.model = "opencv:" + name;
    config.opencv.min_size = 80;
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
        const auto boxes = detector->detect({frame});
        Rate& r = rates[name][cls];
        ++r.total;
        r.found += found_in(boxes[0], where);
      }
    }
  }
  for (const auto& [name, by_class] : rates) {
    std::cout << "[face rates] " << name << ": with_mask " << by_class.at("with_mask").found << "/"
              << by_class.at("with_mask").total << " = " << by_class.at("with_mask").value()
              << ", without_mask " << by_class.at("without_mask").found << "/"
              << by_class.at("without_mask").total << " = " << by_class.at("without_mask").value() << "\n";
  }
  const auto& base = rates.at("haarcascade_frontalface_default");
  EXPECT_GE(base.at("without_mask").value(), 0.75);
  EXPECT_GE(base.at("with_mask").total, 60);
}

}  // namespace
}  // namespace vigil::video
