// Parity of Faster R-CNN's parts with torchvision 0.14: GeneralizedRCNNTransform, the ResNet-50 and
// MobileNetV3-Large FPN backbones (weights loaded strictly from the generator's .pth files, so every key
// and shape must match), AnchorGenerator and RegionProposalNetwork (eval proposals and losses).
// Reference: tests/parity/gen_detection_parts.py, run with Debian's python3-torchvision.

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "parity/parity_util.h"
#include "tests_util.h"
#include "vigil/nn/detection/anchor_generator.h"
#include "vigil/nn/detection/fpn.h"
#include "vigil/nn/detection/rpn.h"
#include "vigil/nn/detection/transform.h"
#include "vigil/nn/weights.h"

namespace vigil::testing {
namespace {

namespace fs = std::filesystem;
using TensorMap = std::map<std::string, torch::Tensor>;

constexpr double kPixelTolerance = 1e-3;  // proposals, in pixels
constexpr double kTolerance = 1e-4;       // losses, resized boxes, features (relative to their scale)

// The generator's constants (gen_detection_parts.py).
constexpr int64_t kMinSize = 320;
constexpr int64_t kMaxSize = 512;
constexpr uint64_t kTrainSeed = 1234;
const std::vector<std::array<int64_t, 2>> kImageSizes = {{320, 400}, {300, 416}};

nn::GeneralizedRCNNTransformOptions transform_options(std::vector<int64_t> min_size) {
  return nn::GeneralizedRCNNTransformOptions().min_size(std::move(min_size)).max_size(kMaxSize);
}

std::vector<std::array<int64_t, 2>> sizes_of(const torch::Tensor& t) {
  std::vector<std::array<int64_t, 2>> out;
  for (int64_t i = 0; i < t.size(0); ++i) out.push_back({t[i][0].item<int64_t>(), t[i][1].item<int64_t>()});
  return out;
}

// Max difference relative to the reference's scale (features grow large in a randomly initialised net).
double relative_diff(const torch::Tensor& actual, const torch::Tensor& expected) {
  return max_abs_diff(actual, expected) / std::max(1.0, expected.abs().max().item<double>());
}

class DetectionPartsParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto python = reference_python();
    if (!python) return;
    // The generator uses one intra-op thread per core; the same split keeps reduction orders comparable.
    torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    dir_ = new TempDir();
    generated_ = run_generator(*python, "gen_detection_parts.py", dir_->path());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static TensorMap load(const std::string& name) { return load_tensors(dir_->path() / name); }

  static nn::BackboneWithFPN load_backbone(const std::string& name) {
    // Trained from scratch in torchvision: BatchNorm2d and every layer trainable.
    const auto norm = nn::NormLayerOptions::for_detection(false);
    auto backbone =
        name == "resnet50" ? nn::resnet_fpn_backbone(50, norm, 5) : nn::mobilenet_v3_fpn_backbone(norm, 6);
    nn::load_state_dict(*backbone, nn::read_state_dict(dir_->path() / (name + "_fpn.pth")));
    backbone->eval();
    return backbone;
  }

  void check_backbone(const std::string& name) {
    auto backbone = load_backbone(name);
    auto features = load("features");
    torch::NoGradGuard no_grad;
    const auto out = backbone->forward(features.at("input"));
    std::vector<std::string> expected_names;
    for (const auto& [key, value] : features) {
      if (key.rfind(name + ".", 0) == 0) expected_names.push_back(key.substr(name.size() + 1));
    }
    auto names = out.keys();
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, expected_names);
    for (const auto& level : out.keys()) {
      const auto& expected = features.at(name + "." + level);
      const double diff = relative_diff(out[level], expected);
      std::cout << name << " level " << level << " " << expected.sizes() << " max |diff| / scale = " << diff
                << "\n";
      EXPECT_LE(diff, kTolerance) << name << " level " << level;
    }
  }

