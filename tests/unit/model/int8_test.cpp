// int8 inference (nn/quantize.h through model::Predictor): calibrated on real photographs (Debian
// opencv-doc's samples), a quantised ResNet's features and a quantised Faster R-CNN's pyramid stay within a
// stated tolerance of float32 on other photographs; models without a ResNet backbone, a missing calibration
// set, unreadable calibration images and a CPU without VNNI (simulated through VIGIL_CPU_FLAGS) are refused
// with messages that say what to do.
//
// Tolerances: 8-bit activations keep about 2 significant digits per layer and the error compounds over a
// ResNet-50's 53 convolutions, so the comparison is on whole tensors, with seeded weights: a classifier's
// embedding (its pooled features, projected) within 5% relative L2 of float32's with cosine >= 0.999
// (measured 1.0-1.8%, cosine >= 0.9998); each Faster R-CNN FPN level within 10% with cosine >= 0.995
// (measured 4.9-5.5%, cosine >= 0.9986, calibrated on a single photograph). Accuracy and COCO AP on real
// validation splits are measured by bench/precision.sh, where trained weights exist.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "precision_util.h"
#include "vigil/core/cpu.h"
#include "vigil/core/error.h"
#include "vigil/model/model_file.h"
#include "vigil/model/predict.h"
#include "vigil/nn/backbones/resnet.h"
#include "vigil/nn/detection/faster_rcnn.h"
#include "vigil/nn/fuse.h"
#include "vigil/nn/precision.h"
#include "vigil/nn/quantize.h"
#include "vigil/nn/zoo.h"

namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using vigil::model::LoadedModel;
using vigil::model::PredictOptions;
using vigil::model::Predictor;
using vigil::precision_test::error_of;
using vigil::precision_test::seeded_model;
using vigil::precision_test::SimulatedCpu;

const fs::path kSamples = "/usr/share/doc/opencv-doc/examples/data";
// Calibrated on these, compared on the others: the quantisation must generalise, not fit its inputs.
const std::vector<std::string> kCalibration = {"aero1.jpg", "graf1.png", "home.jpg", "pic1.png"};
const std::vector<std::string> kCompared = {"baboon.jpg", "fruits.jpg", "messi5.jpg", "building.jpg"};

std::vector<cv::Mat> read_photos(const std::vector<std::string>& names) {
  std::vector<cv::Mat> out;
  for (const auto& name : names) {
    cv::Mat m = cv::imread((kSamples / name).string());
    if (!m.empty()) out.push_back(m);
  }
  return out;
}

double relative_l2(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).norm().item<double>() / std::max(1e-12, want.norm().item<double>());
}

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.flatten() * b.flatten()).sum().item<double>() /
         std::max(1e-12, a.norm().item<double>() * b.norm().item<double>());
}

/// A folder holding the calibration photographs (a list file would do too).
class Int8Photos : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!vigil::cpu_info().has_int8_dot()) GTEST_SKIP() << "this CPU has no VNNI instructions";
    compared_ = read_photos(kCompared);
    if (compared_.size() < 2 || read_photos(kCalibration).size() < 2)
      GTEST_SKIP() << "opencv-doc's sample photographs absent";
    dir_ = fs::temp_directory_path() / ("vigil_int8_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    for (const auto& name : kCalibration)
      if (fs::exists(kSamples / name)) fs::copy_file(kSamples / name, dir_ / name);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  PredictOptions int8_options() const {
    PredictOptions o;
    o.precision = "int8";
    o.calibration = dir_.string();
    return o;
  }
  std::vector<cv::Mat> compared_;
  fs::path dir_;
};

TEST_F(Int8Photos, ResNetFeaturesStayWithinFivePercentOfFloat32) {
  for (const std::string arch : {"resnet18", "resnet50"}) {
    SCOPED_TRACE(arch);
    PredictOptions fp32_options;
    fp32_options.embed = true;
    PredictOptions int8 = int8_options();
    int8.embed = true;
    Predictor reference(seeded_model(arch, 3), fp32_options);
    Predictor quantised(seeded_model(arch, 3), int8);
    for (size_t i = 0; i < compared_.size(); ++i) {
      SCOPED_TRACE(kCompared[i]);
      const torch::Tensor x = reference.preprocess(compared_[i]);
      vigil::model::Prediction want, got;
      reference.predict({x}, {&want});
      quantised.predict({x}, {&got});
      ASSERT_EQ(want.embedding.size(), got.embedding.size());
      const torch::Tensor w = torch::tensor(want.embedding);
      const torch::Tensor g = torch::tensor(got.embedding);
      std::printf("%s %s: embedding relative L2 %.4f, cosine %.5f\n", arch.c_str(), kCompared[i].c_str(),
                  relative_l2(g, w), cosine(g, w));
      EXPECT_LT(relative_l2(g, w), 0.05);
      EXPECT_GT(cosine(g, w), 0.999);
      ASSERT_EQ(got.probs.size(), 3u);
      EXPECT_NEAR(got.probs[0] + got.probs[1] + got.probs[2], 1.0, 1e-5);
    }
  }
}

