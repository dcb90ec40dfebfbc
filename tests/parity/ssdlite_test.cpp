// Parity of the zoo's ssdlite320_mobilenet_v3_large with torchvision 0.14. tests/parity/gen_ssdlite.py builds
// the model with torchvision's builder (the reduced-tail model torchvision builds without pretrained weights,
// and the full-tail model of its ImageNet-backbone path), records the state_dict's keys and shapes,
// calibrates it so scores are spread out (no ties), saves its state_dict with torch.save and records (a)
// eval-mode detections of three images of different sizes and aspect ratios, run as one batch, and (b)
// training-mode losses with ground truth (SSD's matching and hard-negative mining draw nothing at random).
// Here the same weights are read with read_state_dict + load_state_dict (strict) and everything must agree:
// the same keys and shapes, the same detection count and labels, boxes within 1e-3 px, scores within 1e-4,
// losses within 1e-5 relative.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "parity/parity_util.h"
#include "tests_util.h"
#include "vigil/nn/detection/ssdlite.h"
#include "vigil/nn/weights.h"
#include "vigil/nn/zoo.h"

namespace vigil::testing {
namespace {

namespace fs = std::filesystem;

constexpr double kBoxTolerance = 1e-3;
constexpr double kScoreTolerance = 1e-4;
constexpr double kLossRelativeTolerance = 1e-5;
constexpr int kImages = 3;
constexpr const char* kName = "ssdlite320_mobilenet_v3_large";

/// What gen_ssdlite.py's CASES table says about each model.
struct Case {
  std::string dir;
  int num_classes;
  bool reduced_tail;
};

const Case kReducedTail{"reduced_tail", 91, true};
const Case kFullTail{"full_tail", 5, false};

nn::SSD build(const Case& c) {
  nn::ModelArgs args;
  args.num_classes = c.num_classes;
  return nn::make_ssdlite(kName, args, std::nullopt, c.reduced_tail);
}

class SSDLiteParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto python = reference_python();
    if (!python) return;
    // The generator runs with one intra-op thread per core; the same split keeps reduction orders (and hence
    // rounding) comparable.
    torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    dir_ = new TempDir();
    generated_ = run_generator(*python, "gen_ssdlite.py", dir_->path());
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
    const auto dict = nn::read_state_dict(dir_->path() / c.dir / "weights.pth");
    const auto report = nn::load_state_dict(model, dict);
    EXPECT_TRUE(report.missing.empty() && report.unexpected.empty()) << report.to_text();
  }

  void check_keys(const Case& c) {
    VIGIL_REQUIRE_TORCHVISION(python);
    ASSERT_TRUE(generated_) << "gen_ssdlite.py failed";
    std::ifstream in(dir_->path() / c.dir / "keys.json");
    const auto expected = nlohmann::json::parse(in);
    std::map<std::string, std::vector<int64_t>> want;
    for (const auto& entry : expected.at("keys")) {
      want[entry.at(0).get<std::string>()] = entry.at(1).get<std::vector<int64_t>>();
    }
    auto model = build(c);
    std::map<std::string, std::vector<int64_t>> got;
    int64_t params = 0;
    for (const auto& p : model->named_parameters()) {
      got[p.key()] = p.value().sizes().vec();
      params += p.value().numel();
    }
    for (const auto& b : model->named_buffers()) got[b.key()] = b.value().sizes().vec();
    std::cout << c.dir << ": " << got.size() << " state_dict entries (torchvision " << want.size() << "), "
              << params << " parameters (torchvision " << expected.at("num_params").get<int64_t>() << ")\n";
    EXPECT_EQ(params, expected.at("num_params").get<int64_t>()) << c.dir;
    for (const auto& [key, shape] : want) {
      auto it = got.find(key);
      if (it == got.end()) {
        ADD_FAILURE() << c.dir << ": missing " << key;
        continue;
      }
      EXPECT_EQ(it->second, shape) << c.dir << ": " << key;
    }
    for (const auto& [key, shape] : got) EXPECT_TRUE(want.count(key)) << c.dir << ": unexpected " << key;
  }

  void check_eval(const Case& c) {
    VIGIL_REQUIRE_TORCHVISION(python);
    ASSERT_TRUE(generated_) << "gen_ssdlite.py failed";
    auto model = build(c);
    load_weights(*model, c);
    model->eval();
    const auto io = load_tensors(dir_->path() / c.dir / "io");
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
      ASSERT_EQ(det.boxes.size(0), boxes.size(0)) << c.dir << " image" << i << " detection count";
      const double box_diff = max_abs_diff(det.boxes, boxes);
      const double score_diff = max_abs_diff(det.scores, io.at(prefix + "scores"));
      std::cout << kName << " " << c.dir << " image" << i << " " << images[i].sizes() << ": "
                << det.boxes.size(0) << " detections, max |box diff| = " << box_diff
                << " px, max |score diff| = " << score_diff << "\n";
      EXPECT_LE(box_diff, kBoxTolerance) << c.dir << " image" << i;
      EXPECT_LE(score_diff, kScoreTolerance) << c.dir << " image" << i;
      EXPECT_TRUE(torch::equal(det.labels, io.at(prefix + "labels"))) << c.dir << " image" << i << " labels";
    }
  }

  void check_train(const Case& c) {
    VIGIL_REQUIRE_TORCHVISION(python);
    ASSERT_TRUE(generated_) << "gen_ssdlite.py failed";
    auto model = build(c);
    load_weights(*model, c);
    model->train();
    const auto io = load_tensors(dir_->path() / c.dir / "io");
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
    ASSERT_EQ(out.losses.size(), 2u);
    for (const auto& [name, value] : out.losses) {
      ASSERT_TRUE(io.count(name)) << "unexpected loss " << name;
      const double expected = io.at(name).item<double>();
      const double got = value.item<double>();
      std::cout << kName << " " << c.dir << " " << name << " = " << got << " (torchvision " << expected
                << ", |diff| = " << std::abs(got - expected) << ")\n";
      EXPECT_NEAR(got, expected, kLossRelativeTolerance * std::max(1.0, std::abs(expected)))
          << c.dir << " " << name;
    }
  }

  static TempDir* dir_;
  static bool generated_;
  static std::map<std::string, torch::Tensor>* images_;
};

TempDir* SSDLiteParity::dir_ = nullptr;
bool SSDLiteParity::generated_ = false;
std::map<std::string, torch::Tensor>* SSDLiteParity::images_ = nullptr;

TEST_F(SSDLiteParity, ReducedTailKeysAndShapes) {
  check_keys(kReducedTail);
}
TEST_F(SSDLiteParity, ReducedTailDetections) {
  check_eval(kReducedTail);
}
TEST_F(SSDLiteParity, ReducedTailTrainingLosses) {
  check_train(kReducedTail);
}
TEST_F(SSDLiteParity, FullTailKeysAndShapes) {
  check_keys(kFullTail);
}
TEST_F(SSDLiteParity, FullTailDetections) {
  check_eval(kFullTail);
}
TEST_F(SSDLiteParity, FullTailTrainingLosses) {
  check_train(kFullTail);
}

}  // namespace
}  // namespace vigil::testing
