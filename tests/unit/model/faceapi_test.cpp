// face-api.js's detectors (model/faceapi.h) on bad weight files and on real faces. Bad files are made here
// (a manifest and .bin of our own, or the installed ones copied and damaged), so every error must name the
// file that is wrong. Real faces: crops of the mask dataset pasted at known places into frames of different
// sizes, found by both detectors with IoU >= 0.5, in one batch and one by one alike. Without the installed
// weights (scripts/install-face-api.sh) or the mask dataset those tests skip. Exactness against the package
// itself is tests/parity/faceapi_test.cpp.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>
#include <fstream>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/model/faceapi.h"

namespace vigil::model {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using vigil::testing::TempDir;
using vigil::testing::write_text;

const char* const kTinyManifest = "tiny_face_detector_model-weights_manifest.json";

/// A manifest with one float32 weight "w" of `count` values, and its .bin of `bytes` bytes.
fs::path write_small(const TempDir& dir, int count, size_t bytes, const std::string& name = "w") {
  write_text(dir / "m.bin", std::string(bytes, '\0'));
  write_text(dir / kTinyManifest,
             fmt::format(R"([{{"paths": ["m.bin"], "weights": [{{"name": "{}", "shape": [{}],
                                                 "dtype": "float32"}}]}}])",
                         name, count));
  return dir / kTinyManifest;
}

template <class E>
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no " << typeid(E).name() << " thrown";
  return "";
}

TEST(FaceApiFiles, MissingManifestIsNotFoundNamingIt) {
  TempDir dir;
  const fs::path manifest = dir / kTinyManifest;
  const std::string m =
      message_of<NotFound>([&] { FaceApiDetector(FaceApiNet::kTinyFaceDetector, manifest); });
  EXPECT_THAT(m, HasSubstr(manifest.string()));
}

TEST(FaceApiFiles, MissingBinIsNotFoundNamingBothFiles) {
  TempDir dir;
  const fs::path manifest = write_small(dir, 2, 8);
  fs::remove(dir / "m.bin");
  const std::string m =
      message_of<NotFound>([&] { FaceApiDetector(FaceApiNet::kTinyFaceDetector, manifest); });
  EXPECT_THAT(m, HasSubstr(manifest.string()));
  EXPECT_THAT(m, HasSubstr((dir / "m.bin").string()));
}

TEST(FaceApiFiles, CorruptManifestIsDataErrorNamingIt) {
  TempDir dir;
  for (const std::string& text : {std::string("{not json"), std::string("{\"paths\": []}"), std::string("[]"),
                                  std::string(R"([{"paths": ["m.bin"]}])"),
                                  std::string(R"([{"paths": ["m.bin"], "weights": [{"name": "w", "shape": [2],
                                    "dtype": "float32", "quantization": {"dtype": "float16"}}]}])")}) {
    write_text(dir / "m.bin", std::string(8, '\0'));
    write_text(dir / kTinyManifest, text);
    const std::string m =
        message_of<DataError>([&] { FaceApiDetector(FaceApiNet::kTinyFaceDetector, dir / kTinyManifest); });
    EXPECT_THAT(m, HasSubstr((dir / kTinyManifest).string())) << text;
  }
}

TEST(FaceApiFiles, TruncatedOrOverlongBinIsDataErrorNamingIt) {
  TempDir dir;
  const std::string short_m =
      message_of<DataError>([&] { FaceApiDetector(FaceApiNet::kTinyFaceDetector, write_small(dir, 4, 10)); });
  EXPECT_THAT(short_m, HasSubstr("m.bin"));
  EXPECT_THAT(short_m, HasSubstr("truncated"));
  const std::string long_m =
      message_of<DataError>([&] { FaceApiDetector(FaceApiNet::kTinyFaceDetector, write_small(dir, 4, 20)); });
  EXPECT_THAT(long_m, HasSubstr("m.bin"));
  EXPECT_THAT(long_m, HasSubstr("20 bytes"));
}

TEST(FaceApiFiles, WeightsOfAnotherNetAreDataErrorNamingTheWeight) {
  TempDir dir;
  const fs::path manifest = write_small(dir, 4, 16, "MobilenetV1/Conv2d_0_pointwise/weights");
  const std::string m =
      message_of<DataError>([&] { FaceApiDetector(FaceApiNet::kTinyFaceDetector, manifest); });
  EXPECT_THAT(m, HasSubstr(manifest.string()));
  EXPECT_THAT(m, HasSubstr("conv0/filters"));
  // A tiny-detector file loaded as SSD: the first SSD weight is missing.
  const fs::path installed = faceapi_manifest_path(FaceApiNet::kTinyFaceDetector, faceapi_weights_dir());
  if (fs::exists(installed)) {
    const std::string ssd =
        message_of<DataError>([&] { FaceApiDetector(FaceApiNet::kSsdMobilenetV1, installed); });
    EXPECT_THAT(ssd, HasSubstr("MobilenetV1/Conv2d_0_pointwise/weights"));
  }
}

