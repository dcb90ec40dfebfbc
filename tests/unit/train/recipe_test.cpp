// Training recipes beyond the optimizer and schedule.
// - The weight average (train/ema.h): Ultralytics' ModelEMA arithmetic on a small module, in-place swaps
//   that keep the optimizer's tensors, and through the trainer: the average is what is validated and handed
//   over, training itself is unchanged by it, and a stopped-and-resumed run equals an uninterrupted one bit
//   for bit.
// - Label smoothing: PyTorch's mix of the one-hot and uniform targets, so the first step's loss is linear in
//   the smoothing; refused for detectors.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "train_fixtures.h"
#include "vigil/core/error.h"
#include "vigil/model/checkpoint.h"
#include "vigil/model/model_file.h"
#include "vigil/train/ema.h"
#include "vigil/train/observer.h"
#include "vigil/train/trainer.h"

namespace vigil::train {
namespace {

namespace fs = std::filesystem;
using testing::quiet;
using testing::small_cnn_options;

struct Net : torch::nn::Module {
  Net() {
    fc = register_module("fc", torch::nn::Linear(3, 2));
    bn = register_module("bn", torch::nn::BatchNorm1d(2));
  }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};

TEST(ModelEma, DecayRampsUpAsUltralyticsModelEma) {
  Net net;
  ModelEma ema(net, EmaOptions{0.9999, 2000});
  EXPECT_EQ(ema.decay_at(0), 0.0);
  // Ultralytics: d = decay * (1 - exp(-updates / tau)).
  EXPECT_NEAR(ema.decay_at(1), 0.9999 * (1 - std::exp(-1.0 / 2000)), 1e-15);
  EXPECT_NEAR(ema.decay_at(2000), 0.9999 * (1 - std::exp(-1.0)), 1e-15);
  EXPECT_NEAR(ema.decay_at(100000), 0.9999, 1e-12);
  EXPECT_THROW(ModelEma(net, EmaOptions{1.0, 2000}), InvalidArgument);
  EXPECT_THROW(ModelEma(net, EmaOptions{0.5, 0}), InvalidArgument);
}

TEST(ModelEma, AveragesFloatingStateAndCopiesStepCounts) {
  torch::manual_seed(0);
  Net net;
  ModelEma ema(net, EmaOptions{0.9, 1});
  const torch::Tensor w0 = net.fc->weight.detach().clone();
  const torch::Tensor m0 = net.bn->running_mean.detach().clone();
  {
    torch::NoGradGuard no_grad;
    net.fc->weight.add_(1.0);
    net.bn->running_mean.fill_(2.0);
    net.bn->num_batches_tracked.fill_(5);
  }
  ema.update(3);
  const double d = 0.9 * (1 - std::exp(-3.0));
  ema.swap();  // the module now holds the average
  EXPECT_TRUE(torch::allclose(net.fc->weight, w0 + (1 - d), 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(net.bn->running_mean, m0 * d + 2.0 * (1 - d), 1e-6, 1e-6));
  EXPECT_EQ(net.bn->num_batches_tracked.item<int64_t>(), 5);
  ema.swap();
  EXPECT_TRUE(torch::equal(net.fc->weight, w0 + 1.0));  // the trained weights are back, bit for bit
}

TEST(ModelEma, SwapKeepsTheModulesTensorsAndRestoreChecksShapes) {
  torch::manual_seed(1);
  Net net;
  const void* storage = net.fc->weight.data_ptr();
  ModelEma ema(net, EmaOptions{0.5, 1});
  {
    torch::NoGradGuard no_grad;
    net.fc->weight.mul_(3.0);
  }
  const torch::Tensor trained = net.fc->weight.detach().clone();
  ema.swap();
  EXPECT_EQ(net.fc->weight.data_ptr(), storage);  // an optimizer's state stays attached
  EXPECT_FALSE(torch::equal(net.fc->weight, trained));
  EXPECT_TRUE(torch::equal(ema.tensors()[0], trained));  // swapped: the stored tensors are the trained ones
  ema.swap();

  // Resuming: the module holds the saved average, `trained` the weights training continues from.
  std::vector<torch::Tensor> saved;
  for (const auto& t : ema.tensors()) saved.push_back(t.clone() + (t.is_floating_point() ? 1 : 0));
  ema.restore(saved);
  EXPECT_TRUE(torch::equal(net.fc->weight, saved[0]));
  EXPECT_TRUE(torch::equal(ema.tensors()[0], trained));
  saved.pop_back();
  EXPECT_THROW(ema.restore(saved), DataError);
}

class EmaTrainerTest : public testing::ShapesTrainerTest {
 protected:
  TrainOptions options(const std::string& name, double decay) const {
    auto o = small_cnn_options(name);
    o.threads = o.data.threads = 2;
    o.optimizer.name = "adamw";
    o.ema.decay = decay;
    o.ema.tau = 4;
    return o;
  }
};

/// The model tensors of a checkpoint, and the trained weights saved beside them (empty without an average).
struct Saved {
  std::vector<torch::Tensor> model, trained;
};
Saved saved(const fs::path& checkpoint) {
  auto m = model::load_model(checkpoint);
  Saved s;
  s.model = model::state_tensors(*m.module);
  s.trained = model::load_checkpoint(checkpoint, *m.module, nullptr).extra_tensors;
  return s;
}

bool all_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i], b[i])) return false;
  }
  return true;
}

