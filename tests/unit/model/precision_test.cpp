// bf16 inference (nn/precision.h through model::Predictor): on real photographs (Debian opencv-doc's
// samples), a classifier's probabilities and a detector's boxes stay within a stated tolerance of float32;
// the weights are stored in bfloat16; a CPU without the instructions (simulated through VIGIL_CPU_FLAGS) is
// refused with a message naming the instruction set; unknown precisions name the valid ones.
//
// Tolerances: bfloat16 keeps 8 significant bits (about 2-3 decimal digits), so a probability may move by a
// few thousandths and a box corner by a fraction of a pixel per hundred pixels. Stated here as: probabilities
// within 0.02 and log-odds within 0.05 + 3%; each of float32's 20 best boxes has a bf16 box of the same class
// with IoU >= 0.9 whose score is within 0.02 (SSDlite); Faster R-CNN's feature maps within 3% (relative L2)
// of float32's. Faster R-CNN's boxes are not compared one by one here: with seeded random weights its RPN
// scores thousands of anchors almost equally, so which 150 proposals survive depends on the last bit. Its
// boxes on a real validation set are compared as COCO AP instead (bench/precision.sh).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "precision_util.h"
#include "vigil/core/cpu.h"
#include "vigil/core/error.h"
#include "vigil/model/model_file.h"
#include "vigil/model/predict.h"
#include "vigil/nn/detection/faster_rcnn.h"
#include "vigil/nn/precision.h"
#include "vigil/nn/zoo.h"

namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using vigil::model::LoadedModel;
using vigil::model::Prediction;
using vigil::model::PredictOptions;
using vigil::model::Predictor;
using vigil::precision_test::error_of;
using vigil::precision_test::seeded_model;
using vigil::precision_test::SimulatedCpu;

const fs::path kSamples = "/usr/share/doc/opencv-doc/examples/data";
const std::vector<std::string> kPhotos = {"baboon.jpg", "fruits.jpg", "messi5.jpg", "building.jpg"};

std::vector<Prediction> run(const std::string& arch, int num_classes, const std::string& precision,
                            const std::vector<cv::Mat>& photos) {
  PredictOptions o;
  o.precision = precision;
  o.score_threshold = 0;  // every box, so the comparison sees the detector's whole output
  Predictor p(seeded_model(arch, num_classes), o);
  std::vector<torch::Tensor> inputs;
  std::vector<Prediction> out(photos.size());
  std::vector<Prediction*> targets;
  for (size_t i = 0; i < photos.size(); ++i) {
    inputs.push_back(p.preprocess(photos[i]));
    out[i].width = photos[i].cols;
    out[i].height = photos[i].rows;
    targets.push_back(&out[i]);
  }
  p.predict(inputs, targets);
  return out;
}

std::vector<cv::Mat> photos() {
  std::vector<cv::Mat> out;
  for (const auto& name : kPhotos) {
    cv::Mat m = cv::imread((kSamples / name).string());
    if (!m.empty()) out.push_back(m);
  }
  return out;
}

double iou(const vigil::model::PredictedBox& a, const vigil::model::PredictedBox& b) {
  const double w = std::max(0.0f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const double h = std::max(0.0f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const double inter = w * h;
  const double uni = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return uni > 0 ? inter / uni : 0;
}

class Bf16Photos : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!vigil::cpu_info().has_bf16()) GTEST_SKIP() << "this CPU has neither avx512_bf16 nor amx_bf16";
    images_ = photos();
    if (images_.size() < 2) GTEST_SKIP() << "opencv-doc's sample photographs absent";
  }
  std::vector<cv::Mat> images_;
};

class Bf16 : public Bf16Photos, public ::testing::WithParamInterface<std::pair<std::string, int>> {};

TEST_P(Bf16, StaysWithinToleranceOfFloat32OnPhotographs) {
  const auto& [arch, classes] = GetParam();
  const std::vector<Prediction> fp32 = run(arch, classes, "fp32", images_);
  const std::vector<Prediction> bf16 = run(arch, classes, "bf16", images_);
  ASSERT_EQ(fp32.size(), bf16.size());
  for (size_t i = 0; i < fp32.size(); ++i) {
    SCOPED_TRACE(kPhotos[i]);
    if (!fp32[i].probs.empty()) {
      const auto& want = fp32[i].probs;
      const auto& got = bf16[i].probs;
      ASSERT_EQ(want.size(), got.size());
      for (size_t k = 0; k < want.size(); ++k) {
        EXPECT_NEAR(got[k], want[k], 0.02);
        // Seeded weights give nearly uniform probabilities, where 0.02 alone would let a lot through: the
        // logits (log-odds against class 0) must agree within 0.05 + 3%.
        const double odds_want = std::log(want[k]) - std::log(want[0]);
        const double odds_got = std::log(got[k]) - std::log(got[0]);
        EXPECT_NEAR(odds_got, odds_want, 0.05 + 0.03 * std::abs(odds_want)) << "class " << k;
      }
      continue;
    }
    ASSERT_FALSE(fp32[i].boxes.empty()) << "no boxes at score_threshold 0";
    ASSERT_FALSE(bf16[i].boxes.empty());
    const size_t n = std::min<size_t>(20, fp32[i].boxes.size());
    for (size_t b = 0; b < n; ++b) {
      const auto& want = fp32[i].boxes[b];
      double best = 0, score_gap = 1;
      for (const auto& got : bf16[i].boxes) {
        if (got.class_id != want.class_id) continue;
        const double o = iou(want, got);
        if (o > best) best = o, score_gap = std::abs(got.score - want.score);
      }
      EXPECT_GE(best, 0.9) << "float32 box " << b << " has no bf16 match";
      EXPECT_LE(score_gap, 0.02) << "float32 box " << b;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, Bf16,
                         ::testing::Values(std::make_pair("mask_small_cnn", 2),
                                           std::make_pair("mobilenet_v3_small", 3),
                                           std::make_pair("ssdlite320_mobilenet_v3_large", 3)),
                         [](const auto& info) { return info.param.first; });

double relative_l2(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kFloat32) - want).norm().item<double>() / std::max(1e-12, want.norm().item<double>());
}

