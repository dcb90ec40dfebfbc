#pragma once
/// Optimizers built from one Options struct (YAML `optimizer:` section and `--set optimizer.lr=...`),
/// gradient clipping and learning-rate setting shared by every trainer.

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <string>
#include <vector>

namespace vigil::train {

/// Which optimizer and its hyper-parameters. SGD reads lr, momentum, nesterov, weight_decay; Adam and AdamW
/// read lr, beta1, beta2, eps, weight_decay (AdamW's decay is decoupled, Adam's is L2 added to the gradient).
struct OptimizerOptions {
  std::string name = "adamw";  ///< sgd | adam | adamw
  double lr = 1e-3;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  bool nesterov = false;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;

  template <class V>
  void visit(V& v) {
    v("name", name, "optimizer: sgd, adam or adamw");
    v("lr", lr, "base learning rate (the schedule scales it)");
    v("momentum", momentum, "SGD momentum");
    v("weight_decay", weight_decay, "weight decay (decoupled for adamw)");
    v("nesterov", nesterov, "SGD Nesterov momentum (needs momentum > 0)");
    v("beta1", beta1, "Adam/AdamW first-moment decay");
    v("beta2", beta2, "Adam/AdamW second-moment decay");
    v("eps", eps, "Adam/AdamW denominator epsilon");
  }
  /// Range checks; throws InvalidArgument ("expected ..., got ...").
  void validate() const;
};

/// The optimizer names make_optimizer accepts, in documentation order.
const std::vector<std::string>& optimizer_names();

/// Builds the optimizer over `params` (one parameter group). Unknown name -> InvalidArgument listing the
/// valid names.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> params,
                                                        const OptimizerOptions& options);

/// Scales gradients so their total L2 norm is at most `max_norm`; returns the norm before clipping
/// (torch.nn.utils.clip_grad_norm_ semantics: coefficient max_norm / (norm + 1e-6), capped at 1).
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

/// Sets the learning rate of every parameter group.
void set_lr(torch::optim::Optimizer& optimizer, double lr);

/// The learning rate of parameter group `group` (what results.csv logs as lr/pg<group>).
double get_lr(const torch::optim::Optimizer& optimizer, size_t group = 0);

}  // namespace vigil::train
