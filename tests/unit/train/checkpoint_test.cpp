// Checkpoints: round trips, bit-identical resume, and clear errors for damaged or foreign files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/model/checkpoint.h"
#include "vigil/train/optim.h"
#include "vigil/train/schedule.h"

namespace {

namespace fs = std::filesystem;
using vigil::model::Checkpoint;
using vigil::testing::TempDir;

// Parameters, buffers (batch norm) and dropout (the torch generator matters for resume).
struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(int hidden = 16)
      : fc1(register_module("fc1", torch::nn::Linear(4, hidden))),
        bn(register_module("bn", torch::nn::BatchNorm1d(hidden))),
        drop(register_module("drop", torch::nn::Dropout(0.2))),
        fc2(register_module("fc2", torch::nn::Linear(hidden, 3))) {}
  torch::Tensor forward(torch::Tensor x) { return fc2(drop(torch::relu(bn(fc1(x))))); }
  torch::nn::Linear fc1;
  torch::nn::BatchNorm1d bn;
  torch::nn::Dropout drop;
  torch::nn::Linear fc2;
};
TORCH_MODULE(Mlp);

struct OtherImpl : torch::nn::Module {
  OtherImpl() : head(register_module("head", torch::nn::Linear(4, 3))) {}
  torch::nn::Linear head;
};
TORCH_MODULE(Other);

vigil::train::OptimizerOptions options_for(const std::string& name) {
  vigil::train::OptimizerOptions o;
  o.name = name;
  o.lr = name == "sgd" ? 0.05 : 0.01;
  o.momentum = 0.9;
  o.nesterov = name == "sgd";
  o.weight_decay = 1e-3;
  return o;
}

struct Data {
  torch::Tensor x, y;
};
Data make_data() {
  torch::manual_seed(42);
  Data d{torch::randn({64, 4}), torch::randint(0, 3, {64})};
  return d;
}

// One step: a batch drawn with the data-order RNG, dropout from the torch generator, lr from the schedule,
// clipped gradients.
void train_step(Mlp& model, torch::optim::Optimizer& opt, const Data& data, std::mt19937_64& order,
                const vigil::train::LrSchedule& schedule, int64_t iter) {
  std::vector<int64_t> idx(16);
  for (auto& i : idx) i = static_cast<int64_t>(order() % 64);
  auto index = torch::tensor(idx);
  vigil::train::set_lr(opt, schedule.lr_at(iter));
  opt.zero_grad();
  auto loss = torch::nn::functional::cross_entropy(model->forward(data.x.index_select(0, index)),
                                                   data.y.index_select(0, index));
  loss.backward();
  vigil::train::clip_grad_norm(model->parameters(), 1.0);
  opt.step();
}

vigil::train::LrSchedule test_schedule(double lr) {
  vigil::train::ScheduleOptions s;
  s.warmup_iters = 3;
  return vigil::train::LrSchedule(s, lr, 20);
}

void expect_same_state(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  auto ba = a.named_buffers(), bb = b.named_buffers();
  ASSERT_EQ(ba.size(), bb.size());
  for (const auto& p : ba) EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key();
}

// What a resume deliberately leaves out, to show the comparison notices it.
enum class Omit { kNothing, kGenerator, kOptimizerState };

// N uninterrupted steps vs. k steps, checkpoint, a "new process" (other seed, fresh model and optimizer),
// load, N - k more steps: the weights must be bit-identical (and differ when part of the state is dropped).
void check_resume_is_bit_identical(const std::string& optimizer_name, Omit omit = Omit::kNothing) {
  TempDir dir;
  const Data data = make_data();
  const auto opts = options_for(optimizer_name);
  const auto schedule = test_schedule(opts.lr);
  constexpr int kSteps = 20, kStop = 7;

  torch::manual_seed(0);
  Mlp straight;
  auto straight_opt = vigil::train::make_optimizer(straight->parameters(), opts);
  std::mt19937_64 straight_order(7);
  for (int i = 0; i < kSteps; ++i) train_step(straight, *straight_opt, data, straight_order, schedule, i);

  torch::manual_seed(0);
  Mlp first;
  auto first_opt = vigil::train::make_optimizer(first->parameters(), opts);
  std::mt19937_64 first_order(7);
  for (int i = 0; i < kStop; ++i) train_step(first, *first_opt, data, first_order, schedule, i);
  Checkpoint meta;
  meta.iteration = kStop;
  meta.rng_state = vigil::model::rng_state_string(first_order);
  vigil::model::save_checkpoint(dir / "last.pt", meta, *first, first_opt.get());

  torch::manual_seed(999);
  Mlp resumed;
  auto resumed_opt = vigil::train::make_optimizer(resumed->parameters(), opts);
  std::mt19937_64 resumed_order;
  auto* restore_into = omit == Omit::kOptimizerState ? nullptr : resumed_opt.get();
  const Checkpoint loaded = vigil::model::load_checkpoint(dir / "last.pt", *resumed, restore_into);
  if (omit == Omit::kGenerator) torch::manual_seed(12345);
  vigil::model::restore_rng_state(resumed_order, loaded.rng_state);
  for (int64_t i = loaded.iteration; i < kSteps; ++i) {
    train_step(resumed, *resumed_opt, data, resumed_order, schedule, i);
  }
  if (omit == Omit::kNothing) {
    expect_same_state(*straight, *resumed);
  } else {
    EXPECT_FALSE(torch::equal(straight->fc1->weight, resumed->fc1->weight));
  }
}