TEST_F(Bf16Photos, FasterRcnnFeaturesStayWithinThreePercentAndItsBoxesStayInTheImage) {
  const std::string arch = "fasterrcnn_mobilenet_v3_large_320_fpn";
  auto reference = std::dynamic_pointer_cast<vigil::nn::FasterRCNNImpl>(seeded_model(arch, 3).module);
  auto reduced = std::dynamic_pointer_cast<vigil::nn::FasterRCNNImpl>(seeded_model(arch, 3).module);
  ASSERT_TRUE(reference && reduced);
  reference->eval();
  reduced->eval();
  vigil::nn::convert_weights_to_bf16(*reduced);
  const Predictor preprocessing(seeded_model(arch, 3), {});
  c10::InferenceMode inference;
  for (size_t i = 0; i < images_.size(); ++i) {
    SCOPED_TRACE(kPhotos[i]);
    const torch::Tensor x = preprocessing.preprocess(images_[i]);
    const auto batch = reference->transform->forward({x});
    const vigil::nn::FeatureMap want = reference->backbone->forward(batch.tensors);
    vigil::nn::FeatureMap got;
    {
      const vigil::nn::PrecisionGuard bf16(vigil::nn::Precision::kBf16);
      got = reduced->backbone->forward(batch.tensors);
    }
    ASSERT_EQ(got.size(), want.size());
    for (const auto& level : want) {
      EXPECT_EQ(got[level.key()].scalar_type(), torch::kBFloat16) << level.key();
      EXPECT_LT(relative_l2(got[level.key()], level.value()), 0.03) << "feature map " << level.key();
    }
  }
  const std::vector<Prediction> bf16 = run(arch, 3, "bf16", images_);
  for (size_t i = 0; i < bf16.size(); ++i) {
    ASSERT_FALSE(bf16[i].boxes.empty());
    for (const auto& b : bf16[i].boxes) {
      EXPECT_TRUE(std::isfinite(b.score) && b.score >= 0 && b.score <= 1) << b.score;
      EXPECT_TRUE(b.x1 >= 0 && b.y1 >= 0 && b.x2 <= images_[i].cols && b.y2 <= images_[i].rows &&
                  b.x1 <= b.x2 && b.y1 <= b.y2)
          << b.x1 << "," << b.y1 << "," << b.x2 << "," << b.y2;
    }
  }
}

TEST(Bf16Weights, ConvolutionAndLinearWeightsAreStoredInBfloat16) {
  LoadedModel m = seeded_model("fasterrcnn_mobilenet_v3_large_320_fpn", 3);
  m.module->eval();
  const int converted = vigil::nn::convert_weights_to_bf16(*m.module);
  EXPECT_GT(converted, 50);
  int64_t bf16 = 0, fp32 = 0;
  for (const auto& p : m.module->named_parameters()) {
    (p.value().scalar_type() == torch::kBFloat16 ? bf16 : fp32) += p.value().numel();
  }
  // Everything but the frozen norms' few parameters: the weights' memory is halved.
  EXPECT_GT(bf16, 50 * fp32) << bf16 << " bfloat16 and " << fp32 << " float32 parameters";
  EXPECT_EQ(vigil::nn::convert_weights_to_bf16(*m.module), 0) << "a second conversion finds nothing left";
}

TEST(Precision, ACpuWithoutTheInstructionsIsRefusedByName) {
  const SimulatedCpu cpu("fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni");
  EXPECT_FALSE(vigil::cpu_has("avx512_bf16"));
  PredictOptions o;
  o.precision = "bf16";
  const std::string message = error_of([&] { Predictor p(seeded_model("mask_small_cnn", 2), o); });
  EXPECT_THAT(message, AllOf(HasSubstr("avx512_bf16"), HasSubstr("amx_bf16"), HasSubstr("VIGIL_CPU_FLAGS"),
                             HasSubstr("precision fp32")));
  o.precision = "fp32";  // float32 needs nothing
  EXPECT_NO_THROW(Predictor(seeded_model("mask_small_cnn", 2), o));
}

TEST(Precision, EitherInstructionSetIsEnough) {
  {
    const SimulatedCpu cpu("avx512f avx512_bf16");
    EXPECT_NO_THROW(vigil::nn::check_precision_supported(vigil::nn::Precision::kBf16));
  }
  {
    const SimulatedCpu cpu("amx_tile amx_bf16");
    EXPECT_NO_THROW(vigil::nn::check_precision_supported(vigil::nn::Precision::kBf16));
  }
}

TEST(Precision, NamesTheValidValues) {
  EXPECT_EQ(vigil::nn::parse_precision("fp32"), vigil::nn::Precision::kFp32);
  EXPECT_EQ(vigil::nn::parse_precision("bf16"), vigil::nn::Precision::kBf16);
  EXPECT_EQ(vigil::nn::parse_precision("int8"), vigil::nn::Precision::kInt8);
  EXPECT_THAT(error_of([] { vigil::nn::parse_precision("fp16"); }),
              AllOf(HasSubstr("fp32, bf16 or int8"), HasSubstr("'fp16'")));
  PredictOptions o;
  o.precision = "half";
  EXPECT_THAT(error_of([&] { o.validate(); }), HasSubstr("'half'"));
}

}  // namespace