TEST(FaceApiFiles, BadOptionsAndNamesAreInvalidArgument) {
  FaceApiOptions o;
  o.input_size = 400;
  EXPECT_THAT(message_of<InvalidArgument>([&] { o.validate(); }), HasSubstr("input_size"));
  EXPECT_THAT(message_of<InvalidArgument>([&] { parse_faceapi_net("blazeface"); }),
              HasSubstr("tiny_face_detector, ssd_mobilenetv1"));
}

TEST(FaceApiFiles, WeightsFolderFollowsTheEnvironment) {
  const char* old = std::getenv("VIGIL_FACEAPI_DIR");
  const std::string saved = old ? old : "";
  setenv("VIGIL_FACEAPI_DIR", "/opt/faces", 1);
  EXPECT_EQ(faceapi_weights_dir(), fs::path("/opt/faces"));
  unsetenv("VIGIL_FACEAPI_DIR");
  EXPECT_EQ(faceapi_weights_dir(), fs::path(std::string(kDefaultFaceApiDir)));
  if (old) setenv("VIGIL_FACEAPI_DIR", saved.c_str(), 1);
}

/// Real faces at known places: two crops in a landscape frame, one in a portrait frame.
struct Scene {
  cv::Mat frame;
  std::vector<cv::Rect> faces;
};

std::vector<Scene> scenes(const fs::path& masks) {
  const cv::Mat masked = cv::imread((masks / "with_mask" / "10-with-mask.jpg").string());
  const cv::Mat bare = cv::imread((masks / "without_mask" / "10.jpg").string());
  if (masked.empty() || bare.empty()) return {};
  Scene a{cv::Mat(480, 640, CV_8UC3, cv::Scalar(90, 110, 120)), {{60, 100, 170, 200}, {380, 160, 150, 170}}};
  Scene b{cv::Mat(600, 360, CV_8UC3, cv::Scalar(150, 140, 120)), {{90, 250, 180, 210}}};
  cv::resize(masked, a.frame(a.faces[0]), a.faces[0].size(), 0, 0, cv::INTER_AREA);
  cv::resize(bare, a.frame(a.faces[1]), a.faces[1].size(), 0, 0, cv::INTER_AREA);
  cv::resize(masked, b.frame(b.faces[0]), b.faces[0].size(), 0, 0, cv::INTER_AREA);
  return {a, b};
}

/// The face of a pasted crop: a box inside the crop (give or take 15%) covering at least 8% of it. (Not IoU
/// with the crop: a face box covers about a third to two thirds of these crops' sides, which hold hair, neck
/// and background.)
bool is_face_of(const FaceBox& f, const cv::Rect& crop) {
  const double mx = 0.15 * crop.width, my = 0.15 * crop.height;
  const bool inside =
      f.x1 >= crop.x - mx && f.y1 >= crop.y - my && f.x2 <= crop.br().x + mx && f.y2 <= crop.br().y + my;
  return inside && (f.x2 - f.x1) * (f.y2 - f.y1) >= 0.08 * crop.area();
}

class FaceApiFaces : public ::testing::TestWithParam<FaceApiNet> {};

TEST_P(FaceApiFaces, FindsEveryPastedFaceAndNothingElseInABatchAsAlone) {
  const fs::path manifest = faceapi_manifest_path(GetParam(), faceapi_weights_dir());
  if (!fs::exists(manifest))
    GTEST_SKIP() << "face-api.js weights absent (" << manifest << "); run scripts/install-face-api.sh";
  VIGIL_REQUIRE_SHARED(masks, "masks");
  const auto all = scenes(masks);
  ASSERT_EQ(all.size(), 2u);
  FaceApiDetector detector(GetParam(), manifest);
  const auto batch = detector.detect({all[0].frame, all[1].frame});
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(batch[i].size(), all[i].faces.size()) << "scene " << i;
    for (const cv::Rect& face : all[i].faces) {
      const bool found = std::any_of(batch[i].begin(), batch[i].end(),
                                     [&](const FaceBox& f) { return is_face_of(f, face) && f.score > 0.5; });
      std::string boxes;
      for (const FaceBox& f : batch[i])
        boxes += fmt::format(" [{:.0f} {:.0f} {:.0f} {:.0f} {:.3f}]", f.x1, f.y1, f.x2, f.y2, f.score);
      EXPECT_TRUE(found) << "scene " << i << " face at " << face << "; boxes:" << boxes;
    }
    const auto alone = detector.detect({all[i].frame});
    ASSERT_EQ(alone[0].size(), batch[i].size());
    for (size_t j = 0; j < alone[0].size(); ++j) {
      EXPECT_NEAR(alone[0][j].x1, batch[i][j].x1, 1e-3);
      EXPECT_NEAR(alone[0][j].y2, batch[i][j].y2, 1e-3);
      EXPECT_NEAR(alone[0][j].score, batch[i][j].score, 1e-5);
    }
  }
  // A frame without faces gives none at the package's threshold.
  EXPECT_TRUE(detector.detect({cv::Mat(480, 640, CV_8UC3, cv::Scalar(90, 110, 120))})[0].empty());
}

INSTANTIATE_TEST_SUITE_P(Nets, FaceApiFaces,
                         ::testing::Values(FaceApiNet::kTinyFaceDetector, FaceApiNet::kSsdMobilenetV1),
                         [](const auto& info) { return faceapi_net_name(info.param); });

}  // namespace
}  // namespace vigil::model
