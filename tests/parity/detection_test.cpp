// Parity of the zoo's Faster R-CNN detectors with torchvision 0.14. tests/parity/gen_detection.py builds each
// model with torchvision's builder, calibrates it so scores are spread out (no ties), saves its state_dict
// with torch.save and records (a) eval-mode detections of three images of different sizes and aspect ratios,
// run as one batch, and (b) training-mode losses with every RPN and ROI candidate sampled (so no random draw
// matters). Here the same weights are read with read_state_dict + load_state_dict (strict) and both must
// agree: same detection count and labels, boxes within 1e-3 px, scores within 1e-4, losses within 1e-4.

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "parity/parity_util.h"
#include "tests_util.h"
#include "vigil/nn/detection/faster_rcnn.h"
#include "vigil/nn/weights.h"
#include "vigil/nn/zoo.h"

namespace vigil::testing {
namespace {

namespace fs = std::filesystem;

constexpr double kBoxTolerance = 1e-3;
constexpr double kScoreTolerance = 1e-4;
constexpr double kLossTolerance = 1e-4;
constexpr int kImages = 3;

/// What gen_detection.py's CASES table says about each model.
struct Case {
  std::string name;
  int num_classes;
  bool pretrained_backbone;
};

const Case kResNet50{"fasterrcnn_resnet50_fpn", 91, false};
const Case kMobileNet{"fasterrcnn_mobilenet_v3_large_fpn", 91, false};
const Case kMobileNet320{"fasterrcnn_mobilenet_v3_large_320_fpn", 5, true};

nn::ModelArgs args_of(const Case& c) {
  nn::ModelArgs args;
  args.num_classes = c.num_classes;
  args.pretrained_backbone = c.pretrained_backbone;
  return args;
}

class DetectionParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto python = reference_python();
    if (!python) return;
    // The generator runs with one intra-op thread per core; the same split keeps reduction orders (and hence
    // rounding) comparable.
    torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    dir_ = new TempDir();
    generated_ = run_generator(*python, "gen_detection.py", dir_->path());
    if (generated_) images_ = new std::map<std::string, torch::Tensor>(load_tensors(dir_->path() / "images"));
  }
  static void TearDownTestSuite() {
    delete images_;
    images_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  static torch::Tensor image(int i) { return images_->at("image" + std::to_string(i)); }

  static void load_weights(torch::nn::Module& model, const Case& c) {
    const auto dict = nn::read_state_dict(dir_->path() / c.name / "weights.pth");
    const auto report = nn::load_state_dict(model, dict);
    EXPECT_TRUE(report.missing.empty() && report.unexpected.empty()) << report.to_text();
  }

  void check_eval(const Case& c) {
    VIGIL_REQUIRE_TORCHVISION(python);
    ASSERT_TRUE(generated_) << "gen_detection.py failed";
    auto model = nn::make_detector(c.name, args_of(c));
    load_weights(*model, c);
    model->eval();
    const auto io = load_tensors(dir_->path() / c.name / "io");
    std::vector<torch::Tensor> images;
    for (int i = 0; i < kImages; ++i) images.push_back(image(i));

    torch::NoGradGuard no_grad;
    const auto out = model->forward(images);
    ASSERT_EQ(out.detections.size(), images.size());
    EXPECT_TRUE(out.losses.empty());
    for (int i = 0; i < kImages; ++i) {
      const auto prefix = "det" + std::to_string(i) + "_";
      const auto& det = out.detections[i];
      const auto& boxes = io.at(prefix + "boxes");
      ASSERT_EQ(det.boxes.size(0), boxes.size(0)) << c.name << " image" << i << " detection count";
      const double box_diff = max_abs_diff(det.boxes, boxes);
      const double score_diff = max_abs_diff(det.scores, io.at(prefix + "scores"));
      std::cout << c.name << " image" << i << " " << images[i].sizes() << ": " << det.boxes.size(0)
                << " detections, max |box diff| = " << box_diff << " px, max |score diff| = " << score_diff
                << "\n";
      EXPECT_LE(box_diff, kBoxTolerance) << c.name << " image" << i;
      EXPECT_LE(score_diff, kScoreTolerance) << c.name << " image" << i;
      EXPECT_TRUE(torch::equal(det.labels, io.at(prefix + "labels"))) << c.name << " image" << i << " labels";
    }
  }

  void check_train(const Case& c) {
    VIGIL_REQUIRE_TORCHVISION(python);
    ASSERT_TRUE(generated_) << "gen_detection.py failed";
    // gen_detection.py's SAMPLE_ALL: every anchor and proposal is sampled.
    auto options = nn::faster_rcnn_defaults(c.name)
                       .rpn_batch_size_per_image(10'000'000)
                       .rpn_positive_fraction(1.0)
                       .box_batch_size_per_image(10'000'000)
                       .box_positive_fraction(1.0);
    auto model = nn::make_faster_rcnn(c.name, args_of(c), options);
    load_weights(*model, c);
    model->train();
    const auto io = load_tensors(dir_->path() / c.name / "io");
    const auto indices = io.at("train_images");
    std::vector<torch::Tensor> images;
    std::vector<nn::DetectionTarget> targets;
    for (int64_t k = 0; k < indices.size(0); ++k) {
      const int i = static_cast<int>(indices[k].item<int64_t>());
      images.push_back(image(i));
      targets.push_back(
          {images_->at("boxes" + std::to_string(i)), io.at("train_labels" + std::to_string(k))});
    }

    torch::NoGradGuard no_grad;
    torch::manual_seed(0);
    const auto out = model->forward(images, &targets);
    EXPECT_TRUE(out.detections.empty());
    ASSERT_EQ(out.losses.size(), 4u);
    for (const auto& [name, value] : out.losses) {
      ASSERT_TRUE(io.count(name)) << "unexpected loss " << name;
      const double expected = io.at(name).item<double>();
      const double got = value.item<double>();
      std::cout << c.name << " " << name << " = " << got << " (torchvision " << expected
                << ", |diff| = " << std::abs(got - expected) << ")\n";
      EXPECT_NEAR(got, expected, kLossTolerance) << c.name << " " << name;
    }
  }

  static TempDir* dir_;
  static bool generated_;
  static std::map<std::string, torch::Tensor>* images_;
};

TempDir* DetectionParity::dir_ = nullptr;
bool DetectionParity::generated_ = false;
std::map<std::string, torch::Tensor>* DetectionParity::images_ = nullptr;

TEST_F(DetectionParity, ResNet50FpnDetections) {
  check_eval(kResNet50);
}
TEST_F(DetectionParity, ResNet50FpnTrainingLosses) {
  check_train(kResNet50);
}
TEST_F(DetectionParity, MobileNetV3LargeFpnDetections) {
  check_eval(kMobileNet);
}
TEST_F(DetectionParity, MobileNetV3LargeFpnTrainingLosses) {
  check_train(kMobileNet);
}
TEST_F(DetectionParity, MobileNetV3Large320FpnFrozenBnDetections) {
  check_eval(kMobileNet320);
}
TEST_F(DetectionParity, MobileNetV3Large320FpnFrozenBnTrainingLosses) {
  check_train(kMobileNet320);
}

}  // namespace
}  // namespace vigil::testing
