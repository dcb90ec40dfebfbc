// Folding batch norms into convolutions for inference: outputs unchanged, every norm folded, train mode
// refused.

#include <gtest/gtest.h>

#include "vigil/core/error.h"
#include "vigil/nn/backbones/resnet.h"
#include "vigil/nn/frozen_batch_norm.h"
#include "vigil/nn/fuse.h"
#include "vigil/nn/zoo.h"

namespace vigil::nn {
namespace {

// Random affine parameters and running statistics, so a fold that ignored any of them would show.
int randomize_norms(torch::nn::Module& root) {
  torch::NoGradGuard no_grad;
  int n = 0;
  for (const auto& m : root.modules()) {
    torch::Tensor w, b, mean, var;
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      w = bn->weight, b = bn->bias, mean = bn->running_mean, var = bn->running_var;
    } else if (auto* fz = m->as<FrozenBatchNorm2dImpl>()) {
      w = fz->weight, b = fz->bias, mean = fz->running_mean, var = fz->running_var;
    } else {
      continue;
    }
    w.uniform_(0.5, 1.5);
    b.uniform_(-0.2, 0.2);
    mean.uniform_(-0.3, 0.3);
    var.uniform_(0.5, 2.0);
    ++n;
  }
  return n;
}

void expect_fold_keeps_outputs(torch::nn::Module& model, const std::function<torch::Tensor()>& run,
                               int expected_norms) {
  model.eval();
  const torch::Tensor before = run();
  EXPECT_EQ(fold_batch_norms(model), expected_norms);
  const torch::Tensor after = run();
  ASSERT_EQ(before.sizes(), after.sizes());
  const double scale = before.abs().max().item<double>();
  EXPECT_LT((before - after).abs().max().item<double>(), 1e-4 * std::max(1.0, scale));
  EXPECT_EQ(fold_batch_norms(model), 0) << "a second fold must find nothing left";
}

class FoldClassifiers : public ::testing::TestWithParam<std::string> {};

TEST_P(FoldClassifiers, OutputsUnchangedAndEveryNormFolded) {
  torch::manual_seed(3);
  auto model = make_classifier(GetParam(), 5);
  const int norms = randomize_norms(*model);
  ASSERT_GT(norms, 0);
  const auto x = torch::rand({2, 3, 96, 128});
  torch::NoGradGuard no_grad;
  expect_fold_keeps_outputs(
      *model, [&] { return model->forward(x); }, norms);
}

INSTANTIATE_TEST_SUITE_P(Zoo, FoldClassifiers,
                         ::testing::Values("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small",
                                           "mobilenet_v3_large"));

TEST(FoldBatchNorms, FrozenNormsOfADetectionStyleBody) {
  torch::manual_seed(4);
  auto opts = resnet_options(50);
  opts.include_top(false).norm(NormLayerOptions::frozen());
  ResNet body(opts);
  const int norms = randomize_norms(*body);
  const auto x = torch::rand({1, 3, 64, 96});
  torch::NoGradGuard no_grad;
  expect_fold_keeps_outputs(
      *body, [&] { return body->forward_stages(x).back(); }, norms);
}

TEST(FoldBatchNorms, RefusesTrainMode) {
  auto model = make_classifier("mobilenet_v3_small", 2);
  model->train();
  EXPECT_THROW(fold_batch_norms(*model), InvalidArgument);
  model->eval();
  EXPECT_GT(fold_batch_norms(*model), 0);
  model->train();
  torch::NoGradGuard no_grad;
  EXPECT_THROW(model->forward(torch::rand({2, 3, 64, 64})), InvalidArgument)
      << "a folded model must not silently train without its norms";
}

}  // namespace
}  // namespace vigil::nn
