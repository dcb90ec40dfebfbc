// Parity of vigil's face-api.js detectors (model/faceapi.h) with the npm package itself: gen_faceapi.mjs runs
// @vladmandic/face-api@1.7.15 in node (its bundled TF.js CPU backend) on the very RGB bytes written here, and
// both sides must find the same faces in the same order: boxes within 1 px, scores within 1e-3. The images
// are the mask dataset's face crops, as decoded (non-square, so the padding to a square and the un-padding of
// the boxes matter) and pasted into larger frames of both orientations, several faces each; the thresholds
// are lower than the package's 0.5 so that more, and weaker, boxes are compared.
//
// Skips when the weights (scripts/install-face-api.sh), the mask dataset or node are absent. The package
// comes from $VIGIL_FACEAPI_PACKAGE (an unpacked package folder) or `npm pack` (the registry or npm's cache).

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include "tests_util.h"
#include "vigil/model/faceapi.h"

namespace vigil::testing {
namespace {

using model::FaceApiDetector;
using model::FaceApiNet;
using model::FaceBox;

constexpr double kBoxTolerance = 1.0;  // pixels
constexpr double kScoreTolerance = 1e-3;

struct Case {
  FaceApiNet net;
  double score_threshold;
  int input_size;
};

const std::vector<Case> kCases = {
    {FaceApiNet::kTinyFaceDetector, 0.3, 416},
    {FaceApiNet::kTinyFaceDetector, 0.3, 224},
    {FaceApiNet::kSsdMobilenetV1, 0.3, 512},
};

cv::Mat read_image(const fs::path& file) {
  cv::Mat m = cv::imread(file.string(), cv::IMREAD_COLOR);
  if (m.empty()) ADD_FAILURE() << "cannot decode " << file;
  return m;
}

/// A smooth background with `faces` pasted at `where` (each resized to its rectangle).
cv::Mat compose(cv::Size size, const std::vector<cv::Mat>& faces, const std::vector<cv::Rect>& where) {
  cv::Mat frame(size, CV_8UC3);
  for (int y = 0; y < size.height; ++y)
    for (int x = 0; x < size.width; ++x)
      frame.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uchar>(80 + x * 90 / size.width),
                    static_cast<uchar>(100 + y * 60 / size.height), static_cast<uchar>(120 + (x + y) % 31));
  for (size_t i = 0; i < faces.size(); ++i)
    cv::resize(faces[i], frame(where[i]), where[i].size(), 0, 0, cv::INTER_AREA);
  return frame;
}

/// The test images (BGR): two crops as they are, a landscape frame with three faces and a portrait one.
std::vector<cv::Mat> test_images(const fs::path& masks) {
  const cv::Mat m0 = read_image(masks / "with_mask" / "0-with-mask.jpg");
  const cv::Mat m1 = read_image(masks / "with_mask" / "10-with-mask.jpg");
  const cv::Mat u0 = read_image(masks / "without_mask" / "1.jpg");
  const cv::Mat u1 = read_image(masks / "without_mask" / "10.jpg");
  if (m0.empty() || m1.empty() || u0.empty() || u1.empty()) return {};
  return {m0, u0,
          compose({640, 480}, {m1, u1, m0}, {{40, 120, 180, 200}, {300, 60, 140, 160}, {480, 300, 110, 130}}),
          compose({360, 480}, {u0, m1}, {{20, 30, 200, 230}, {150, 300, 150, 160}})};
}

nlohmann::json run_reference(const TempDir& dir, const std::vector<cv::Mat>& images) {
  nlohmann::json inputs;
  for (size_t i = 0; i < images.size(); ++i) {
    cv::Mat rgb;
    cv::cvtColor(images[i], rgb, cv::COLOR_BGR2RGB);
    const std::string file = std::to_string(i) + ".rgb";
    write_text(dir / file, std::string(reinterpret_cast<const char*>(rgb.data), rgb.total() * 3));
    inputs["images"].push_back({{"file", file}, {"width", rgb.cols}, {"height", rgb.rows}});
  }
  for (const Case& c : kCases)
    inputs["cases"].push_back({{"net", model::faceapi_net_name(c.net)},
                               {"score_threshold", c.score_threshold},
                               {"input_size", c.input_size}});
  write_text(dir / "inputs.json", inputs.dump());
  const fs::path script = fs::path(VIGIL_SOURCE_DIR) / "tests" / "parity" / "gen_faceapi.mjs";
  const auto [code, out] = run_shell("node '" + script.string() + "' '" + dir.path().string() + "'");
  if (code != 0) {
    ADD_FAILURE() << "gen_faceapi.mjs failed (" << code << "):\n" << out;
    return {};
  }
  std::ifstream in(dir / "faceapi.json");
  return nlohmann::json::parse(in);
}

TEST(FaceApiParity, BoxesAndScoresMatchThePackageInNode) {
  const fs::path manifest =
      model::faceapi_manifest_path(FaceApiNet::kSsdMobilenetV1, model::faceapi_weights_dir());
  if (!fs::exists(manifest))
    GTEST_SKIP() << "face-api.js weights absent (" << manifest << "); run scripts/install-face-api.sh";
  VIGIL_REQUIRE_SHARED(masks, "masks");
  if (run_shell("node --version").first != 0) GTEST_SKIP() << "node absent; skipping";
  const std::vector<cv::Mat> images = test_images(masks);
  ASSERT_FALSE(images.empty());
  TempDir dir;
  const nlohmann::json reference = run_reference(dir, images);
  ASSERT_TRUE(reference.contains("cases"));
  ASSERT_EQ(reference["cases"].size(), kCases.size());

  int compared = 0;
  double worst_box = 0, worst_score = 0;
  for (size_t k = 0; k < kCases.size(); ++k) {
    const Case& c = kCases[k];
    model::FaceApiOptions options;
    options.score_threshold = c.score_threshold;
    if (c.net == FaceApiNet::kTinyFaceDetector) options.input_size = c.input_size;
    FaceApiDetector detector(c.net, model::faceapi_manifest_path(c.net, model::faceapi_weights_dir()),
                             options);
    // One batch for all images: padding and resizing per image must not leak between them.
    const auto found = detector.detect(images);
    for (size_t i = 0; i < images.size(); ++i) {
      const auto& want = reference["cases"][k][i];
      const std::string where =
          model::faceapi_net_name(c.net) + "@" + std::to_string(c.input_size) + " image " + std::to_string(i);
      ASSERT_EQ(found[i].size(), want.size()) << where;
      for (size_t j = 0; j < want.size(); ++j) {
        const FaceBox& b = found[i][j];
        EXPECT_NEAR(b.x1, want[j]["x1"].get<double>(), kBoxTolerance) << where << " box " << j;
        EXPECT_NEAR(b.y1, want[j]["y1"].get<double>(), kBoxTolerance) << where << " box " << j;
        EXPECT_NEAR(b.x2, want[j]["x2"].get<double>(), kBoxTolerance) << where << " box " << j;
        EXPECT_NEAR(b.y2, want[j]["y2"].get<double>(), kBoxTolerance) << where << " box " << j;
        EXPECT_NEAR(b.score, want[j]["score"].get<double>(), kScoreTolerance) << where << " box " << j;
        for (const auto& [mine, key] : {std::pair{b.x1, "x1"}, {b.y1, "y1"}, {b.x2, "x2"}, {b.y2, "y2"}})
          worst_box = std::max(worst_box, std::abs(mine - want[j][key].get<double>()));
        worst_score = std::max(worst_score, std::abs(b.score - want[j]["score"].get<double>()));
        ++compared;
      }
    }
  }
  std::cout << "[faceapi parity] " << compared << " boxes compared; largest differences: " << worst_box
            << " px, score " << worst_score << " (tf.js " << reference.value("tf", "?") << ")\n";
  // Every image has at least one face both sides must find, per case.
  EXPECT_GE(compared, static_cast<int>(kCases.size() * images.size()));
}

}  // namespace
}  // namespace vigil::testing