  void check_rpn(const std::string& name, const std::vector<std::vector<double>>& sizes,
                 double score_thresh) {
    auto features = load("features");
    auto io = load("rpn_" + name);
    nn::FeatureMap maps;
    for (const auto& level : name == "resnet50" ? std::vector<std::string>{"0", "1", "2", "3", "pool"}
                                                : std::vector<std::string>{"0", "1", "pool"}) {
      maps.insert(level, features.at(name + "." + level));
    }
    nn::AnchorGenerator anchors(sizes, std::vector<std::vector<double>>(sizes.size(), {0.5, 1.0, 2.0}));
    nn::RPNHead head(256, anchors->num_anchors_per_location()[0]);
    const auto options = nn::RegionProposalNetworkOptions()
                             .batch_size_per_image(1000000)
                             .score_thresh(score_thresh)
                             .pre_nms_top_n_test(1000)
                             .post_nms_top_n_test(1000);
    nn::RegionProposalNetwork rpn(anchors, head, options);
    nn::load_state_dict(*rpn, nn::read_state_dict(dir_->path() / (name + "_rpn.pth")));
    rpn->eval();
    const nn::ImageList images{features.at("input"), kImageSizes};

    torch::NoGradGuard no_grad;
    const auto all_anchors = rpn->anchor_generator->forward(images, maps.values());
    std::vector<nn::DetectionTarget> targets;
    for (size_t i = 0; i < kImageSizes.size(); ++i) {
      const auto suffix = std::to_string(i);
      EXPECT_TRUE(torch::equal(all_anchors[i], io.at("anchors" + suffix))) << name << " anchors " << i;
      const auto& boxes = io.at("targets" + suffix);
      targets.push_back({boxes, torch::ones({boxes.size(0)}, torch::kLong)});
    }
    const auto out = rpn->forward(images, maps);
    EXPECT_TRUE(out.losses.empty());
    for (size_t i = 0; i < kImageSizes.size(); ++i) {
      const auto suffix = std::to_string(i);
      const auto& expected = io.at("proposals" + suffix);
      ASSERT_EQ(out.proposals[i].sizes(), expected.sizes()) << name << " image " << i;
      const double diff = max_abs_diff(out.proposals[i], expected);
      const double score_diff = max_abs_diff(out.scores[i], io.at("scores" + suffix));
      std::cout << name << " image " << i << ": " << expected.size(0) << " proposals, max |diff| = " << diff
                << " px, scores " << score_diff << "\n";
      EXPECT_LE(diff, kPixelTolerance) << name << " image " << i;
      EXPECT_LE(score_diff, 1e-5) << name << " image " << i;
    }
    // Eval mode with targets: the validation-loss path gives torchvision's training losses (the head has no
    // mode-dependent layers, and sampling keeps every anchor).
    const auto with_loss = rpn->forward(images, maps, &targets);
    for (const char* key : {"loss_objectness", "loss_rpn_box_reg"}) {
      const double diff = max_abs_diff(with_loss.losses.at(key), io.at(key));
      std::cout << name << " " << key << " = " << with_loss.losses.at(key).item<double>()
                << " |diff| = " << diff << "\n";
      EXPECT_LE(diff, kTolerance) << name << " " << key;
    }
  }

  static TempDir* dir_;
  static bool generated_;
};

TempDir* DetectionPartsParity::dir_ = nullptr;
bool DetectionPartsParity::generated_ = false;

TEST_F(DetectionPartsParity, TransformResizesNormalisesAndPads) {
  VIGIL_REQUIRE_TORCHVISION(python);
  ASSERT_TRUE(generated_) << "gen_detection_parts.py failed";
  auto io = load("transform");
  nn::GeneralizedRCNNTransform transform(transform_options({kMinSize}));
  transform->eval();
  std::vector<torch::Tensor> images;
  std::vector<nn::DetectionTarget> targets;
  for (int i = 0; i < 3; ++i) {
    images.push_back(io.at("image" + std::to_string(i)));
    const auto& boxes = io.at("boxes" + std::to_string(i));
    targets.push_back({boxes, torch::ones({boxes.size(0)}, torch::kLong)});
  }
  const auto out = transform->forward(images, &targets);
  EXPECT_EQ(out.image_sizes, sizes_of(io.at("image_sizes")));
  ASSERT_EQ(out.tensors.sizes(), io.at("tensors").sizes());
  const double diff = max_abs_diff(out.tensors, io.at("tensors"));
  std::cout << "transform batch " << out.tensors.sizes() << " max |diff| = " << diff << "\n";
  EXPECT_LE(diff, 1e-5);
  for (int i = 0; i < 3; ++i) {
    EXPECT_LE(max_abs_diff(targets[i].boxes, io.at("resized_boxes" + std::to_string(i))), kTolerance) << i;
  }
}

TEST_F(DetectionPartsParity, TrainingTransformDrawsTheSameMinSizes) {
  VIGIL_REQUIRE_TORCHVISION(python);
  ASSERT_TRUE(generated_) << "gen_detection_parts.py failed";
  auto io = load("transform");
  nn::GeneralizedRCNNTransform transform(transform_options({256, 288, 320}));
  transform->train();
  std::vector<torch::Tensor> images;
  for (int i = 0; i < 3; ++i) images.push_back(io.at("image" + std::to_string(i)));
  torch::manual_seed(kTrainSeed);
  const auto out = transform->forward(images);
  EXPECT_EQ(out.image_sizes, sizes_of(io.at("train_image_sizes")));
  EXPECT_LE(max_abs_diff(out.tensors, io.at("train_tensors")), 1e-5);
}

TEST_F(DetectionPartsParity, ResNet50FpnFeatures) {
  VIGIL_REQUIRE_TORCHVISION(python);
  ASSERT_TRUE(generated_) << "gen_detection_parts.py failed";
  check_backbone("resnet50");
}

TEST_F(DetectionPartsParity, MobileNetV3FpnFeatures) {
  VIGIL_REQUIRE_TORCHVISION(python);
  ASSERT_TRUE(generated_) << "gen_detection_parts.py failed";
  check_backbone("mobilenet_v3");
}

TEST_F(DetectionPartsParity, ResNet50RpnAnchorsProposalsAndLosses) {
  VIGIL_REQUIRE_TORCHVISION(python);
  ASSERT_TRUE(generated_) << "gen_detection_parts.py failed";
  check_rpn("resnet50", {{32}, {64}, {128}, {256}, {512}}, 0.0);
}

TEST_F(DetectionPartsParity, MobileNetV3RpnAnchorsProposalsAndLosses) {
  VIGIL_REQUIRE_TORCHVISION(python);
  ASSERT_TRUE(generated_) << "gen_detection_parts.py failed";
  const std::vector<double> sizes = {32, 64, 128, 256, 512};
  check_rpn("mobilenet_v3", {sizes, sizes, sizes}, 0.05);
}

}  // namespace
}  // namespace vigil::testing
