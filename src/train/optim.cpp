#include "vigil/train/optim.h"

#include <torch/nn/utils/clip_grad.h>
#include <torch/optim.h>

#include <algorithm>
#include <cmath>

#include "vigil/core/error.h"

namespace vigil::train {
namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> kNames = {"sgd", "adam", "adamw"};
  return kNames;
}

void OptimizerOptions::validate() const {
  const auto& names = optimizer_names();
  VIGIL_CHECK(std::find(names.begin(), names.end(), name) != names.end(),
              "expected optimizer.name to be one of {}, got '{}'", join(names), name);
  VIGIL_CHECK(std::isfinite(lr) && lr > 0, "expected optimizer.lr > 0, got {}", lr);
  VIGIL_CHECK(momentum >= 0 && momentum < 1, "expected optimizer.momentum in [0, 1), got {}", momentum);
  VIGIL_CHECK(weight_decay >= 0, "expected optimizer.weight_decay >= 0, got {}", weight_decay);
  VIGIL_CHECK(!(nesterov && name == "sgd" && momentum == 0),
              "expected optimizer.momentum > 0 with nesterov, got momentum 0");
  VIGIL_CHECK(beta1 >= 0 && beta1 < 1, "expected optimizer.beta1 in [0, 1), got {}", beta1);
  VIGIL_CHECK(beta2 >= 0 && beta2 < 1, "expected optimizer.beta2 in [0, 1), got {}", beta2);
  VIGIL_CHECK(eps > 0, "expected optimizer.eps > 0, got {}", eps);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> params,
                                                        const OptimizerOptions& o) {
  o.validate();
  if (o.name == "sgd") {
    auto opts =
        torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay).nesterov(o.nesterov);
    return std::make_unique<torch::optim::SGD>(std::move(params), opts);
  }
  if (o.name == "adam") {
    auto opts = torch::optim::AdamOptions(o.lr)
                    .betas(std::make_tuple(o.beta1, o.beta2))
                    .eps(o.eps)
                    .weight_decay(o.weight_decay);
    return std::make_unique<torch::optim::Adam>(std::move(params), opts);
  }
  // validate() admitted only the names above, so this is adamw.
  auto opts = torch::optim::AdamWOptions(o.lr)
                  .betas(std::make_tuple(o.beta1, o.beta2))
                  .eps(o.eps)
                  .weight_decay(o.weight_decay);
  return std::make_unique<torch::optim::AdamW>(std::move(params), opts);
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  VIGIL_CHECK(max_norm > 0, "expected max_norm > 0 for gradient clipping, got {}", max_norm);
  return torch::nn::utils::clip_grad_norm_(params, max_norm, 2.0);
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  VIGIL_CHECK(std::isfinite(lr) && lr >= 0, "expected a learning rate >= 0, got {}", lr);
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

double get_lr(const torch::optim::Optimizer& optimizer, size_t group) {
  const auto& groups = optimizer.param_groups();
  VIGIL_CHECK(group < groups.size(), "expected a parameter group index below {}, got {}", groups.size(),
              group);
  return groups[group].options().get_lr();
}

}  // namespace vigil::train
