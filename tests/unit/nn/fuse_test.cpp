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

TEST(ChannelsLast, SameOutputsAndGradientsWithNhwcWeights) {
  torch::manual_seed(5);
  auto model = make_classifier("mobilenet_v3_small", 4);
  randomize_norms(*model);
  const auto x = torch::rand({8, 3, 64, 80});
  const auto y = torch::tensor({1, 3, 0, 2, 2, 1, 0, 3});
  model->train();
  auto loss_of = [&](const torch::Tensor& input) {
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
    torch::manual_seed(11);  // the same dropout mask in both passes
    auto loss = torch::nn::functional::cross_entropy(model->forward(input), y);
    loss.backward();
    return loss.item<double>();
  };
  // Train-mode batch norms normalise with batch statistics, so the running statistics they update in
  // between do not change the second pass: loss and gradients must agree up to rounding.
  const double before = loss_of(x);
  std::vector<torch::Tensor> grads_before;
  for (const auto& p : model->parameters()) grads_before.push_back(p.grad().clone());
  // 1x1 and depthwise weights are already both NCHW- and NHWC-contiguous (size-1 dimensions): only the
  // others need a copy.
  EXPECT_GE(to_channels_last(*model), 1);
  for (const auto& p : model->parameters()) {
    if (p.dim() == 4) {
      EXPECT_TRUE(p.is_contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
  EXPECT_EQ(to_channels_last(*model), 0) << "a second pass must find nothing left";
  const double after = loss_of(x.contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_NEAR(before, after, 1e-5 * std::max(1.0, std::abs(before)));
  // Relative L2 distance per parameter: NHWC kernels sum in another order. Biases right before a
  // train-mode batch norm have an analytic gradient of zero (rounding noise of ~1e-9), so the bound also
  // allows a millionth of the whole gradient's norm.
  double total = 0;
  for (const auto& g : grads_before) total += g.norm().pow(2).item<double>();
  total = std::sqrt(total);
  size_t i = 0;
  for (const auto& p : model->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    const auto& g0 = grads_before[i++];
    ASSERT_EQ(p.grad().sizes(), g0.sizes());
    EXPECT_LT((p.grad() - g0).norm().item<double>(), 1e-3 * g0.norm().item<double>() + 1e-6 * total)
        << "parameter " << i - 1 << " " << g0.sizes();
  }
  model->eval();
  torch::NoGradGuard no_grad;
  const auto reference = model->forward(x);
  EXPECT_LT((model->forward(x.contiguous(torch::MemoryFormat::ChannelsLast)) - reference)
                .abs()
                .max()
                .item<double>(),
            1e-5);
}

TEST(ChannelsLast, FoldedEvalOutputsMatchTheContiguousModel) {
  torch::manual_seed(6);
  auto model = make_classifier("resnet18", 3);
  randomize_norms(*model);
  model->eval();
  const auto x = torch::rand({2, 3, 64, 64});
  torch::NoGradGuard no_grad;
  const auto reference = model->forward(x);
  fold_batch_norms(*model);
  to_channels_last(*model);
  const auto fast = model->forward(x.contiguous(torch::MemoryFormat::ChannelsLast));
  const double scale = std::max(1.0, reference.abs().max().item<double>());
  EXPECT_LT((fast - reference).abs().max().item<double>(), 1e-4 * scale);
}

}  // namespace
}  // namespace vigil::nn
