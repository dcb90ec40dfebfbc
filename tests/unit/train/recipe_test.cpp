// Training recipes beyond the optimizer and schedule.
// - The weight average (train/ema.h): Ultralytics' ModelEMA arithmetic on a small module, in-place swaps
//   that keep the optimizer's tensors, and through the trainer: the average is what is validated and handed
//   over, training itself is unchanged by it, and a stopped-and-resumed run equals an uninterrupted one bit
//   for bit.
// - Label smoothing: PyTorch's mix of the one-hot and uniform targets, so the first step's loss is linear in
//   the smoothing; refused for detectors.
// - Mixup: the batch blended with itself rolled by one, Beta-distributed weights, and a resumed run that
// mixes
//   as an uninterrupted one.
// - Anchors fitted to the training boxes (train/anchor_fit.h): quantiles of the boxes as the model resizes
//   them, worked out by hand here, and through the trainer: config.yaml and the model file record them.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "train_fixtures.h"
#include "vigil/core/config.h"
#include "vigil/core/error.h"
#include "vigil/model/checkpoint.h"
#include "vigil/model/model_file.h"
#include "vigil/train/anchor_fit.h"
#include "vigil/train/ema.h"
#include "vigil/train/mixup.h"
#include "vigil/train/observer.h"
#include "vigil/train/trainer.h"

namespace vigil::train {
namespace {

namespace fs = std::filesystem;
using testing::quiet;
using testing::small_cnn_options;
using vigil::testing::TempDir;

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

/// A classifier recipe switched to a detector is refused with `message` (a classifier-only key is set).
void expect_refused_for_a_detector(TrainOptions o, const std::string& message) {
  o.model.arch = "fasterrcnn_mobilenet_v3_large_320_fpn";
  o.early_stopping.metric = "auto";
  try {
    o.validate();
    ADD_FAILURE() << "accepted for a detector; expected: " << message;
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
  }
}

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
  expect_refused_for_a_detector(bad, "label_smoothing 0 for detector");
}

TEST(Mixup, BlendsTheBatchWithItselfRolledByOne) {
  torch::manual_seed(3);
  const auto x = torch::arange(12, torch::kFloat32).reshape({3, 2, 2});
  const auto y = torch::tensor({0, 1, 2}, torch::kInt64);
  const auto m = mixup(x, y, 0.2);
  EXPECT_GT(m.lam, 0.0);
  EXPECT_LT(m.lam, 1.0);
  // Sample i is lam * x[i] + (1 - lam) * x[i - 1] (x[-1] = the last), and its second label y[i - 1].
  for (int i = 0; i < 3; ++i) {
    const int j = (i + 2) % 3;
    EXPECT_TRUE(torch::allclose(m.images[i], x[i] * m.lam + x[j] * (1 - m.lam))) << i;
    EXPECT_EQ(m.targets_b[i].item<int64_t>(), y[j].item<int64_t>()) << i;
  }
  // One sample has nothing to blend with.
  const auto one = mixup(x.slice(0, 0, 1), y.slice(0, 0, 1), 0.2);
  EXPECT_EQ(one.lam, 1.0);
  EXPECT_TRUE(torch::equal(one.images, x.slice(0, 0, 1)));
  EXPECT_THROW(mixup(x, y, 0), InvalidArgument);
  EXPECT_THROW(mixup(x, y.slice(0, 0, 2), 0.2), InvalidArgument);

  // Beta(a, a) has mean 1/2 and variance 1 / (4 (2a + 1)): 1/5.6 = 0.1786 for a = 0.2, 1/12 for a = 1.
  for (const double a : {0.2, 1.0}) {
    double sum = 0, sq = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      const double v = sample_beta(a);
      ASSERT_TRUE(v >= 0 && v <= 1) << v;
      sum += v;
      sq += v * v;
    }
    const double mean = sum / n, var = sq / n - mean * mean;
    EXPECT_NEAR(mean, 0.5, 0.01) << a;
    EXPECT_NEAR(var, 1 / (4 * (2 * a + 1)), 0.005) << a;
  }
}

TEST_F(EmaTrainerTest, MixupTrainsAndAStoppedRunResumesBitIdentically) {
  // lam comes from the global generator, whose state a checkpoint keeps: a resumed run mixes as an
  // uninterrupted one. The first step's loss differs from the unmixed one (same seed, same batch).
  auto o = options("mixed", 0);
  o.mixup = 0.4;
  const auto straight = Trainer(ws, o, quiet()).run();
  o.name = "mixed-stopped";
  const auto r1 = Trainer(ws, o, quiet(/*stop_after=*/6)).run();
  ASSERT_TRUE(r1.interrupted);
  const auto r2 = Trainer::resume(ws, r1.run_dir, {}, quiet())->run();
  EXPECT_TRUE(all_equal(saved(straight.last_checkpoint).model, saved(r2.last_checkpoint).model));
  std::vector<double> first;
  for (const double alpha : {0.0, 0.4}) {
    auto f = options("first-" + std::to_string(first.size()), 0);
    f.mixup = alpha;
    Trainer trainer(ws, f, quiet(/*stop_after=*/1));
    auto loss = std::make_shared<FirstLoss>();
    trainer.add_observer(loss);
    trainer.run();
    first.push_back(loss->loss);
  }
  ASSERT_TRUE(std::isfinite(first[0]) && std::isfinite(first[1]));
  EXPECT_GT(std::abs(first[1] - first[0]), 1e-4);

  auto bad = options("bad", 0);
  bad.mixup = -1;
  EXPECT_THROW(bad.validate(), InvalidArgument);
  bad.mixup = 0.2;
  expect_refused_for_a_detector(bad, "mixup 0 for detector");
}