TEST_F(Int8Photos, AQuantisedFasterRcnnFindsBoxesInsideTheImage) {
  PredictOptions o = int8_options();
  o.score_threshold = 0;  // every box
  Predictor quantised(seeded_model("fasterrcnn_resnet50_fpn", 3), o);
  for (size_t i = 0; i < compared_.size(); ++i) {
    SCOPED_TRACE(kCompared[i]);
    vigil::model::Prediction p;
    p.width = compared_[i].cols;
    p.height = compared_[i].rows;
    quantised.predict({quantised.preprocess(compared_[i])}, {&p});
    ASSERT_FALSE(p.boxes.empty());
    for (const auto& b : p.boxes) {
      EXPECT_TRUE(std::isfinite(b.score) && b.score >= 0 && b.score <= 1) << b.score;
      const float slack = 1e-3f;  // boxes are scaled back to the original size in float32
      EXPECT_TRUE(b.x1 >= 0 && b.y1 >= 0 && b.x2 <= p.width + slack && b.y2 <= p.height + slack &&
                  b.x1 <= b.x2 && b.y1 <= b.y2)
          << b.x1 << "," << b.y1 << "," << b.x2 << "," << b.y2;
    }
  }
}

TEST(Int8, TheBackboneAndPyramidOfAQuantisedDetectorRunInEightBits) {
  if (!vigil::cpu_info().has_int8_dot()) GTEST_SKIP() << "this CPU has no VNNI instructions";
  LoadedModel m = seeded_model("fasterrcnn_resnet50_fpn", 3);
  LoadedModel r = seeded_model("fasterrcnn_resnet50_fpn", 3);
  for (auto* model : {&m, &r}) {
    model->module->eval();
    vigil::nn::fold_batch_norms(*model->module);
  }
  auto frcnn = std::dynamic_pointer_cast<vigil::nn::FasterRCNNImpl>(m.module);
  auto ref = std::dynamic_pointer_cast<vigil::nn::FasterRCNNImpl>(r.module);
  const std::vector<cv::Mat> photos = read_photos(kCompared);
  if (photos.size() < 2) GTEST_SKIP() << "opencv-doc's sample photographs absent";
  const Predictor preprocessing(seeded_model("fasterrcnn_resnet50_fpn", 3), {});
  c10::InferenceMode inference;
  const torch::Tensor calib = preprocessing.preprocess(photos[0]);
  const int quantised = vigil::nn::quantize_int8(*m.module, [&] { frcnn->forward({calib}); });
  // 53 body convolutions (stem, 16 blocks' 3 + 4 downsamples), 8 FPN, 3 RPN head.
  EXPECT_EQ(quantised, 53 + 8 + 3);
  const auto batch = frcnn->transform->forward({preprocessing.preprocess(photos[1])});
  const vigil::nn::FeatureMap got = frcnn->backbone->forward(batch.tensors);
  const vigil::nn::FeatureMap want = ref->backbone->forward(batch.tensors);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& level : want) {
    SCOPED_TRACE(level.key());
    const torch::Tensor g = got[level.key()];
    EXPECT_TRUE(g.is_quantized()) << "level " << level.key() << " is " << c10::toString(g.scalar_type());
    const torch::Tensor gf = g.dequantize();
    std::printf("FPN level %s: relative L2 %.4f, cosine %.5f\n", level.key().c_str(),
                relative_l2(gf, level.value()), cosine(gf, level.value()));
    EXPECT_LT(relative_l2(gf, level.value()), 0.10);
    EXPECT_GT(cosine(gf, level.value()), 0.995);
  }
}

PredictOptions int8_on(const std::string& calibration) {
  PredictOptions o;
  o.precision = "int8";
  o.calibration = calibration;
  return o;
}

TEST(Int8, ACpuWithoutVnniIsRefusedByName) {
  const SimulatedCpu cpu("fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_bf16");
  const std::string message =
      error_of([&] { Predictor p(seeded_model("resnet18", 2), int8_on(kSamples.string())); });
  EXPECT_THAT(message,
              AllOf(HasSubstr("avx512_vnni"), HasSubstr("VIGIL_CPU_FLAGS"), HasSubstr("precision fp32")));
  const SimulatedCpu vnni("avx2 avx_vnni");
  EXPECT_NO_THROW(vigil::nn::check_precision_supported(vigil::nn::Precision::kInt8));
}

TEST(Int8, NeedsCalibrationImagesAndSaysSo) {
  EXPECT_THAT(error_of([] { int8_on("").validate(); }), HasSubstr("calibration"));
  PredictOptions o = int8_on("x");
  o.calibration_images = 0;
  EXPECT_THAT(error_of([&] { o.validate(); }), HasSubstr("calibration_images"));
}

TEST(Int8, ModelsWithoutAResNetBackboneAreRefusedBeforeCalibrating) {
  if (!vigil::cpu_info().has_int8_dot()) GTEST_SKIP() << "this CPU has no VNNI instructions";
  // The calibration folder does not even exist: the model is refused first.
  for (const std::string arch : {"mask_small_cnn", "fasterrcnn_mobilenet_v3_large_320_fpn"}) {
    EXPECT_THAT(error_of([&] { Predictor p(seeded_model(arch, 2), int8_on("/nonexistent/calibration")); }),
                AllOf(HasSubstr("ResNet backbone"), HasSubstr(arch), HasSubstr("fp32 or bf16")));
  }
}

TEST(Int8, MissingOrUnreadableCalibrationImagesAreNamed) {
  if (!vigil::cpu_info().has_int8_dot()) GTEST_SKIP() << "this CPU has no VNNI instructions";
  EXPECT_THAT(error_of([] { Predictor p(seeded_model("resnet18", 2), int8_on("/nonexistent/calibration")); }),
              HasSubstr("/nonexistent/calibration"));
  const fs::path dir = fs::temp_directory_path() / ("vigil_int8_bad_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "broken.jpg") << "not a jpeg";
  EXPECT_THAT(error_of([&] { Predictor p(seeded_model("resnet18", 2), int8_on(dir.string())); }),
              AllOf(HasSubstr("calibration"), HasSubstr("broken.jpg")));
  fs::remove_all(dir);
}

}  // namespace