TEST_F(EmaTrainerTest, TheAverageIsHandedOverAndTrainingIsUnchanged) {
  const auto plain = Trainer(ws, options("plain", 0), quiet()).run();
  const auto averaged = Trainer(ws, options("averaged", 0.9), quiet()).run();
  const Saved p = saved(plain.last_checkpoint), a = saved(averaged.last_checkpoint);
  EXPECT_TRUE(p.trained.empty());  // no average, nothing beside the model
  // Swapping the average in for validation and saving leaves training exactly as it was without one.
  ASSERT_EQ(a.trained.size(), p.model.size());
  EXPECT_TRUE(all_equal(a.trained, p.model));
  // The weights handed over are the average, not the last trained ones.
  EXPECT_FALSE(all_equal(a.model, a.trained));
  // best.ckpt holds an average too (and no trained weights: it is not resumed from).
  const Saved best = saved(averaged.best_checkpoint);
  EXPECT_TRUE(best.trained.empty());
  // Validation scored the average: the two runs' validation losses differ although they trained alike.
  const auto rows_p = testing::csv_lines(plain.run_dir / "results.csv");
  const auto rows_a = testing::csv_lines(averaged.run_dir / "results.csv");
  ASSERT_EQ(rows_p.size(), rows_a.size());
  EXPECT_NE(rows_p.back(), rows_a.back());
}

TEST_F(EmaTrainerTest, StoppedAndResumedEqualsUninterrupted) {
  const auto straight = Trainer(ws, options("straight", 0.9), quiet()).run();
  ASSERT_FALSE(straight.interrupted);
  const auto r1 = Trainer(ws, options("stopped", 0.9), quiet(/*stop_after=*/6)).run();  // inside epoch 2
  ASSERT_TRUE(r1.interrupted);
  const auto r2 = Trainer::resume(ws, r1.run_dir, {}, quiet())->run();
  EXPECT_FALSE(r2.interrupted);
  const Saved s = saved(straight.last_checkpoint), r = saved(r2.last_checkpoint);
  EXPECT_TRUE(all_equal(s.model, r.model));
  EXPECT_TRUE(all_equal(s.trained, r.trained));
  EXPECT_TRUE(all_equal(saved(straight.best_checkpoint).model, saved(r2.best_checkpoint).model));
  EXPECT_EQ(testing::csv_lines(straight.run_dir / "results.csv"),
            testing::csv_lines(r2.run_dir / "results.csv"));
}

/// The loss of the first training step.
class FirstLoss : public TrainObserver {
 public:
  void on_batch_end(const BatchReport& batch) override {
    if (batch.iteration == 1) loss = batch.loss;
  }
  double loss = std::nan("");
};

TEST_F(EmaTrainerTest, LabelSmoothingMixesOneHotAndUniformTargets) {
  // Same seed, same first batch, same starting weights: with smoothing x the loss is
  // (1 - x) * CE + x * mean_k(-log p_k), linear in x, so L(0.4) - L(0) = 2 * (L(0.2) - L(0)).
  std::vector<double> losses;
  for (double x : {0.0, 0.2, 0.4}) {
    auto o = options("smooth-" + std::to_string(losses.size()), 0);
    o.label_smoothing = x;
    o.data.augment = false;
    Trainer trainer(ws, o, quiet(/*stop_after=*/1));
    auto first = std::make_shared<FirstLoss>();
    trainer.add_observer(first);
    trainer.run();
    losses.push_back(first->loss);
  }
  ASSERT_TRUE(std::isfinite(losses[0]) && std::isfinite(losses[1]) && std::isfinite(losses[2]));
  EXPECT_GT(std::abs(losses[1] - losses[0]), 1e-4);  // it does change the loss
  EXPECT_NEAR(losses[2] - losses[0], 2 * (losses[1] - losses[0]), 1e-5);

  auto bad = options("bad", 0);
  bad.label_smoothing = 1.0;
  EXPECT_THROW(Trainer(ws, bad, quiet()), InvalidArgument);
  bad.label_smoothing = 0.1;
  bad.model.arch = "fasterrcnn_mobilenet_v3_large_320_fpn";
  bad.early_stopping.metric = "auto";
  try {
    bad.validate();
    ADD_FAILURE() << "label_smoothing accepted for a detector";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("label_smoothing 0 for detector"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vigil::train
