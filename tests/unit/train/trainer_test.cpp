// The trainer through the library on small synthetic datasets: the loss falls on an easy task, the same seed
// gives bit-identical weights, an interrupted-and-resumed run equals an uninterrupted one bit for bit, and
// bad input is a clear error.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "tests_util.h"
#include "train_fixtures.h"
#include "vigil/core/config.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/strings.h"
#include "vigil/data/split.h"
#include "vigil/data/store.h"
#include "vigil/data/synth.h"
#include "vigil/model/checkpoint.h"
#include "vigil/model/model_file.h"
#include "vigil/nn/zoo.h"
#include "vigil/store/store.h"
#include "vigil/train/trainer.h"

namespace vigil::train {
namespace {

namespace fs = std::filesystem;
using model::load_model;
using model::ModelInfo;
using model::read_checkpoint_meta;
using testing::csv_lines;
using testing::make_dataset;
using testing::quiet;
using testing::shapes;
using testing::small_cnn_options;
using vigil::testing::TempDir;

/// Every parameter and buffer of two model files, bit for bit.
void expect_same_weights(const fs::path& a, const fs::path& b) {
  auto ma = load_model(a), mb = load_model(b);
  auto pa = ma.module->named_parameters(), pb = mb.module->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  auto ba = ma.module->named_buffers(), bb = mb.module->named_buffers();
  ASSERT_EQ(ba.size(), bb.size());
  for (const auto& p : ba) EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key();
}

bool same_weights(const fs::path& a, const fs::path& b) {
  auto ma = load_model(a), mb = load_model(b);
  auto pb = mb.module->named_parameters();
  for (const auto& p : ma.module->named_parameters()) {
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  }
  return true;
}

using TrainerTest = testing::ShapesTrainerTest;

TEST_F(TrainerTest, LossFallsAndRunFolderIsComplete) {
  auto o = small_cnn_options("easy");
  o.epochs = 5;
  o.data.augment = false;
  Trainer trainer(ws, o, quiet());
  const auto r = trainer.run();
  EXPECT_FALSE(r.interrupted);
  EXPECT_EQ(r.epochs_completed, 5);
  EXPECT_EQ(r.metric, "val_accuracy");

  const auto lines = csv_lines(r.run_dir / "results.csv");
  ASSERT_EQ(lines.size(), 6u);  // header + 5 epochs
  const auto header = split(lines[0], ',');
  std::vector<std::string> cols;
  for (const auto& h : header) cols.emplace_back(trim(h));
  EXPECT_EQ(cols,
            (std::vector<std::string>{"epoch", "train/loss", "metrics/accuracy_top1", "val/loss", "lr/pg0"}));
  const double first_loss = std::stod(split(lines[1], ',')[1]);
  const double last_loss = std::stod(split(lines[5], ',')[1]);
  EXPECT_LT(last_loss, 0.7 * first_loss) << "train/loss per epoch:\n" << join(lines, "\n");

  EXPECT_TRUE(fs::exists(r.run_dir / "config.yaml"));
  EXPECT_TRUE(fs::exists(r.run_dir / "train.log"));
  EXPECT_TRUE(fs::exists(r.run_dir / "weights" / "last.ckpt"));
  EXPECT_TRUE(fs::exists(r.run_dir / "weights" / "best.ckpt"));
  bool events = false;
  for (const auto& e : fs::directory_iterator(r.run_dir)) {
    events = events || e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  }
  EXPECT_TRUE(events);

  // The resolved config reloads to the same options; the checkpoint describes the model and its lineage.
  TrainOptions reread;
  config::bind(YAML::LoadFile((r.run_dir / "config.yaml").string()), reread);
  EXPECT_EQ(config::to_yaml(reread), config::to_yaml(trainer.options()));
  const auto meta = read_checkpoint_meta(r.run_dir / "weights" / "last.ckpt");
  EXPECT_EQ(meta.epoch, 5);
  const auto info = ModelInfo::from_json(meta.model_json);
  EXPECT_EQ(info.arch, "mask_small_cnn");
  // Lineage names the tracked run, which the store holds as finished with one metric point per epoch.
  ASSERT_EQ(r.run_id.size(), 32u);
  EXPECT_EQ(info.run_id, r.run_id);
  store::Store tracking(ws);
  const auto run = tracking.get_run("easy");
  EXPECT_EQ(run.info.id, r.run_id);
  EXPECT_EQ(run.info.status, store::RunStatus::kFinished);
  EXPECT_EQ(tracking.metric_history(r.run_id, "val/loss").size(), 5u);
  EXPECT_EQ(info.dataset_id, data::DatasetStore(ws).resolve("shapes").id);
  EXPECT_EQ(info.class_names, (std::vector<std::string>{"circle", "square", "triangle"}));
  auto loaded = load_model(r.run_dir / "weights" / "best.ckpt");
  ASSERT_TRUE(loaded.classifier);
  EXPECT_EQ(loaded.classifier->num_classes(), 3);
}

// Two threads: multi-threaded kernels must be deterministic too (for a given thread count).
TEST_F(TrainerTest, SameSeedGivesBitIdenticalWeights) {
  auto o = small_cnn_options("a");
  o.threads = o.data.threads = 2;
  o.epochs = 2;
  const auto a = Trainer(ws, o, quiet()).run();
  o.name = "b";
  const auto b = Trainer(ws, o, quiet()).run();
  expect_same_weights(a.last_checkpoint, b.last_checkpoint);
  o.name = "c";
  o.seed = 8;
  const auto c = Trainer(ws, o, quiet()).run();
  EXPECT_FALSE(same_weights(a.last_checkpoint, c.last_checkpoint));
}

// Resampling, dropout, augmentation, warm-up + cosine, clipping and weight decay all in play; stopped twice
// (mid-epoch, then at an epoch boundary) and resumed each time.
TEST_F(TrainerTest, InterruptedAndResumedEqualsUninterrupted) {
  auto o = small_cnn_options("straight");
  o.threads = o.data.threads = 2;
  o.data.balance = "resample";
  o.grad_clip_norm = 1.0;
  o.optimizer.name = "adamw";
  const auto straight = Trainer(ws, o, quiet()).run();
  ASSERT_FALSE(straight.interrupted);

  o.name = "stopped";
  Trainer first(ws, o, quiet(/*stop_after=*/6));  // 36 train samples / 8 = 4 batches: epoch 2, batch 2
  const auto r1 = first.run();
  ASSERT_TRUE(r1.interrupted);
  EXPECT_EQ(r1.epochs_completed, 1);
  EXPECT_EQ(r1.batch_in_epoch, 2);
  EXPECT_EQ(r1.iterations, 6);
  const auto meta = read_checkpoint_meta(r1.last_checkpoint);
  EXPECT_EQ(meta.epoch, 1);
  EXPECT_EQ(meta.iteration, 6);

  auto second = Trainer::resume(ws, r1.run_dir, {}, quiet(/*stop_after=*/8));
  const auto r2 = second->run();
  ASSERT_TRUE(r2.interrupted);  // the stop falls on the epoch's last batch: it finishes the epoch first
  EXPECT_EQ(r2.epochs_completed, 2);
  EXPECT_EQ(r2.batch_in_epoch, 0);

  auto third = Trainer::resume(ws, "stopped", {}, quiet());  // by run name
  const auto r3 = third->run();
  EXPECT_FALSE(r3.interrupted);
  EXPECT_EQ(r3.epochs_completed, 3);
  EXPECT_EQ(r3.iterations, straight.iterations);
  expect_same_weights(straight.last_checkpoint, r3.last_checkpoint);
  expect_same_weights(straight.best_checkpoint, r3.best_checkpoint);
  // One row per epoch, no duplicates from the resumes, and the same numbers.
  EXPECT_EQ(csv_lines(straight.run_dir / "results.csv"), csv_lines(r3.run_dir / "results.csv"));
}

TEST_F(TrainerTest, PlateauScheduleReducesTheLrAndResumesWithItsState) {
  // An absolute threshold of 10 makes every epoch after the first a bad one: with patience 0 the learning
  // rate halves after epochs 2 and 3, so epochs 1..4 train at 1e-3, 1e-3, 5e-4 and 2.5e-4.
  auto o = small_cnn_options("plateau");
  o.epochs = 4;
  o.schedule.name = "plateau";
  o.schedule.warmup_iters = 0;
  o.schedule.metric = "val_loss";
  o.schedule.patience = 0;
  o.schedule.factor = 0.5;
  o.schedule.threshold = 10;
  o.schedule.threshold_mode = "abs";
  const auto straight = Trainer(ws, o, quiet()).run();
  const auto lines = csv_lines(straight.run_dir / "results.csv");
  ASSERT_EQ(lines.size(), 5u);
  std::vector<double> lrs;
  for (size_t i = 1; i < lines.size(); ++i)
    lrs.push_back(std::stod(std::string(trim(split(lines[i], ',').back()))));
  const std::vector<double> expected = {1e-3, 1e-3, 5e-4, 2.5e-4};
  ASSERT_EQ(lrs.size(), expected.size());
  for (size_t i = 0; i < lrs.size(); ++i) EXPECT_NEAR(lrs[i], expected[i], 1e-9) << "epoch " << i + 1;

  // Stopped inside epoch 3 and resumed: the reduced learning rate and the bad-epoch count come back from
  // last.ckpt, so the rows and the weights equal the uninterrupted run's.
  o.name = "plateau_stopped";
  const auto r1 = Trainer(ws, o, quiet(/*stop_after=*/9)).run();
  ASSERT_TRUE(r1.interrupted);
  const auto r2 = Trainer::resume(ws, r1.run_dir, {}, quiet())->run();
  EXPECT_FALSE(r2.interrupted);
  EXPECT_EQ(csv_lines(straight.run_dir / "results.csv"), csv_lines(r2.run_dir / "results.csv"));
  expect_same_weights(straight.last_checkpoint, r2.last_checkpoint);

  o.schedule.metric = "mAP50";  // a detector's metric on a classifier
  EXPECT_THROW(Trainer(ws, o, quiet()), vigil::InvalidArgument);
}

TEST_F(TrainerTest, InterruptFlagStopsAfterTheCurrentStep) {
  auto o = small_cnn_options("flag");
  request_interrupt();  // as if Ctrl-C came during the first step
  const auto r = Trainer(ws, o, quiet()).run();
  clear_interrupt();
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.iterations, 1);
  EXPECT_EQ(r.batch_in_epoch, 1);
  EXPECT_TRUE(fs::exists(r.last_checkpoint));
}

TEST_F(TrainerTest, ResumeKeepsOptionsExceptAllowedOnes) {
  auto o = small_cnn_options("keep");
  o.epochs = 1;
  const auto r = Trainer(ws, o, quiet()).run();
  try {
    Trainer::resume(ws, r.run_dir, {"optimizer.lr=0.1"}, quiet());
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.lr"), std::string::npos) << e.what();
  }
  auto more = Trainer::resume(ws, r.run_dir, {"epochs=2"}, quiet());
  const auto r2 = more->run();
  EXPECT_EQ(r2.epochs_completed, 2);
  EXPECT_EQ(csv_lines(r.run_dir / "results.csv").size(), 3u);
}

TEST_F(TrainerTest, BadInputIsAClearError) {
  auto o = small_cnn_options("bad");
  o.model.arch = "resnet51";
  try {
    o.validate();
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("resnet50"), std::string::npos) << e.what();  // lists valid names
  }

