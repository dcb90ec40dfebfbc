// Optimizers, gradient clipping, learning-rate schedules and early stopping.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

#include "vigil/core/config.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/model/checkpoint.h"
#include "vigil/train/early_stopping.h"
#include "vigil/train/optim.h"
#include "vigil/train/schedule.h"

namespace {

using vigil::train::EarlyStopping;
using vigil::train::LrSchedule;
using vigil::train::OptimizerOptions;
using vigil::train::PlateauReducer;
using vigil::train::ScheduleOptions;

OptimizerOptions optimizer(const std::string& name, double lr, double wd = 0.0) {
  OptimizerOptions o;
  o.name = name;
  o.lr = lr;
  o.weight_decay = wd;
  return o;
}

TEST(Optimizer, BuildsEachKindAndListsNamesForUnknown) {
  auto p = torch::zeros({3}, torch::requires_grad());
  for (const std::string name : {"sgd", "adam", "adamw"}) {
    auto opt = vigil::train::make_optimizer({p}, optimizer(name, 0.01));
    EXPECT_EQ(vigil::model::optimizer_kind(*opt), name);
    EXPECT_DOUBLE_EQ(vigil::train::get_lr(*opt), 0.01);
  }
  try {
    vigil::train::make_optimizer({p}, optimizer("lion", 0.01));
    FAIL() << "expected InvalidArgument";
  } catch (const vigil::InvalidArgument& e) {
    const std::string msg = e.what();
    for (const char* n : {"sgd", "adam", "adamw", "lion"}) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  }
}

TEST(Optimizer, ValidateRejectsBadValues) {
  auto bad = optimizer("sgd", 0.0);
  EXPECT_THROW(bad.validate(), vigil::InvalidArgument);
  auto nesterov = optimizer("sgd", 0.1);
  nesterov.nesterov = true;
  nesterov.momentum = 0;
  EXPECT_THROW(nesterov.validate(), vigil::InvalidArgument);
  auto beta = optimizer("adam", 0.1);
  beta.beta2 = 1.0;
  EXPECT_THROW(beta.validate(), vigil::InvalidArgument);
}

TEST(Optimizer, FilledFromYamlLikeEveryOptionsStruct) {
  OptimizerOptions o;
  vigil::config::bind(YAML::Load("name: sgd\nlr: 0.02\nnesterov: true"), o);
  EXPECT_EQ(o.name, "sgd");
  EXPECT_DOUBLE_EQ(o.lr, 0.02);
  EXPECT_TRUE(o.nesterov);
  OptimizerOptions o2;
  EXPECT_THROW(vigil::config::bind(YAML::Load("learning_rate: 0.1"), o2), vigil::InvalidArgument);
  ScheduleOptions s;
  vigil::config::bind(YAML::Load("name: step\nstep_size: 3"), s);
  EXPECT_EQ(s.step_size, 3);
}

// Two hand-computed steps of each optimizer on loss = sum(p^2) (grad 2p).
TEST(Optimizer, StepsMatchTheirDefinitions) {
  {
    auto p = torch::tensor({1.0, -2.0}, torch::dtype(torch::kDouble).requires_grad(true));
    auto o = optimizer("sgd", 0.1);
    o.momentum = 0.9;
    auto opt = vigil::train::make_optimizer({p}, o);
    for (int i = 0; i < 2; ++i) {
      opt->zero_grad();
      p.square().sum().backward();
      opt->step();
    }
    // step 1: buf = 2p0, p1 = 0.8 p0; step 2: buf = 0.9 * 2p0 + 2 * 0.8p0 = 3.4p0, p2 = 0.8p0 - 0.34p0.
    EXPECT_TRUE(torch::allclose(p, torch::tensor({0.46, -0.92}, torch::kDouble), 0, 1e-12)) << p;
  }
  {
    auto p = torch::tensor({1.0, -2.0}, torch::dtype(torch::kDouble).requires_grad(true));
    auto opt = vigil::train::make_optimizer({p}, optimizer("adamw", 0.1, 0.5));
    opt->zero_grad();
    p.square().sum().backward();
    opt->step();
    // AdamW: p *= 1 - lr * wd, then the first Adam step moves lr * g / (|g| + eps) = lr * sign(g).
    EXPECT_TRUE(torch::allclose(p, torch::tensor({0.95 - 0.1, -1.9 + 0.1}, torch::kDouble), 0, 1e-7)) << p;
  }
}

TEST(Optimizer, SetLrChangesEveryGroup) {
  auto a = torch::zeros({1}, torch::requires_grad());
  auto b = torch::zeros({1}, torch::requires_grad());
  auto opt = vigil::train::make_optimizer({a}, optimizer("sgd", 0.1));
  opt->add_param_group(
      torch::optim::OptimizerParamGroup({b}, std::make_unique<torch::optim::SGDOptions>(0.5)));
  vigil::train::set_lr(*opt, 0.025);
  EXPECT_DOUBLE_EQ(vigil::train::get_lr(*opt, 0), 0.025);
  EXPECT_DOUBLE_EQ(vigil::train::get_lr(*opt, 1), 0.025);
  EXPECT_THROW(vigil::train::get_lr(*opt, 2), vigil::InvalidArgument);
}

TEST(ClipGradNorm, ScalesToMaxNormAndReturnsTotal) {
  auto a = torch::zeros({1}, torch::requires_grad());
  auto b = torch::zeros({1}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(vigil::train::clip_grad_norm({a, b}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(a.grad().item<float>(), 3.0 / (5.0 + 1e-6), 1e-6);
  EXPECT_NEAR(b.grad().item<float>(), 4.0 / (5.0 + 1e-6), 1e-6);
  // Below the limit nothing changes.
  a.mutable_grad() = torch::tensor({0.3f});
  b.mutable_grad() = torch::tensor({0.4f});
  EXPECT_NEAR(vigil::train::clip_grad_norm({a, b}, 10.0), 0.5, 1e-6);
  EXPECT_FLOAT_EQ(a.grad().item<float>(), 0.3f);
  EXPECT_THROW(vigil::train::clip_grad_norm({a, b}, 0.0), vigil::InvalidArgument);
}

ScheduleOptions schedule(const std::string& name, int warmup_iters = 0) {
  ScheduleOptions s;
  s.name = name;
  s.warmup_iters = warmup_iters;
  return s;
}

TEST(LrSchedule, LinearWarmupLikeTorchvision) {
  LrSchedule s(schedule("constant", 100), 0.1, 1000);
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1 * 0.001);
  EXPECT_DOUBLE_EQ(s.lr_at(50), 0.1 * (0.001 + 0.999 * 0.5));
  EXPECT_DOUBLE_EQ(s.lr_at(99), 0.1 * (0.001 + 0.999 * 0.99));
  EXPECT_DOUBLE_EQ(s.lr_at(100), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(5000), 0.1);
}

TEST(LrSchedule, CosineEndpointsAndMidpoint) {
  LrSchedule s(schedule("cosine"), 0.01, 1000);
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.01);
  EXPECT_NEAR(s.lr_at(500), 0.01 * (0.01 + 0.99 * 0.5), 1e-15);
  EXPECT_NEAR(s.lr_at(250), 0.01 * (0.01 + 0.99 * 0.5 * (1 + std::cos(M_PI / 4))), 1e-15);
  EXPECT_NEAR(s.lr_at(1000), 0.0001, 1e-15);
  EXPECT_NEAR(s.lr_at(1500), 0.0001, 1e-15);  // past the end keeps the floor
  // Warm-up multiplies into the cosine.
  LrSchedule w(schedule("cosine", 10), 0.01, 1000);
  EXPECT_NEAR(w.lr_at(0), 0.01 * 0.001, 1e-15);
  EXPECT_DOUBLE_EQ(w.lr_at(10), s.lr_at(10));
}

TEST(LrSchedule, StepDecaysAtEpochBoundaries) {
  auto o = schedule("step");
  o.step_size = 3;
  o.gamma = 0.1;
  LrSchedule s(o, 1.0, 100, /*iters_per_epoch=*/10);
  EXPECT_DOUBLE_EQ(s.lr_at(0), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(29), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(30), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(59), 0.1);
  EXPECT_NEAR(s.lr_at(60), 0.01, 1e-17);
}

TEST(LrSchedule, PureFunctionOfIterationAndValidated) {
  LrSchedule a(schedule("cosine", 5), 0.1, 200, 20);
  LrSchedule b(schedule("cosine", 5), 0.1, 200, 20);
  for (int64_t i : {0, 3, 77, 199}) EXPECT_EQ(a.lr_at(i), b.lr_at(i));  // resume = same iteration number
  EXPECT_THROW(a.lr_at(-1), vigil::InvalidArgument);
  EXPECT_THROW(LrSchedule(schedule("linear"), 0.1, 10), vigil::InvalidArgument);
  EXPECT_THROW(LrSchedule(schedule("cosine"), 0.0, 10), vigil::InvalidArgument);
  EXPECT_THROW(LrSchedule(schedule("cosine"), 0.1, 0), vigil::InvalidArgument);
  auto o = schedule("cosine");
  o.warmup_factor = 0;
  EXPECT_THROW(o.validate(), vigil::InvalidArgument);
}

TEST(EarlyStopping, StopsAfterPatienceWithoutImprovement) {
  EarlyStopping es(3, 0.01, /*maximize=*/true);
  EXPECT_FALSE(es.should_stop());
  EXPECT_TRUE(std::isnan(es.best()));
  EXPECT_TRUE(es.update(0.5, 0));
  EXPECT_TRUE(es.update(0.6, 1));
  EXPECT_FALSE(es.update(0.605, 2));  // within min_delta
  EXPECT_FALSE(es.update(std::nan(""), 3));
  EXPECT_FALSE(es.should_stop());
  EXPECT_FALSE(es.update(0.1, 4));
  EXPECT_TRUE(es.should_stop());  // epochs 2, 3, 4 without improvement
  EXPECT_DOUBLE_EQ(es.best(), 0.6);
  EXPECT_EQ(es.best_epoch(), 1);
}

TEST(EarlyStopping, MinimizeAndDisabled) {
  EarlyStopping loss(2, 0.0, /*maximize=*/false);
  EXPECT_TRUE(loss.update(1.0, 0));
  EXPECT_TRUE(loss.update(0.9, 1));
  EXPECT_FALSE(loss.update(0.95, 2));
  EXPECT_FALSE(loss.should_stop());
  EXPECT_FALSE(loss.update(0.9, 3));
  EXPECT_TRUE(loss.should_stop());
  EarlyStopping off(0, 0.0, true);
  off.update(1.0, 0);
  for (int e = 1; e < 100; ++e) off.update(0.0, e);
  EXPECT_FALSE(off.should_stop());
  EXPECT_THROW(EarlyStopping(1, -0.1, true), vigil::InvalidArgument);
}

TEST(EarlyStopping, JsonRoundTripContinuesIdentically) {
  EarlyStopping a(3, 0.0, false);
  a.update(std::numeric_limits<double>::infinity(), 0);  // a diverged first epoch
  a.update(2.0, 1);
  a.update(2.5, 2);
  EarlyStopping b = EarlyStopping::from_json(a.to_json());
  EXPECT_EQ(b.best(), a.best());
  EXPECT_EQ(b.best_epoch(), a.best_epoch());
  EXPECT_EQ(b.last_epoch(), a.last_epoch());
  for (int e = 3; e < 6; ++e) {
    EXPECT_EQ(a.update(3.0, e), b.update(3.0, e));
    EXPECT_EQ(a.should_stop(), b.should_stop());
  }
  EXPECT_TRUE(b.should_stop());
  EarlyStopping inf(3, 0.0, false);
  inf.update(-std::numeric_limits<double>::infinity(), 0);
  EXPECT_EQ(EarlyStopping::from_json(inf.to_json()).best(), -std::numeric_limits<double>::infinity());
  EXPECT_THROW(EarlyStopping::from_json("{\"patience\": 3}"), vigil::DataError);
  EXPECT_THROW(EarlyStopping::from_json("not json"), vigil::DataError);
}

}  // namespace

namespace {

// PlateauReducer is torch.optim.lr_scheduler.ReduceLROnPlateau: every case of plateau_cases.json
// (gen_plateau_expected.py, run through PyTorch) gives the same learning rate after every epoch.
TEST(PlateauReducer, EqualsTorchReduceLROnPlateauOnEveryCase) {
  const auto doc = nlohmann::json::parse(vigil::read_file(vigil::fs::path(VIGIL_SOURCE_DIR) / "tests" /
                                                          "unit" / "train" / "plateau_cases.json"));
  ASSERT_GE(doc.at("cases").size(), 9u);
  for (const auto& c : doc.at("cases")) {
    const auto& k = c.at("options");
    ScheduleOptions s;
    s.name = "plateau";
    s.factor = k.at("factor").get<double>();
    s.patience = k.at("patience").get<int>();
    s.threshold = k.at("threshold").get<double>();
    s.threshold_mode = k.at("threshold_mode").get<std::string>();
    s.cooldown = k.at("cooldown").get<int>();
    s.min_lr = k.at("min_lr").get<double>();
    PlateauReducer r(s, c.at("base_lr").get<double>(), k.at("mode").get<std::string>() == "max");
    const auto& metrics = c.at("metrics");
    const auto& lrs = c.at("lr");
    ASSERT_EQ(metrics.size(), lrs.size());
    for (size_t i = 0; i < metrics.size(); ++i) {
      const double m =
          metrics[i].is_null() ? std::numeric_limits<double>::quiet_NaN() : metrics[i].get<double>();
      r.step(m);
      EXPECT_NEAR(r.lr(), lrs[i].get<double>(), 1e-12 * lrs[i].get<double>())
          << c.at("name").get<std::string>() << ", epoch " << i + 1;
    }
  }
}

TEST(PlateauReducer, JsonRoundTripContinuesIdentically) {
  ScheduleOptions s;
  s.name = "plateau";
  s.patience = 1;
  s.cooldown = 1;
  s.factor = 0.5;
  PlateauReducer a(s, 0.1, /*maximize=*/false);
  for (double m : {1.0, 0.9, 0.95, 0.96}) a.step(m);
  auto b = PlateauReducer::from_json(a.to_json());
  for (double m : {0.97, 0.98, 0.99, 0.5, 0.6, 0.7}) {
    EXPECT_EQ(a.step(m), b.step(m));
    EXPECT_DOUBLE_EQ(a.lr(), b.lr());
    EXPECT_EQ(a.num_bad_epochs(), b.num_bad_epochs());
  }
  EXPECT_GE(a.reductions(), 2);
  EXPECT_THROW(PlateauReducer::from_json("{\"lr\": 1}"), vigil::DataError);
}

TEST(PlateauReducer, BadOptionsNameTheField) {
  ScheduleOptions s;
  s.name = "plateau";
  s.factor = 1.5;
  try {
    s.validate();
    FAIL() << "factor 1.5 accepted";
  } catch (const vigil::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("schedule.factor"), std::string::npos) << e.what();
  }
  s.factor = 0.1;
  s.threshold_mode = "relative";
  EXPECT_THROW(s.validate(), vigil::InvalidArgument);
}

}  // namespace
