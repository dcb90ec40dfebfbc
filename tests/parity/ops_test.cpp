// Parity of vigil::nn::ops with torchvision 0.14: gen_ops.py writes seeded inputs and torchvision's outputs,
// these tests recompute them in C++. Cases are discovered from the tensor names "<op>/<case>/<field>".

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "parity/parity_util.h"
#include "tests_util.h"
#include "vigil/nn/ops/boxes.h"
#include "vigil/nn/ops/nms.h"
#include "vigil/nn/ops/poolers.h"
#include "vigil/nn/ops/roi_align.h"

namespace vigil::nn::ops {
namespace {

using testing::max_abs_diff;
using Tensors = std::map<std::string, torch::Tensor>;

class OpsParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto python = testing::reference_python();
    if (!python) return;
    dir_ = std::make_unique<testing::TempDir>();
    if (testing::run_generator(*python, "gen_ops.py", dir_->path())) {
      tensors_ = std::make_unique<Tensors>(testing::load_tensors(dir_->path()));
    }
  }
  static void TearDownTestSuite() {
    tensors_.reset();
    dir_.reset();
  }

  void SetUp() override {
    VIGIL_REQUIRE_TORCHVISION(python);
    ASSERT_TRUE(tensors_) << "gen_ops.py failed";
  }

  static const torch::Tensor& at(const std::string& name) {
    const auto it = tensors_->find(name);
    if (it == tensors_->end()) throw std::runtime_error("missing reference tensor " + name);
    return it->second;
  }

  // Case names under "<op>/": every "<op>/<case>/<field>" entry contributes <case>.
  static std::set<std::string> cases(const std::string& op) {
    std::set<std::string> out;
    const std::string prefix = op + "/";
    for (const auto& [name, t] : *tensors_) {
      if (name.rfind(prefix, 0) != 0) continue;
      const auto rest = name.substr(prefix.size());
      out.insert(rest.substr(0, rest.find('/')));
    }
    return out;
  }

  static inline std::unique_ptr<testing::TempDir> dir_;
  static inline std::unique_ptr<Tensors> tensors_;
};

TEST_F(OpsParity, NmsKeepsIdenticalIndices) {
  const auto names = cases("nms");
  ASSERT_GE(names.size(), 10u);
  for (const auto& c : names) {
    const auto p = "nms/" + c + "/";
    const auto keep = nms(at(p + "boxes"), at(p + "scores"), at(p + "thr").item<double>());
    EXPECT_EQ(keep.scalar_type(), torch::kLong) << c;
    EXPECT_TRUE(torch::equal(keep, at(p + "keep")))
        << c << ": kept " << keep.numel() << ", torchvision " << at(p + "keep").numel();
  }
}

TEST_F(OpsParity, BatchedNmsKeepsIdenticalIndicesOnBothSidesOfTheSwitch) {
  const auto names = cases("batched_nms");
  ASSERT_GE(names.size(), 5u);
  for (const auto& c : names) {
    const auto p = "batched_nms/" + c + "/";
    const auto keep =
        batched_nms(at(p + "boxes"), at(p + "scores"), at(p + "idxs"), at(p + "thr").item<double>());
    EXPECT_EQ(keep.scalar_type(), torch::kLong) << c;
    EXPECT_TRUE(torch::equal(keep, at(p + "keep"))) << c;
  }
}

// Max |diff| of roi_align's output and input gradient against torchvision for one case.
double roi_align_case_diff(const std::string& c,
                           const std::function<const torch::Tensor&(const std::string&)>& at, bool has_grad) {
  const auto p = "roi_align/" + c + "/";
  const auto params = at(p + "params");
  const std::array<int64_t, 2> size = {params[0].item<int64_t>(), params[1].item<int64_t>()};
  const auto input = at(p + "input").clone().requires_grad_(true);
  const auto out = roi_align(input, at(p + "rois"), size, params[2].item<double>(), params[3].item<int64_t>(),
                             params[4].item<double>() != 0.0);
  double d = max_abs_diff(out, at(p + "out"));
  if (has_grad) {
    const auto gin = torch::autograd::grad({out}, {input}, {at(p + "gout")})[0];
    d = std::max(d, max_abs_diff(gin, at(p + "gin")));
  }
  return d;
}

TEST_F(OpsParity, RoiAlignForwardAndInputGradient) {
  const auto names = cases("roi_align");
  ASSERT_GE(names.size(), 25u);
  const int threads_before = at::get_num_threads();
  // The kernels split work across threads; results must not depend on how many there are.
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    double worst_f32 = 0;
    double worst_f64 = 0;
    for (const auto& c : names) {
      const bool f64 = at("roi_align/" + c + "/input").scalar_type() == torch::kFloat64;
      const double d = roi_align_case_diff(c, at, tensors_->count("roi_align/" + c + "/gin") > 0);
      EXPECT_LE(d, f64 ? 1e-10 : 1e-5) << c << " with " << threads << " threads";
      auto& worst = f64 ? worst_f64 : worst_f32;
      worst = std::max(worst, d);
    }
    std::cout << "roi_align (" << threads << " threads) max |diff| forward+gradient: float32 " << worst_f32
              << ", float64 " << worst_f64 << "\n";
  }
  at::set_num_threads(threads_before);
}