  o = small_cnn_options("bad");
  o.data.dataset = "nosuch";
  EXPECT_THROW(Trainer(ws, o, quiet()), NotFound);
  o.data.dataset = "shapes";
  o.data.split = "nosuch";
  EXPECT_THROW(Trainer(ws, o, quiet()), NotFound);

  o = small_cnn_options("bad");
  o.data.image_size = 64;  // mask_small_cnn is built for 100x100
  EXPECT_THROW(Trainer(ws, o, quiet()), InvalidArgument);

  // A validation list without samples.
  make_dataset(ws, tmp.path(), "noval", shapes(12, 3), /*val=*/0.0);
  o = small_cnn_options("bad");
  o.data.dataset = "noval";
  try {
    Trainer(ws, o, quiet());
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'val'"), std::string::npos) << e.what();
  }

  // Config typos name the closest key.
  TrainOptions typo;
  config::Source src;
  src.overrides = {"optimizer.lrr=0.1"};
  try {
    typo = config::load<TrainOptions>(src);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.lr"), std::string::npos) << e.what();
  }

  // Starting weights of another architecture; a corrupt checkpoint to resume from.
  o = small_cnn_options("bad");
  o.epochs = 1;
  const auto r = Trainer(ws, o, quiet()).run();
  auto other = small_cnn_options("bad2");
  other.model.arch = "mobilenet_v3_small";
  other.data.image_size = 64;
  other.model.weights = to_utf8(r.best_checkpoint);
  try {
    Trainer(ws, other, quiet());
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("mask_small_cnn"), std::string::npos) << e.what();
  }
  std::string bytes = read_file(r.last_checkpoint);
  bytes[bytes.size() / 2] ^= 0x40;
  write_file_atomic(r.last_checkpoint, bytes);
  EXPECT_THROW(Trainer::resume(ws, r.run_dir, {}, quiet()), DataError);
  EXPECT_FALSE(fs::exists(ws.runs_dir() / "bad2"));  // a run that cannot start leaves no folder
}

