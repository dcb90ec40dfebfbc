// Parity of the zoo's classifiers with torchvision 0.14: the reference state_dict is copied into the C++
// model by name (names and shapes must match both ways), then eval-mode logits must agree within 1e-4.
// Reference: tests/parity/gen_classifiers.py, run with Debian's python3-torchvision.

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include "parity/parity_util.h"
#include "tests_util.h"
#include "vigil/nn/zoo.h"

namespace vigil::testing {
namespace {

namespace fs = std::filesystem;

constexpr double kTolerance = 1e-4;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Copies `reference` into `model` by name; every reference key must exist with the same shape, and every
/// model tensor must be in the reference (num_batches_tracked aside).
void load_by_name(torch::nn::Module& model, const std::map<std::string, torch::Tensor>& reference) {
  std::map<std::string, torch::Tensor> mine;
  for (auto& p : model.named_parameters()) mine[p.key()] = p.value();
  for (auto& b : model.named_buffers()) mine[b.key()] = b.value();
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : reference) {
    auto it = mine.find(name);
    if (it == mine.end()) {
      ADD_FAILURE() << "reference key missing in the C++ model: " << name;
      continue;
    }
    ASSERT_EQ(it->second.sizes(), tensor.sizes()) << name;
    it->second.copy_(tensor);
  }
  for (const auto& [name, tensor] : mine) {
    if (!reference.count(name) && !ends_with(name, "num_batches_tracked"))
      ADD_FAILURE() << "C++ model tensor not in the reference: " << name;
  }
}

class ClassifierParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto python = reference_python();
    if (!python) return;
    // The generator runs with one intra-op thread per core; the same split keeps reduction orders (and hence
    // rounding) comparable.
    torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    dir_ = new TempDir();
    generated_ = run_generator(*python, "gen_classifiers.py", dir_->path());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void check(const std::string& arch, int num_classes) {
    VIGIL_REQUIRE_TORCHVISION(python);
    ASSERT_TRUE(generated_) << "gen_classifiers.py failed";
    const fs::path case_dir = dir_->path() / (arch + "_" + std::to_string(num_classes));
    auto model = nn::make_classifier(arch, num_classes);
    load_by_name(*model, load_tensors(case_dir / "state"));
    model->eval();
    auto io = load_tensors(case_dir / "io");
    torch::NoGradGuard no_grad;
    for (int i = 0; i < 2; ++i) {
      const auto& input = io.at("input" + std::to_string(i));
      const auto& expected = io.at("logits" + std::to_string(i));
      auto logits = model->forward(input);
      const double diff = max_abs_diff(logits, expected);
      std::cout << arch << ":" << num_classes << " input" << i << " " << input.sizes()
                << " max |diff| = " << diff << "\n";
      EXPECT_LE(diff, kTolerance) << arch << " input" << i;
    }
  }

  static TempDir* dir_;
  static bool generated_;
};

TempDir* ClassifierParity::dir_ = nullptr;
bool ClassifierParity::generated_ = false;

TEST_F(ClassifierParity, MobileNetV2) {
  check("mobilenet_v2", 1000);
}
TEST_F(ClassifierParity, MobileNetV2TwoClasses) {
  check("mobilenet_v2", 2);
}
TEST_F(ClassifierParity, MobileNetV3Large) {
  check("mobilenet_v3_large", 1000);
}
TEST_F(ClassifierParity, MobileNetV3LargeTwoClasses) {
  check("mobilenet_v3_large", 2);
}
TEST_F(ClassifierParity, MobileNetV3Small) {
  check("mobilenet_v3_small", 1000);
}
TEST_F(ClassifierParity, MobileNetV3SmallTwoClasses) {
  check("mobilenet_v3_small", 2);
}
TEST_F(ClassifierParity, ResNet18) {
  check("resnet18", 1000);
}
TEST_F(ClassifierParity, ResNet18TwoClasses) {
  check("resnet18", 2);
}
TEST_F(ClassifierParity, ResNet50) {
  check("resnet50", 1000);
}
TEST_F(ClassifierParity, ResNet50TwoClasses) {
  check("resnet50", 2);
}
TEST_F(ClassifierParity, MaskSmallCnn) {
  check("mask_small_cnn", 2);
}
TEST_F(ClassifierParity, MaskSmallCnnThreeClasses) {
  check("mask_small_cnn", 3);
}

}  // namespace
}  // namespace vigil::testing