TEST(Checkpoint, ResumeIsBitIdenticalWithSgdNesterovMomentum) {
  check_resume_is_bit_identical("sgd");
}
TEST(Checkpoint, ResumeIsBitIdenticalWithAdamW) {
  check_resume_is_bit_identical("adamw");
}
TEST(Checkpoint, ResumeIsBitIdenticalWithAdam) {
  check_resume_is_bit_identical("adam");
}
TEST(Checkpoint, ResumeWithoutGeneratorOrOptimizerStateDiverges) {
  check_resume_is_bit_identical("sgd", Omit::kGenerator);
  check_resume_is_bit_identical("adamw", Omit::kOptimizerState);
}

// The archive part is a plain TorchScript archive: Python's torch reads it once the trailer is dropped.
TEST(Checkpoint, ArchiveReadableByPythonTorch) {
  VIGIL_REQUIRE_TORCHVISION(python);
  TempDir dir;
  torch::manual_seed(3);
  Mlp model;
  Checkpoint meta;
  meta.arch = "mlp";
  meta.class_names = {"a", "b"};
  vigil::model::save_checkpoint(dir / "c.pt", meta, *model, nullptr);
  vigil::testing::write_text(
      dir / "read.py",
      "import io, json, sys, torch\n"
      "data = open(sys.argv[1], 'rb').read()[:-72]\n"
      "m = torch.jit.load(io.BytesIO(data))\n"
      "meta = json.loads(getattr(m, 'vigil_meta'))\n"
      "i = [e['name'] for e in meta['model']].index('fc1.weight')\n"
      "t = getattr(m, 'model/%d' % i)\n"
      "print(meta['arch'], ','.join(meta['class_names']), tuple(t.shape), float(t.sum()))\n");
  auto [code, out] = vigil::testing::run_shell(python + " '" + (dir / "read.py").string() + "' '" +
                                               (dir / "c.pt").string() + "'");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("mlp a,b (16, 4)"), std::string::npos) << out;
  EXPECT_NE(out.find(std::to_string(model->fc1->weight.sum().item<float>()).substr(0, 5)), std::string::npos)
      << out;
}