TEST_F(TrainerTest, StartingWeightsWithAnotherClassCountKeepAFreshHead) {
  auto o = small_cnn_options("base");
  o.epochs = 1;
  const auto base = Trainer(ws, o, quiet()).run();
  auto two = shapes(24, 5);
  two.classes = 2;
  make_dataset(ws, tmp.path(), "two", two);
  auto fine = small_cnn_options("fine");
  fine.data.dataset = "two";
  fine.epochs = 1;
  fine.model.weights = to_utf8(base.best_checkpoint);
  fine.model.trainable_stages = 0;  // the mask seed's frozen base
  Trainer trainer(ws, fine, quiet());
  const auto r = trainer.run();
  auto a = load_model(base.best_checkpoint), b = load_model(r.best_checkpoint);
  // The frozen convolution blocks are exactly the starting ones; the head has 2 outputs.
  auto pa = a.module->named_parameters(), pb = b.module->named_parameters();
  EXPECT_TRUE(torch::equal(pa["features.0.weight"], pb["features.0.weight"]));
  EXPECT_TRUE(torch::equal(pa["features.8.weight"], pb["features.8.weight"]));
  // Their batch norms ran in inference mode (Keras' frozen base): running statistics unchanged.
  auto ba = a.module->named_buffers(), bb = b.module->named_buffers();
  EXPECT_TRUE(torch::equal(ba["features.2.running_mean"], bb["features.2.running_mean"]));
  EXPECT_FALSE(torch::equal(pa["classifier.0.weight"], pb["classifier.0.weight"]));  // the head trained
  EXPECT_EQ(b.classifier->num_classes(), 2);
}