data::Sample boxed(int width, int height, std::vector<std::array<float, 2>> box_sizes) {
  data::Sample s;
  s.width = width;
  s.height = height;
  for (const auto& [w, h] : box_sizes) {
    data::Box b;
    b.x2 = w;
    b.y2 = h;
    s.boxes.push_back(b);
  }
  return s;
}

TEST(FitAnchors, QuantilesOfTheResizedBoxes) {
  // Image 0 (100x50) is resized by 320 / 50 = 6.4 (the 640 cap allows 6.4 too); image 1 (200x200) by 1.6.
  // Boxes, resized: 10x10 -> 64 (ratio 1); 20x8 -> sqrt(160) * 6.4 = 80.95 (ratio 0.4); 50x50 -> 80 (1);
  // 100x200 -> sqrt(20000) * 1.6 = 226.27 (2). Sorted sizes 64, 80, 80.95, 226.27.
  std::vector<data::Sample> samples = {boxed(100, 50, {{10, 10}, {20, 8}}),
                                       boxed(200, 200, {{50, 50}, {100, 200}}),
                                       boxed(300, 300, {{30, 30}})};  // image 2 is not in the training list
  data::Box crowd;
  crowd.x2 = crowd.y2 = 90;
  crowd.crowd = true;
  samples[1].boxes.push_back(crowd);  // a crowd region is not an object to anchor
  const auto f = fit_anchors(samples, {0, 1}, 2, /*one_per_map=*/false, 320, 640);
  EXPECT_EQ(f.boxes, 4u);
  // Quantiles 0.25 and 0.75, numpy's interpolation: 64 + 0.75 * 16 = 76; 80.95 + 0.25 * 145.32 = 117.28.
  EXPECT_EQ(f.sizes, (std::vector<double>{76, 117}));
  // Ratios 0.4, 1, 1, 2: quantile 1/6 -> 0.4 + 0.5 * 0.6 = 0.7, 1/2 -> 1, 5/6 -> 1 + 0.5 * 1 = 1.5.
  ASSERT_EQ(f.ratios.size(), 3u);
  EXPECT_DOUBLE_EQ(f.ratios[0], 0.7);
  EXPECT_DOUBLE_EQ(f.ratios[1], 1.0);
  EXPECT_DOUBLE_EQ(f.ratios[2], 1.5);

  // Boxes of one size: one list on every map drops the repeats, one size per map keeps the maps' count.
  const std::vector<data::Sample> same = {boxed(100, 50, {{10, 10}, {10, 10}})};
  EXPECT_EQ(fit_anchors(same, {0}, 3, false, 320, 640).sizes, (std::vector<double>{64}));
  EXPECT_EQ(fit_anchors(same, {0}, 3, true, 320, 640).sizes, (std::vector<double>{64, 64, 64}));
  EXPECT_EQ(fit_anchors(same, {0}, 3, false, 320, 640).ratios, (std::vector<double>{1}));
  EXPECT_THROW(fit_anchors(samples, {}, 3, false, 320, 640), InvalidArgument);
  EXPECT_THROW(fit_anchors({boxed(10, 10, {})}, {0}, 3, false, 320, 640), InvalidArgument);
}

TEST(FitAnchors, TheTrainerRecordsTheFittedAnchors) {
  clear_interrupt();
  TempDir tmp;
  Workspace ws(tmp / "ws");
  testing::make_dataset(ws, tmp.path(), "boxes", testing::boxes(6, 96, 64, 3));
  TrainOptions o;
  o.name = "fitted";
  o.epochs = 1;
  o.threads = o.data.threads = 1;
  o.model.arch = "fasterrcnn_mobilenet_v3_large_320_fpn";
  o.model.fit_anchors = true;
  o.data.dataset = "boxes";
  o.data.batch_size = 2;
  o.optimizer.name = "sgd";
  o.optimizer.lr = 0.001;
  const auto r = Trainer(ws, o, quiet()).run();
  config::Source src;
  src.file = (r.run_dir / "config.yaml").string();
  const auto saved = config::load<TrainOptions>(src);
  EXPECT_FALSE(saved.model.fit_anchors);  // done once; a resume builds the same model from the list
  ASSERT_FALSE(saved.model.detector.anchor_sizes.empty());
  EXPECT_LE(saved.model.detector.anchor_sizes.size(), 5u);
  EXPECT_FALSE(saved.model.detector.aspect_ratios.empty());
  const auto info = model::load_model(r.best_checkpoint).info;
  EXPECT_EQ(info.detector.anchor_sizes, saved.model.detector.anchor_sizes);
  EXPECT_EQ(info.detector.aspect_ratios, saved.model.detector.aspect_ratios);

  o.name = "both";
  o.model.detector.anchor_sizes = {32};
  EXPECT_THROW(Trainer(ws, o, quiet()), InvalidArgument);
  o.model.arch = "ssdlite320_mobilenet_v3_large";
  o.model.detector = {};
  EXPECT_THROW(Trainer(ws, o, quiet()), InvalidArgument);
}

}  // namespace
}  // namespace vigil::train