TEST(Checkpoint, RoundTripRestoresEverything) {
  TempDir dir;
  const Data data = make_data();
  torch::manual_seed(1);
  Mlp model;
  auto opt = vigil::train::make_optimizer(model->parameters(), options_for("adam"));
  std::mt19937_64 order(3);
  const auto schedule = test_schedule(0.01);
  for (int i = 0; i < 3; ++i) train_step(model, *opt, data, order, schedule, i);

  Checkpoint meta;
  meta.epoch = 4;
  meta.iteration = 123456789012;
  meta.arch = "mlp";
  meta.class_names = {"gun", "knife", "ünïcode"};
  meta.config_yaml = "optimizer:\n  name: adam\n  lr: 0.01\n";
  meta.extra_json = R"({"best_fitness": 0.5})";
  meta.rng_state = vigil::model::rng_state_string(order);
  vigil::model::save_checkpoint(dir / "c.pt", meta, *model, opt.get());
  const auto after_save = torch::rand({5});

  torch::manual_seed(2);
  Mlp other;
  auto other_opt = vigil::train::make_optimizer(other->parameters(), options_for("adam"));
  const Checkpoint got = vigil::model::load_checkpoint(dir / "c.pt", *other, other_opt.get());
  EXPECT_TRUE(torch::equal(torch::rand({5}), after_save));  // generator continues where it was saved
  expect_same_state(*model, *other);
  EXPECT_EQ(got.epoch, 4);
  EXPECT_EQ(got.iteration, 123456789012);
  EXPECT_EQ(got.arch, "mlp");
  EXPECT_EQ(got.class_names, meta.class_names);
  EXPECT_EQ(got.config_yaml, meta.config_yaml);
  EXPECT_EQ(got.extra_json, meta.extra_json);
  EXPECT_EQ(got.optimizer, "adam");
  std::mt19937_64 restored;
  vigil::model::restore_rng_state(restored, got.rng_state);
  EXPECT_EQ(restored(), order());

  // Adam moments and step counts, parameter by parameter.
  auto params = model->parameters(), other_params = other->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    auto key = c10::guts::to_string(params[i].unsafeGetTensorImpl());
    auto other_key = c10::guts::to_string(other_params[i].unsafeGetTensorImpl());
    auto& s = static_cast<torch::optim::AdamParamState&>(*opt->state().at(key));
    auto& t = static_cast<torch::optim::AdamParamState&>(*other_opt->state().at(other_key));
    EXPECT_EQ(s.step(), t.step());
    EXPECT_TRUE(torch::equal(s.exp_avg(), t.exp_avg()));
    EXPECT_TRUE(torch::equal(s.exp_avg_sq(), t.exp_avg_sq()));
  }
  const Checkpoint only_meta = vigil::model::read_checkpoint_meta(dir / "c.pt");
  EXPECT_EQ(only_meta.class_names, meta.class_names);
  EXPECT_EQ(only_meta.iteration, meta.iteration);
}

TEST(Checkpoint, SgdMomentumBuffersRoundTrip) {
  TempDir dir;
  const Data data = make_data();
  torch::manual_seed(1);
  Mlp model;
  auto opt = vigil::train::make_optimizer(model->parameters(), options_for("sgd"));
  std::mt19937_64 order(3);
  for (int i = 0; i < 2; ++i) train_step(model, *opt, data, order, test_schedule(0.05), i);
  vigil::model::save_checkpoint(dir / "c.pt", {}, *model, opt.get());
  Mlp other;
  auto other_opt = vigil::train::make_optimizer(other->parameters(), options_for("sgd"));
  vigil::model::load_checkpoint(dir / "c.pt", *other, other_opt.get());
  auto params = model->parameters(), other_params = other->parameters();
  ASSERT_EQ(other_opt->state().size(), params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    auto& s = static_cast<torch::optim::SGDParamState&>(
        *opt->state().at(c10::guts::to_string(params[i].unsafeGetTensorImpl())));
    auto& t = static_cast<torch::optim::SGDParamState&>(
        *other_opt->state().at(c10::guts::to_string(other_params[i].unsafeGetTensorImpl())));
    EXPECT_TRUE(torch::equal(s.momentum_buffer(), t.momentum_buffer()));
  }
}