// Detection: the sum of the detector's losses; validation losses in eval mode; an interrupted-and-resumed run
// ends bit-identical. One thread keeps it quick on a busy machine (two were checked by hand: identical too).
TEST(TrainerDetection, TrainsValidatesAndResumesBitIdentically) {
  clear_interrupt();
  TempDir tmp;
  Workspace ws(tmp / "ws");
  data::SynthOptions s;
  s.images = 8;
  s.width = 128;
  s.height = 96;
  s.classes = 2;
  s.seed = 4;
  make_dataset(ws, tmp.path(), "boxes", s);  // 6 train, 2 val
  TrainOptions o;
  o.name = "straight";
  o.epochs = 2;
  o.seed = 5;
  o.threads = o.data.threads = 1;
  o.grad_clip_norm = 10;
  o.model.arch = "fasterrcnn_mobilenet_v3_large_320_fpn";
  // The detector's own sizes, anchors and sampling travel through config.yaml (resume) and the model file.
  o.model.detector.min_size = {80, 96};
  o.model.detector.anchor_sizes = {16, 32, 64};
  o.model.detector.box_batch_size_per_image = 64;
  o.data.dataset = "boxes";
  o.data.batch_size = 2;
  o.optimizer.name = "sgd";
  o.optimizer.lr = 0.005;
  o.optimizer.weight_decay = 1e-4;
  const auto straight = Trainer(ws, o, quiet()).run();
  EXPECT_EQ(straight.metric, "fitness");  // auto for detectors: 0.1 COCO AP50 + 0.9 COCO AP
  EXPECT_EQ(straight.iterations, 6);
  for (const char* key :
       {"train/loss_classifier", "train/loss_box_reg", "train/loss_objectness", "train/loss_rpn_box_reg",
        "train/loss", "val/loss", "val/loss_objectness", "metrics/mAP50(B)", "metrics/mAP50-95(B)",
        "metrics/coco_AP", "metrics/coco_AP50", "fitness"}) {
    ASSERT_TRUE(straight.last_metrics.count(key)) << key;
    EXPECT_TRUE(std::isfinite(straight.last_metrics.at(key))) << key;
  }
  const auto& m = straight.last_metrics;
  EXPECT_DOUBLE_EQ(m.at("fitness"), 0.1 * m.at("metrics/coco_AP50") + 0.9 * m.at("metrics/coco_AP"));
  const auto info = ModelInfo::from_json(read_checkpoint_meta(straight.best_checkpoint).model_json);
  EXPECT_EQ(info.class_names, (std::vector<std::string>{"__background__", "circle", "square"}));
  EXPECT_EQ(info.detector.min_size, (std::vector<int64_t>{80, 96}));
  EXPECT_EQ(info.detector.anchor_sizes, (std::vector<double>{16, 32, 64}));
  EXPECT_EQ(info.preprocess.min_size, 96);  // prediction resizes to the last training size
  auto loaded = load_model(straight.best_checkpoint);
  ASSERT_TRUE(loaded.detector);
  EXPECT_EQ(loaded.detector->num_classes(), 3);
  EXPECT_EQ(loaded.module->named_parameters()["rpn.head.cls_logits.weight"].size(0),
            9);  // 3 sizes x 3 ratios

  o.name = "stopped";
  const auto r1 = Trainer(ws, o, quiet(/*stop_after=*/4)).run();  // 3 batches per epoch: epoch 2, batch 1
  ASSERT_TRUE(r1.interrupted);
  EXPECT_EQ(r1.batch_in_epoch, 1);
  const auto r2 = Trainer::resume(ws, r1.run_dir, {}, quiet())->run();
  EXPECT_EQ(r2.iterations, 6);
  expect_same_weights(straight.last_checkpoint, r2.last_checkpoint);
}

// The example configs in examples/train/ are valid options (no typos, known architectures).
TEST(TrainerExamples, ConfigsLoadAndValidate) {
  const fs::path dir = fs::path(VIGIL_SOURCE_DIR) / "examples" / "train";
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".yaml") continue;
    config::Source src;
    src.file = e.path().string();
    EXPECT_NO_THROW(config::load<TrainOptions>(src)) << e.path();
    ++n;
  }
  EXPECT_GE(n, 4u);
}

}  // namespace
}  // namespace vigil::train