TEST_F(OpsParity, MultiScaleRoIAlignMatches) {
  torch::OrderedDict<std::string, torch::Tensor> features;
  for (const auto* name : {"0", "1", "2", "3", "pool"}) {
    features.insert(name, at(std::string("pooler_input/feat/") + name));
  }
  const std::vector<torch::Tensor> boxes = {at("pooler_input/boxes/0"), at("pooler_input/boxes/1")};
  std::vector<std::array<int64_t, 2>> shapes;
  const auto s = at("pooler_input/image_shapes");
  for (int64_t i = 0; i < s.size(0); ++i)
    shapes.push_back({s[i][0].item<int64_t>(), s[i][1].item<int64_t>()});

  const auto names = cases("pooler");
  ASSERT_EQ(names.size(), 4u);
  for (const auto& c : names) {
    const auto p = "pooler/" + c + "/";
    const auto config = at(p + "config");
    std::vector<std::string> featmaps;
    const auto ids = at(p + "names");
    for (int64_t i = 0; i < ids.numel(); ++i) featmaps.push_back(std::to_string(ids[i].item<int64_t>()));
    MultiScaleRoIAlign pooler(MultiScaleRoIAlignOptions(
        featmaps, {config[0].item<int64_t>(), config[1].item<int64_t>()}, config[2].item<int64_t>()));
    const auto out = pooler(features, boxes, shapes);
    const double d = max_abs_diff(out, at(p + "out"));
    EXPECT_LE(d, 1e-5) << c;
    EXPECT_TRUE(torch::equal(torch::tensor(pooler->scales(), torch::kFloat64), at(p + "scales"))) << c;
    std::cout << "MultiScaleRoIAlign " << c << " max |diff| " << d << "\n";
  }
}

TEST_F(OpsParity, BoxCoderEncodeAndDecode) {
  const auto names = cases("box_coder");
  ASSERT_EQ(names.size(), 4u);
  for (const auto& c : names) {
    const auto p = "box_coder/" + c + "/";
    const auto w = at(p + "weights");
    const BoxCoder coder(
        {w[0].item<double>(), w[1].item<double>(), w[2].item<double>(), w[3].item<double>()});
    const auto enc = coder.encode({at(p + "ref0"), at(p + "ref1")}, {at(p + "prop0"), at(p + "prop1")});
    ASSERT_EQ(enc.size(), 2u);
    EXPECT_LE(max_abs_diff(enc[0], at(p + "enc0")), 1e-5) << c;
    EXPECT_LE(max_abs_diff(enc[1], at(p + "enc1")), 1e-5) << c;
    const auto dec = coder.decode(at(p + "codes"), {at(p + "prop0"), at(p + "prop1")});
    const double d = max_abs_diff(dec, at(p + "dec"));
    EXPECT_LE(d, 1e-5 * std::max(1.0, at(p + "dec").abs().max().item<double>())) << c;
    EXPECT_EQ(dec.scalar_type(), at(p + "dec").scalar_type()) << c;
    std::cout << "BoxCoder " << c << " decode max |diff| " << d << "\n";
  }
}

TEST_F(OpsParity, BoxHelpersMatcherAndSampler) {
  EXPECT_LE(max_abs_diff(box_iou(at("boxes/a"), at("boxes/b")), at("boxes/iou")), 1e-6);
  EXPECT_TRUE(torch::equal(clip_boxes_to_image(at("boxes/a") * 1.3 - 10, {90, 70}), at("boxes/clip")));
  EXPECT_TRUE(torch::equal(remove_small_boxes(at("boxes/a"), 5.0), at("boxes/small")));

  const auto& iou = at("matcher/iou");
  EXPECT_TRUE(torch::equal(Matcher(0.7, 0.3, true)(iou), at("matcher/m_07_03_low")));
  EXPECT_TRUE(torch::equal(Matcher(0.5, 0.5, false)(iou), at("matcher/m_05_05")));

  // The same seed on the same global generator gives the same randperm draws as Python.
  const auto& matched = at("sampler/matched");
  torch::manual_seed(123);
  const auto [pos, neg] = BalancedPositiveNegativeSampler(64, 0.25)({matched, matched.slice(0, 0, 100)});
  EXPECT_TRUE(torch::equal(pos[0], at("sampler/pos0")));
  EXPECT_TRUE(torch::equal(neg[0], at("sampler/neg0")));
  EXPECT_TRUE(torch::equal(pos[1], at("sampler/pos1")));
  EXPECT_TRUE(torch::equal(neg[1], at("sampler/neg1")));
}

}  // namespace
}  // namespace vigil::nn::ops