TEST(Checkpoint, WeightsOnlyAndOptimizerMismatches) {
  TempDir dir;
  Mlp model;
  vigil::model::save_checkpoint(dir / "weights.pt", {}, *model, nullptr);
  Mlp other;
  vigil::model::load_checkpoint(dir / "weights.pt", *other, nullptr);
  expect_same_state(*model, *other);
  auto adam = vigil::train::make_optimizer(other->parameters(), options_for("adam"));
  EXPECT_THROW(vigil::model::load_checkpoint(dir / "weights.pt", *other, adam.get()), vigil::InvalidArgument);

  auto sgd = vigil::train::make_optimizer(model->parameters(), options_for("sgd"));
  vigil::model::save_checkpoint(dir / "sgd.pt", {}, *model, sgd.get());
  try {
    vigil::model::load_checkpoint(dir / "sgd.pt", *other, adam.get());
    FAIL() << "expected InvalidArgument";
  } catch (const vigil::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("sgd"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, OtherArchitectureNamesTheFirstMismatchingKeyAndChangesNothing) {
  TempDir dir;
  Mlp small(8);
  Checkpoint meta;
  meta.arch = "mlp8";
  vigil::model::save_checkpoint(dir / "small.pt", meta, *small, nullptr);

  Mlp big(16);
  const auto before = big->fc2->weight.clone();
  try {
    vigil::model::load_checkpoint(dir / "small.pt", *big, nullptr);
    FAIL() << "expected InvalidArgument";
  } catch (const vigil::InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'fc1.weight'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("mlp8"), std::string::npos) << msg;
    EXPECT_NE(msg.find("small.pt"), std::string::npos) << msg;
  }
  EXPECT_TRUE(torch::equal(before, big->fc2->weight));

  Other other;
  try {
    vigil::model::load_checkpoint(dir / "small.pt", *other, nullptr);
    FAIL() << "expected InvalidArgument";
  } catch (const vigil::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'head.weight'"), std::string::npos) << e.what();
  }
  // The model has every key the checkpoint has, but the checkpoint has more.
  vigil::model::save_checkpoint(dir / "big.pt", {}, *big, nullptr);
  struct PartImpl : torch::nn::Module {
    PartImpl() : fc1(register_module("fc1", torch::nn::Linear(4, 16))) {}
    torch::nn::Linear fc1;
  };
  PartImpl part;
  try {
    vigil::model::load_checkpoint(dir / "big.pt", part, nullptr);
    FAIL() << "expected InvalidArgument";
  } catch (const vigil::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'bn.weight'"), std::string::npos) << e.what();
  }
}

void expect_data_error_naming(const fs::path& file) {
  Mlp model;
  try {
    vigil::model::load_checkpoint(file, *model, nullptr);
    ADD_FAILURE() << "expected DataError for " << file;
  } catch (const vigil::DataError& e) {
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(vigil::model::read_checkpoint_meta(file), vigil::DataError);
}

TEST(Checkpoint, DamagedFilesAreDataErrorsNamingTheFile) {
  TempDir dir;
  Mlp model;
  auto opt = vigil::train::make_optimizer(model->parameters(), options_for("adamw"));
  vigil::model::save_checkpoint(dir / "good.pt", {}, *model, opt.get());
  const std::string bytes = vigil::read_file(dir / "good.pt");

  vigil::testing::write_text(dir / "truncated.pt", bytes.substr(0, bytes.size() / 2));
  expect_data_error_naming(dir / "truncated.pt");
  vigil::testing::write_text(dir / "short_tail.pt", bytes.substr(0, bytes.size() - 1));
  expect_data_error_naming(dir / "short_tail.pt");
  vigil::testing::write_text(dir / "empty.pt", "");
  expect_data_error_naming(dir / "empty.pt");
  std::mt19937 gen(5);
  std::string noise(4096, '\0');
  for (auto& c : noise) c = static_cast<char>(gen());
  vigil::testing::write_text(dir / "noise.pt", noise);
  expect_data_error_naming(dir / "noise.pt");
  std::string flipped = bytes;
  flipped[flipped.size() / 3] ^= 0x10;
  vigil::testing::write_text(dir / "flipped.pt", flipped);
  expect_data_error_naming(dir / "flipped.pt");
  // A real torch archive without the trailer (e.g. a plain torch::save file) is not a vigil checkpoint.
  vigil::testing::write_text(dir / "plain.pt", bytes.substr(0, bytes.size() - 72));
  expect_data_error_naming(dir / "plain.pt");

  EXPECT_THROW(vigil::model::load_checkpoint(dir / "missing.pt", *model, nullptr), vigil::NotFound);
}

TEST(Checkpoint, SaveIsAtomicAndOverwrites) {
  TempDir dir;
  Mlp model;
  Checkpoint meta;
  meta.epoch = 1;
  vigil::model::save_checkpoint(dir / "sub/last.pt", meta, *model, nullptr);
  meta.epoch = 2;
  vigil::model::save_checkpoint(dir / "sub/last.pt", meta, *model, nullptr);
  EXPECT_EQ(vigil::model::read_checkpoint_meta(dir / "sub/last.pt").epoch, 2);
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir / "sub")) ++files;
  EXPECT_EQ(files, 1);  // no temporary left behind
}

TEST(Checkpoint, RngStateTextIsValidated) {
  std::mt19937_64 rng(11);
  rng.discard(100);
  std::mt19937_64 copy;
  vigil::model::restore_rng_state(copy, vigil::model::rng_state_string(rng));
  EXPECT_EQ(copy(), rng());
  EXPECT_THROW(vigil::model::restore_rng_state(copy, "1 2 3"), vigil::DataError);
}

}  // namespace
